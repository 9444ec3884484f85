//! The rollout service's server: a thin tonic layer over any [`RolloutWorker`] (usually a
//! [`crate::LocalWorker`]) on the shared skeleton ([`rl_proto::server`]: bind, token, stop).
//! It converts messages, reassembles weight updates and caps message sizes; the worker does
//! everything else.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use rl_proto::{
    secret::Secret,
    server::{Listener, ServerError},
    v1::{self as pb, rollout_service_server as service},
};
use tokio_stream::{Stream, StreamExt, wrappers::UnboundedReceiverStream};
use tonic::{
    Request, Response, Status, Streaming,
    service::{Routes, interceptor::InterceptedService},
};

use super::{
    DEFAULT_MAX_MESSAGE_BYTES,
    collective::{self, Meeting, WeightGroup},
    convert::{self, status_from_error},
    weights::Assembler,
};
use crate::{RequestError, RolloutWorker};

/// How a server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Shared secret every call must carry as `authorization: Bearer <token>`; None: no check
    /// (only sensible on a trusted network).
    pub token: Option<Secret>,
    /// Largest message received or sent, in bytes; bigger ones are refused (RESOURCE_EXHAUSTED).
    pub max_message_bytes: usize,
    /// Once asked to stop, how long the calls in flight may take before the server stops anyway.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            token: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A bound rollout server, not yet serving: bind first (so the port is known, and a bad
/// address fails before a model is loaded), then [`serve`](Self::serve) a worker.
pub struct RolloutServer {
    listener: Listener,
    options: ServerOptions,
    group: Option<Arc<dyn WeightGroup>>,
}

impl std::fmt::Debug for RolloutServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolloutServer")
            .field("addr", &self.local_addr())
            .field("weight_group", &self.group.is_some())
            .finish_non_exhaustive()
    }
}

impl RolloutServer {
    /// Listens on `addr`: `HOST:PORT` (port 0 picks a free one), or a bare `PORT` on
    /// 127.0.0.1. Checks the token now, so a bad one fails before anything is served.
    pub async fn bind(addr: &str, options: ServerOptions) -> Result<Self, ServerError> {
        let role = "rollout worker";
        let listener = Listener::bind(addr, 50051, role, options.token.as_ref()).await?;
        Ok(Self {
            listener,
            options,
            group: None,
        })
    }

    /// Takes weights over `group` too (JoinWeightGroup, BroadcastWeights); without one those
    /// calls are refused as unimplemented.
    #[must_use]
    pub fn with_weight_group(mut self, group: Arc<dyn WeightGroup>) -> Self {
        self.group = Some(group);
        self
    }

    /// The address it listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves `worker` until `shutdown` completes, then stops taking calls and returns once the
    /// calls in flight are answered, or after `shutdown_grace`.
    pub async fn serve(
        self,
        worker: Arc<dyn RolloutWorker>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let cap = self.options.max_message_bytes;
        let group = self.group;
        let service = service::RolloutServiceServer::new(Service { worker, group })
            .max_decoding_message_size(cap)
            .max_encoding_message_size(cap);
        let routes = Routes::new(InterceptedService::new(service, self.listener.check()));
        let grace = self.options.shutdown_grace;
        self.listener.serve(routes, shutdown, grace).await
    }
}

/// The gRPC service over a worker.
struct Service {
    worker: Arc<dyn RolloutWorker>,
    group: Option<Arc<dyn WeightGroup>>,
}

impl Service {
    fn group(&self) -> Result<Arc<dyn WeightGroup>, Status> {
        self.group.clone().ok_or_else(|| {
            Status::unimplemented(
                "this worker takes weights only by UpdateWeights: it was started without a weight group",
            )
        })
    }

