//! [`RemoteScorer`]: a reward function served by another process (`rl reward-server`), reached
//! over gRPC, behind the same [`RewardFn`] trait as the in-process ones.
//!
//! [`RewardFn::score`] is synchronous, so the scorer owns a small tokio runtime (one worker
//! thread) that does the I/O; `score` hands it the call and waits on a plain channel. It may
//! be called from any thread, several at once; inside async code it blocks that task's thread,
//! so call it from `spawn_blocking` there.

use std::{
    sync::{Mutex, mpsc},
    time::{Duration, Instant},
};

use rl_core::{RewardError, RewardFn, Score, Scoring};
use rl_proto::{
    client::Dial,
    secret::Secret,
    v1::{self as pb, reward_service_client::RewardServiceClient},
};
use tonic::{Code, Request, Status, transport::Channel};

use super::{DEFAULT_MAX_MESSAGE_BYTES, convert, retry};

/// How a [`RemoteScorer`] talks to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The server's shared secret, sent as `authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// Deadline of one attempt (sent as `grpc-timeout`, so the server gives up too).
    pub timeout: Duration,
    /// Attempts per request, the first included (at least 1).
    pub attempts: u32,
    /// Longest wait before the second attempt; it doubles after each failure (with jitter).
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// Largest message accepted from the server, in bytes.
    pub max_message_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            token: None,
            timeout: Duration::from_secs(60),
            attempts: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// What the server takes per request (from its Health reply).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_items: usize,
    max_message_bytes: usize,
}

/// A reward function behind `rl reward-server` (or any [`super::RewardServer`]). Batches
/// larger than the server takes are split into several requests, sent one after another.
/// Transient failures (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED) are retried with
/// exponential backoff and jitter; others fail at once.
#[derive(Debug)]
pub struct RemoteScorer {
    addr: String,
    runtime: Option<tokio::runtime::Runtime>,
    client: RewardServiceClient<Channel>,
    dial: Dial,
    options: ClientOptions,
    /// Learned from the first Health reply.
    limits: Mutex<Option<Limits>>,
}

impl RemoteScorer {
    /// A scorer for the server at `addr` (`host:port` or `http://host:port`). Connects on first
    /// use, so a server that comes up later is fine; only a malformed address or token fails
    /// here.
    pub fn new(addr: &str, options: ClientOptions) -> Result<Self, RewardError> {
        let error = |message: String| RewardError {
            reward: "remote".to_owned(),
            message: format!("reward server {addr}: {message}"),
        };
        if options.attempts == 0 {
            return Err(error("attempts is 0: make at least 1".into()));
        }
        let dial = Dial::new(addr, options.token.as_ref(), options.connect_timeout)
            .map_err(|e| error(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rl-reward-client")
            .enable_all()
            .build()
            .map_err(|e| error(format!("cannot start the client's async runtime: {e}")))?;
        let channel = {
            let _inside = runtime.enter();
            dial.endpoint().connect_lazy()
        };
        let client = RewardServiceClient::new(channel)
            .max_decoding_message_size(options.max_message_bytes)
            .max_encoding_message_size(options.max_message_bytes);
        Ok(Self {
            addr: addr.to_owned(),
            runtime: Some(runtime),
            client,
            dial,
            options,
            limits: Mutex::new(None),
        })
    }

    /// The address it was made with.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server's Health reply (retried like Score).
    pub fn health(&self) -> Result<pb::RewardHealthReply, RewardError> {
        self.block_on(self.health_async())
    }

    /// Runs `future` on the scorer's runtime and waits for it on this thread.
    fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, RewardError>> + Send + 'static,
    ) -> Result<T, RewardError> {
        let Some(runtime) = &self.runtime else {
            return Err(self.error("the client is shutting down".into()));
        };
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(self.error("the client's runtime stopped".into())))
    }

    fn health_async(
        &self,
    ) -> impl Future<Output = Result<pb::RewardHealthReply, RewardError>> + Send + 'static {
        let call = self.caller();
        async move {
            call.with_retries(
                "Health",
                pb::RewardHealthRequest {},
                |mut client, request| async move { client.health(request).await },
            )
            .await
        }
    }

    fn error(&self, message: String) -> RewardError {
        RewardError {
            reward: self.name().to_owned(),
            message: format!("reward server {}: {message}", self.addr),
        }
    }

    /// What one call needs, owned, so it can move onto the runtime.
    fn caller(&self) -> Caller {
        Caller {
            addr: self.addr.clone(),
            client: self.client.clone(),
            dial: self.dial.clone(),
            options: self.options.clone(),
        }
    }

    /// The server's limits, asked once.
    fn limits(&self) -> Result<Limits, RewardError> {
        if let Some(limits) = *self.limits.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(limits);
        }
        let reply = self.health()?;
        let limits = Limits {
            max_items: (reply.max_items as usize).max(1),
            max_message_bytes: usize::try_from(reply.max_message_bytes)
                .unwrap_or(usize::MAX)
                .min(self.options.max_message_bytes),
        };
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = Some(limits);
        Ok(limits)
    }
}

