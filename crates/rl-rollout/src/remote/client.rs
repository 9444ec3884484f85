//! [`RemoteWorker`]: a rollout worker in another process, reached over gRPC, behind the same
//! [`RolloutWorker`] trait as the in-process [`crate::LocalWorker`].

use std::time::Duration;

use rl_proto::{
    client::{Dial, DialError},
    secret::Secret,
    v1::{self as pb, rollout_service_client::RolloutServiceClient},
};
use tokio::sync::mpsc;
use tonic::{Request, Status, transport::Channel};

use super::{
    DEFAULT_MAX_MESSAGE_BYTES,
    collective::{self, Meeting, Spec},
    convert::{self, Call, error_from_status},
    weights,
};
use crate::{
    Event, GenerateRequest, RequestError, RolloutError, WorkerInfo,
    worker::{BoxFuture, EventStream, NamedTensors, RolloutWorker},
};

/// Default size of a weight chunk: well under the default message cap.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// How a client talks to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The server's shared secret, sent as `authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// Largest message accepted from the server, in bytes.
    pub max_message_bytes: usize,
    /// Most tensor bytes per `UpdateWeights` message; keep it under the server's cap.
    pub chunk_bytes: usize,
    /// How long to wait for the connection.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            token: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A rollout worker served by `rl rollout-worker` (or any [`super::RolloutServer`]).
#[derive(Debug, Clone)]
pub struct RemoteWorker {
    addr: String,
    client: RolloutServiceClient<Channel>,
    dial: Dial,
    chunk_bytes: usize,
}

impl RemoteWorker {
    /// Connects to the server at `addr` (`host:port` or `http://host:port`).
    pub async fn connect(addr: &str, options: ClientOptions) -> Result<Self, RolloutError> {
        let remote = |message: String| RolloutError::Remote {
            addr: addr.to_owned(),
            message,
        };
        let dial = Dial::new(addr, options.token.as_ref(), options.connect_timeout).map_err(
            |e| match e {
                DialError::Token(e) => RolloutError::Config(e.to_string()),
                DialError::Address(_) => remote(e.to_string()),
            },
        )?;
        let channel = dial.endpoint().connect().await.map_err(|e| {
            let status = Status::from_error(Box::new(e));
            error_from_status(addr, Call::Health, &status)
        })?;
        let client =
            RolloutServiceClient::new(channel).max_decoding_message_size(options.max_message_bytes);
        Ok(Self {
            addr: addr.to_owned(),
            client,
            dial,
            chunk_bytes: options.chunk_bytes,
        })
    }

    /// The address it was connected with.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn request<T>(&self, message: T) -> Request<T> {
        self.dial.request(message)
    }
}

impl RolloutWorker for RemoteWorker {
    fn generate(
        &self,
        requests: Vec<GenerateRequest>,
    ) -> BoxFuture<'_, Result<EventStream, RolloutError>> {
        Box::pin(async move {
            // Every request is answered at least once (n = 0 is refused with one error).
            let expected: Vec<u32> = requests.iter().map(|r| r.params.n.max(1)).collect();
            let message = pb::GenerateRequest {
                requests: requests.iter().map(convert::request_to_proto).collect(),
            };
            let stream = self
                .client
                .clone()
                .generate(self.request(message))
                .await
                .map_err(|s| error_from_status(&self.addr, Call::Generate, &s))?
                .into_inner();
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(forward(self.addr.clone(), stream, tx, expected));
            Ok(rx)
        })
    }

    fn update_weights(
        &self,
        version: u64,
        tensors: NamedTensors,
    ) -> BoxFuture<'_, Result<(), RolloutError>> {
        Box::pin(async move {
            let chunks = weights::split(version, tensors, self.chunk_bytes)?;
            self.client
                .clone()
                .update_weights(self.request(tokio_stream::iter(chunks)))
                .await
                .map_err(|s| error_from_status(&self.addr, Call::UpdateWeights, &s))?;
            Ok(())
        })
    }

    fn join_weight_group(&self, meeting: Meeting) -> BoxFuture<'_, Result<(), RolloutError>> {
        Box::pin(async move {
            let message = pb::JoinWeightGroupRequest {
                addr: meeting.addr,
                port: u32::from(meeting.port),
                rank: meeting.rank as u32,
                world: meeting.world as u32,
                timeout_s: meeting.timeout.as_secs_f64(),
            };
            self.client
                .clone()
                .join_weight_group(self.request(message))
                .await
                .map_err(|s| error_from_status(&self.addr, Call::JoinWeightGroup, &s))?;
            Ok(())
        })
    }

    fn broadcast_weights(
        &self,
        version: u64,
        specs: Vec<Spec>,
    ) -> BoxFuture<'_, Result<(), RolloutError>> {
        Box::pin(async move {
            let message = pb::BroadcastWeightsRequest {
                version,
                tensors: collective::specs_to_proto(&specs).map_err(RolloutError::Weights)?,
            };
            self.client
                .clone()
                .broadcast_weights(self.request(message))
                .await
                .map_err(|s| error_from_status(&self.addr, Call::UpdateWeights, &s))?;
            Ok(())
        })
    }

    fn info(&self) -> BoxFuture<'_, Result<WorkerInfo, RolloutError>> {
        Box::pin(async move {
            let reply = self
                .client
                .clone()
                .health(self.request(pb::HealthRequest {}))
                .await
                .map_err(|s| error_from_status(&self.addr, Call::Health, &s))?;
            Ok(convert::info_from_proto(reply.into_inner()))
        })
    }
}

/// Moves a Generate reply into the caller's channel until the server ends it (it does right
/// after the last event). Stops, cancelling the call, when the caller drops its receiver. If
/// the stream breaks or ends early, every request still owed completions gets one error saying
/// so, so the caller never waits for what will not come.
async fn forward(
    addr: String,
    mut stream: tonic::Streaming<pb::GenerateEvent>,
    tx: mpsc::UnboundedSender<Event>,
    mut owed: Vec<u32>,
) {
    let why = loop {
        let next = tokio::select! {
            () = tx.closed() => return,
            next = stream.message() => next,
        };
        let event = match next {
            Ok(Some(message)) => match convert::event_from_proto(message) {
                Ok(event) => event,
                Err(e) => {
                    break format!("remote rollout worker {addr} sent a malformed event ({e})");
                }
            },
            Ok(None) => break format!("remote rollout worker {addr} ended the stream early"),
            Err(status) => break error_from_status(&addr, Call::Generate, &status).to_string(),
        };
        match &event {
            Ok(c) => {
                if let Some(n) = owed.get_mut(c.request) {
                    *n = n.saturating_sub(1);
                }
            }
            Err(e) => {
                if let Some(n) = owed.get_mut(e.request) {
                    *n = 0;
                }
            }
        }
        if tx.send(event).is_err() {
            return;
        }
    };
    for (request, &n) in owed.iter().enumerate().filter(|(_, n)| **n > 0) {
        let message = format!("{why}; {n} completion(s) of this request did not arrive");
        let _ = tx.send(Err(RequestError { request, message }));
    }
}
