//! The reward service's server: a thin tonic layer over any [`RewardFn`] on the shared
//! skeleton ([`rl_proto::server`]: bind, token, stop). It checks the request's limits and the
//! deadline, admits batches through a [`Gate`], and scores each batch on a blocking thread so a
//! slow scorer never stalls the async runtime.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use rl_core::{RewardFn, Scoring};
use rl_proto::{
    secret::Secret,
    server::{Listener, ServerError},
    v1::{self as pb, reward_service_server as service},
};
use tokio::time::Instant;
use tonic::{
    Code, Request, Response, Status,
    service::{Routes, interceptor::InterceptedService},
};

use super::{
    DEFAULT_MAX_ITEM_BYTES, DEFAULT_MAX_ITEMS, DEFAULT_MAX_MESSAGE_BYTES, convert,
    deadline::deadline, gate::Gate,
};

/// How a reward server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Shared secret every call must carry as `authorization: Bearer <token>`; None: no check
    /// (only sensible on a trusted network).
    pub token: Option<Secret>,
    /// Batches scored at the same time (each on its own blocking thread).
    pub max_concurrency: usize,
    /// Batches that may wait for a slot; more are refused with RESOURCE_EXHAUSTED.
    pub max_queue: usize,
    /// Items one request may hold.
    pub max_items: usize,
    /// Bytes of text one item may hold.
    pub max_item_bytes: usize,
    /// Largest message received or sent, in bytes (bigger: RESOURCE_EXHAUSTED).
    pub max_message_bytes: usize,
    /// Longest time spent on one request, waiting included (then DEADLINE_EXCEEDED).
    pub max_request_time: Duration,
    /// Once asked to stop, how long the calls in flight may take before the server stops anyway.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            token: None,
            max_concurrency: cores,
            max_queue: 4 * cores,
            max_items: DEFAULT_MAX_ITEMS,
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_request_time: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A bound reward server, not yet serving: bind first (so the port is known and a bad address
/// fails early), then [`serve`](Self::serve) a scorer.
#[derive(Debug)]
pub struct RewardServer {
    listener: Listener,
    options: ServerOptions,
}

impl RewardServer {
    /// Listens on `addr`: `HOST:PORT` (port 0 picks a free one), or a bare `PORT` on
    /// 127.0.0.1. Checks the options now, so bad ones fail before anything is served.
    pub async fn bind(addr: &str, options: ServerOptions) -> Result<Self, ServerError> {
        for (name, value) in [
            ("max_concurrency", options.max_concurrency),
            ("max_items", options.max_items),
            ("max_item_bytes", options.max_item_bytes),
            ("max_message_bytes", options.max_message_bytes),
        ] {
            if value == 0 {
                return Err(ServerError::Config(format!(
                    "the reward server's {name} is 0: it must be at least 1"
                )));
            }
        }
        if options.max_request_time.is_zero() {
            return Err(ServerError::Config(
                "the reward server's max request time is 0: give it at least 1 ms".into(),
            ));
        }
        let role = "reward server";
        let listener = Listener::bind(addr, 50052, role, options.token.as_ref()).await?;
        Ok(Self { listener, options })
    }

    /// The address it listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves `scorer` until `shutdown` completes, then stops taking calls and returns once the
    /// calls in flight are answered, or after `shutdown_grace`.
    pub async fn serve(
        self,
        scorer: Arc<dyn RewardFn>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let o = &self.options;
        let service = Service {
            scorer,
            gate: Arc::new(Gate::new(o.max_concurrency, o.max_queue)),
            options: o.clone(),
        };
        let service = service::RewardServiceServer::new(service)
            .max_decoding_message_size(o.max_message_bytes)
            .max_encoding_message_size(o.max_message_bytes);
        let routes = Routes::new(InterceptedService::new(service, self.listener.check()));
        let grace = o.shutdown_grace;
        self.listener.serve(routes, shutdown, grace).await
    }
}

/// The gRPC service over a scorer.
struct Service {
    scorer: Arc<dyn RewardFn>,
    gate: Arc<Gate>,
    options: ServerOptions,
}

impl Service {
    /// DEADLINE_EXCEEDED, saying what to change.
    fn too_late(&self) -> Status {
        Status::deadline_exceeded(format!(
            "the batch was not scored in time (the sooner of the client's deadline and the \
             server's limit of {} ms per request); the scorer or the queue is slow: send \
             smaller batches, give more time, or add capacity",
            self.options.max_request_time.as_millis()
        ))
    }

    /// INVALID_ARGUMENT when the batch breaks a limit, naming the item.
    fn validate(&self, items: &[pb::ScoreItem]) -> Result<(), Status> {
        let max = self.options.max_items;
        if items.is_empty() {
            return Err(Status::invalid_argument(format!(
                "the batch is empty: send 1 to {max} items"
            )));
        }
        if items.len() > max {
            return Err(Status::invalid_argument(format!(
                "the batch has {} items; this server takes at most {max} per request: split it",
                items.len()
            )));
        }
        let cap = self.options.max_item_bytes;
        for (i, item) in items.iter().enumerate() {
            let bytes = convert::item_text_bytes(item);
            if bytes > cap {
                return Err(Status::invalid_argument(format!(
                    "item {i} (task {:?}) holds {bytes} bytes of text (response {} bytes); this \
                     server takes at most {cap} per item: shorten it, or start the server with \
                     a larger --max-item-kib",
                    item.task_id,
                    item.response.len()
                )));
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl service::RewardService for Service {
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreReply>, Status> {
        let until = deadline(
            Instant::now(),
            request.metadata(),
            self.options.max_request_time,
        );
        let items = request.into_inner().items;
        self.validate(&items)?;
        // A deadline already gone (a tiny grpc-timeout) is not worth a scoring slot.
        if Instant::now() >= until {
            return Err(self.too_late());
        }
        let ticket = self.gate.admit()?;
        let scorer = self.scorer.clone();
        let work = async {
            let slot = self.gate.slot().await?;
            // The slot and the ticket go with the scoring: they free when it ends, even after
            // the caller stopped waiting.
            tokio::task::spawn_blocking(move || {
                let _held = (slot, ticket);
                score_items(&*scorer, items)
            })
            .await
            .map_err(|e| {
                Status::internal(format!(
                    "the scorer panicked on this batch ({e}); the server goes on"
                ))
            })?
        };
        let reply = tokio::time::timeout_at(until, work).await;
        match reply {
            // A reply that made it after the deadline is not one the client waits for.
            Ok(reply) if Instant::now() <= until => reply.map(Response::new),
            _ => Err(self.too_late()),
        }
        .inspect_err(|status| {
            if matches!(status.code(), Code::Internal | Code::DeadlineExceeded) {
                tracing::warn!(code = ?status.code(), "Score failed: {}", status.message());
            }
        })
    }

    async fn health(
        &self,
        _request: Request<pb::RewardHealthRequest>,
    ) -> Result<Response<pb::RewardHealthReply>, Status> {
        let o = &self.options;
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Response::new(pb::RewardHealthReply {
            scorer: self.scorer.name().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            in_flight: n(self.gate.in_flight()),
            queued: n(self.gate.queued()),
            capacity: n(self.gate.capacity()),
            max_queue: n(self.gate.max_queue()),
            max_items: n(o.max_items),
            max_item_bytes: o.max_item_bytes as u64,
            max_message_bytes: o.max_message_bytes as u64,
            max_request_ms: u64::try_from(o.max_request_time.as_millis()).unwrap_or(u64::MAX),
        }))
    }
}

/// Scores a validated batch (on a blocking thread): items that do not convert get their own
/// error; the rest go to the scorer in one call. A scorer error, a wrong count or a
/// non-finite number fails the whole request (INTERNAL) and nothing else.
fn score_items(scorer: &dyn RewardFn, items: Vec<pb::ScoreItem>) -> Result<pb::ScoreReply, Status> {
    let n = items.len();
    let mut results: Vec<Option<pb::ScoreResult>> = Vec::with_capacity(n);
    let mut pairs = Vec::with_capacity(n);
    for item in items {
        match convert::item_from_proto(item) {
            Ok(pair) => {
                pairs.push(pair);
                results.push(None);
            }
            Err(message) => {
                let i = results.len();
                results.push(Some(convert::error_to_proto(format!(
                    "item {i}: {message}"
                ))));
            }
        }
    }
    let batch: Vec<Scoring<'_>> = pairs
        .iter()
        .map(|(task, response)| Scoring { task, response })
        .collect();
    let name = scorer.name();
    let scores = if batch.is_empty() {
        Vec::new()
    } else {
        scorer.score(&batch).map_err(|e| {
            Status::internal(format!(
                "scorer {name:?} failed on this batch of {} items: {e}",
                batch.len()
            ))
        })?
    };
    if scores.len() != batch.len() {
        return Err(Status::internal(format!(
            "scorer {name:?} returned {} scores for {} items; this request failed",
            scores.len(),
            batch.len()
        )));
    }
    let mut scores = scores.into_iter().zip(&batch);
    for (i, slot) in results.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        let Some((score, pair)) = scores.next() else {
            break;
        };
        let bad = std::iter::once(("reward", score.reward))
            .chain(score.parts.iter().map(|(k, v)| (k.as_str(), *v)))
            .find(|(_, v)| !v.is_finite());
        if let Some((what, value)) = bad {
            return Err(Status::internal(format!(
                "scorer {name:?} gave item {i} (task {:?}) a non-finite {what} ({value}); this \
                 request failed, the server goes on",
                pair.task.id
            )));
        }
        *slot = Some(convert::score_to_proto(score));
    }
    Ok(pb::ScoreReply {
        results: results.into_iter().flatten().collect(),
    })
}