impl Drop for RemoteScorer {
    fn drop(&mut self) {
        // Never blocks, so dropping the scorer is fine anywhere, async code included.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl RewardFn for RemoteScorer {
    fn name(&self) -> &str {
        "remote"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let items = batch
            .iter()
            .map(convert::item_to_proto)
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| self.error(e))?;
        let limits = self.limits()?;
        let chunks = split(items, limits);
        let call = self.caller();
        let results = self.block_on(async move {
            let mut results = Vec::new();
            for chunk in chunks {
                let message = pb::ScoreRequest { items: chunk };
                let reply = call
                    .with_retries("Score", message, |mut client, request| async move {
                        client.score(request).await
                    })
                    .await?;
                results.extend(reply.results);
            }
            Ok(results)
        })?;
        if results.len() != batch.len() {
            return Err(self.error(format!(
                "sent {} items, got {} results back",
                batch.len(),
                results.len()
            )));
        }
        results
            .into_iter()
            .zip(batch)
            .enumerate()
            .map(|(i, (result, s))| {
                convert::score_from_proto(result).map_err(|message| {
                    self.error(format!(
                        "could not score item {i} (task {:?}): {message}",
                        s.task.id
                    ))
                })
            })
            .collect()
    }
}

/// Splits `items` into requests the server takes: at most `max_items` each, and at most about
/// `max_message_bytes` on the wire (an item too big alone still goes, alone, and the server
/// says what is wrong).
fn split(items: Vec<pb::ScoreItem>, limits: Limits) -> Vec<Vec<pb::ScoreItem>> {
    use prost::Message;

    // Room for the request's own framing.
    let budget = limits.max_message_bytes.saturating_sub(1024).max(1);
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = item.encoded_len() + 8;
        if !chunk.is_empty() && (chunk.len() == limits.max_items || bytes + size > budget) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(item);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// One call's connection, token and retry policy, owned.
struct Caller {
    addr: String,
    client: RewardServiceClient<Channel>,
    dial: Dial,
    options: ClientOptions,
}

impl Caller {
    /// Runs `call` until it succeeds, fails for good, or the attempts run out; the error names
    /// the address, the attempts and the last status.
    async fn with_retries<M, R, F, Fut>(
        &self,
        rpc: &str,
        message: M,
        call: F,
    ) -> Result<R, RewardError>
    where
        M: Clone,
        F: Fn(RewardServiceClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let start = Instant::now();
        let o = &self.options;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The server answers DEADLINE_EXCEEDED just before the deadline; this guards
            // against one that does not answer at all.
            let guard = o.timeout + Duration::from_millis(500);
            let mut request = self.dial.request(message.clone());
            request.set_timeout(o.timeout);
            let status = match tokio::time::timeout(guard, call(self.client.clone(), request)).await
            {
                Ok(Ok(reply)) => return Ok(reply.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => {
                    Status::deadline_exceeded(format!("no answer within {} ms", guard.as_millis()))
                }
            };
            if !retry::retryable(status.code()) || attempt >= o.attempts {
                return Err(self.failure(rpc, attempt, start.elapsed(), &status));
            }
            let wait = retry::backoff(attempt, o.backoff, o.max_backoff);
            tracing::debug!(
                addr = %self.addr, rpc, attempt, code = ?status.code(), wait_ms = wait.as_millis() as u64,
                "reward server call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn failure(&self, rpc: &str, attempts: u32, elapsed: Duration, status: &Status) -> RewardError {
        let hint = match status.code() {
            Code::Unavailable => {
                "; check that `rl reward-server` runs there and that reward.url points at it"
            }
            Code::Unauthenticated => "; set RL_REWARD_TOKEN to the server's token",
            Code::DeadlineExceeded => "; raise reward.timeout_s or give the server more capacity",
            Code::ResourceExhausted => {
                "; the server is overloaded: raise its --max-queue or --max-concurrency"
            }
            _ => "",
        };
        let tries = if attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{attempts} attempts")
        };
        RewardError {
            reward: "remote".to_owned(),
            message: format!(
                "reward server {}: {rpc} failed after {tries} in {:.1} s; last status {:?}: {}{hint}",
                self.addr,
                elapsed.as_secs_f64(),
                status.code(),
                status.message()
            ),
        }
    }
}