    /// The worker's policy version, for a weight update's reply.
    async fn version(&self) -> Result<Response<pb::UpdateWeightsReply>, Status> {
        let info = self
            .worker
            .info()
            .await
            .map_err(|e| status_from_error(&e))?;
        Ok(Response::new(pb::UpdateWeightsReply {
            policy_version: info.policy_version,
        }))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::GenerateEvent, Status>> + Send>>;

#[tonic::async_trait]
impl service::RolloutService for Service {
    type GenerateStream = EventStream;

    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<EventStream>, Status> {
        // Malformed requests are refused alone; the worker sees only the others, so its
        // indices are mapped back to the caller's.
        let mut accepted = Vec::new();
        let mut index = Vec::new();
        let mut refused = Vec::new();
        for (i, r) in request.into_inner().requests.into_iter().enumerate() {
            match convert::request_from_proto(r) {
                Ok(r) => {
                    accepted.push(r);
                    index.push(i);
                }
                Err(message) => refused.push(Ok(convert::event_to_proto(Err(RequestError {
                    request: i,
                    message,
                })))),
            }
        }
        let events = if accepted.is_empty() {
            tokio::sync::mpsc::unbounded_channel().1
        } else {
            self.worker
                .generate(accepted)
                .await
                .map_err(|e| status_from_error(&e))?
        };
        let original = move |i: usize| index.get(i).copied().unwrap_or(i);
        let events = UnboundedReceiverStream::new(events).map(move |event| {
            let event = match event {
                Ok(mut c) => {
                    c.request = original(c.request);
                    Ok(c)
                }
                Err(mut e) => {
                    e.request = original(e.request);
                    Err(e)
                }
            };
            Ok(convert::event_to_proto(event))
        });
        // Dropping the stream (the client went away) drops the worker's receiver, which
        // cancels what is left of the batch.
        Ok(Response::new(Box::pin(
            tokio_stream::iter(refused).chain(events),
        )))
    }

    async fn update_weights(
        &self,
        request: Request<Streaming<pb::WeightsChunk>>,
    ) -> Result<Response<pb::UpdateWeightsReply>, Status> {
        let mut stream = request.into_inner();
        let mut assembler = Assembler::default();
        while let Some(chunk) = stream.message().await? {
            assembler.push(chunk).map_err(Status::invalid_argument)?;
        }
        let (version, tensors) = assembler.finish().map_err(Status::invalid_argument)?;
        self.worker
            .update_weights(version, tensors)
            .await
            .map_err(|e| status_from_error(&e))?;
        self.version().await
    }

    async fn join_weight_group(
        &self,
        request: Request<pb::JoinWeightGroupRequest>,
    ) -> Result<Response<pb::JoinWeightGroupReply>, Status> {
        let group = self.group()?;
        let r = request.into_inner();
        let timeout = Duration::try_from_secs_f64(r.timeout_s)
            .map_err(|e| Status::invalid_argument(format!("timeout_s = {}: {e}", r.timeout_s)))?;
        let meeting = Meeting {
            addr: r.addr,
            port: u16::try_from(r.port)
                .map_err(|_| Status::invalid_argument(format!("port {} is not a port", r.port)))?,
            rank: r.rank as usize,
            world: r.world as usize,
            timeout,
        };
        if meeting.rank == 0 || meeting.rank >= meeting.world {
            return Err(Status::invalid_argument(format!(
                "rank {} of {}: a worker is one of ranks 1..{}",
                meeting.rank, meeting.world, meeting.world
            )));
        }
        tokio::task::spawn_blocking(move || group.join(&meeting))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::unavailable)?;
        Ok(Response::new(pb::JoinWeightGroupReply {}))
    }

    async fn broadcast_weights(
        &self,
        request: Request<pb::BroadcastWeightsRequest>,
    ) -> Result<Response<pb::UpdateWeightsReply>, Status> {
        let group = self.group()?;
        let r = request.into_inner();
        let tensors =
            collective::allocate(&r.tensors, group.device()).map_err(Status::invalid_argument)?;
        let slots: Vec<tch::Tensor> = tensors.iter().map(|(_, t)| t.shallow_clone()).collect();
        tokio::task::spawn_blocking(move || group.receive(&slots))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::unavailable)?;
        self.worker
            .update_weights(r.version, tensors)
            .await
            .map_err(|e| status_from_error(&e))?;
        self.version().await
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthReply>, Status> {
        let info = self
            .worker
            .info()
            .await
            .map_err(|e| status_from_error(&e))?;
        Ok(Response::new(convert::info_to_proto(info)))
    }
}
