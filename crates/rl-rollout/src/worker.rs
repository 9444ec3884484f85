//! Rollout workers: the [`RolloutWorker`] trait the controller drives, and [`LocalWorker`], the
//! actor that owns one [`Engine`] (one policy replica on one device) on its own OS thread.
//! libtorch tensors are not `Sync` and grad mode is per thread, so the engine never leaves its
//! thread: callers talk to it through a command channel, and completions stream back on a
//! tokio channel as they finish. New requests join the running batch between decode steps;
//! weight updates wait until the batch in flight drains, so a completion never mixes versions
//! (an empty update, or one with a NaN or an infinity, is refused at once).

use std::{
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
};

use tch::Tensor;
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::{
    Engine, Event, GenerateRequest, RolloutError,
    remote::collective::{Meeting, Spec},
};

/// A boxed, sendable future (keeps [`RolloutWorker`] usable as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Completions of one `generate` call, streamed as they finish; the stream ends when all of
/// them (and any refusals) have arrived. Dropping it cancels what is left within a decode step.
pub type EventStream = tmpsc::UnboundedReceiver<Event>;

/// Named tensors of a weight update (HF names, as in the checkpoint).
pub type NamedTensors = Vec<(String, Tensor)>;

/// What a worker says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Version of the weights in place.
    pub policy_version: u64,
    /// Device of the replica (`cpu`, `cuda:0`).
    pub device: String,
    /// Completions decoded together.
    pub max_batch: i64,
    /// Tokens per completion, prompt included.
    pub max_seq_len: i64,
}

/// A rollout worker as the controller sees it: in this process ([`LocalWorker`]) or behind
/// gRPC. The same calls, whatever the placement.
pub trait RolloutWorker: Send + Sync {
    /// Starts generating `requests`; completions arrive on the stream as they finish.
    fn generate(
        &self,
        requests: Vec<GenerateRequest>,
    ) -> BoxFuture<'_, Result<EventStream, RolloutError>>;

    /// Replaces weights in place (after the batch in flight) and sets the policy version.
    fn update_weights(
        &self,
        version: u64,
        tensors: NamedTensors,
    ) -> BoxFuture<'_, Result<(), RolloutError>>;

    /// The worker's state; an error when it cannot be reached or has stopped.
    fn info(&self) -> BoxFuture<'_, Result<WorkerInfo, RolloutError>>;

    /// Joins the controller's weight group ([`crate::remote::collective`]); only a worker in
    /// another process can.
    fn join_weight_group(&self, meeting: Meeting) -> BoxFuture<'_, Result<(), RolloutError>> {
        let _ = meeting;
        Box::pin(async {
            Err(RolloutError::Config(
                "an in-process worker takes the weights by copy, not over a weight group".into(),
            ))
        })
    }

    /// Takes weights the controller broadcasts over the weight group (tensors as `specs` say,
    /// in that order) and sets the policy version; the controller broadcasts while it runs.
    fn broadcast_weights(
        &self,
        version: u64,
        specs: Vec<Spec>,
    ) -> BoxFuture<'_, Result<(), RolloutError>> {
        let _ = (version, specs);
        Box::pin(async {
            Err(RolloutError::Config(
                "an in-process worker takes the weights by copy, not over a weight group".into(),
            ))
        })
    }
}

/// Where the result of a weight update goes.
type UpdateReply = oneshot::Sender<Result<(), RolloutError>>;

enum Command {
    Generate(Vec<GenerateRequest>, tmpsc::UnboundedSender<Event>),
    UpdateWeights(u64, NamedTensors, UpdateReply),
}

/// The in-process worker: a thread that owns an [`Engine`].
pub struct LocalWorker {
    commands: mpsc::Sender<Command>,
    info: WorkerInfo,
    version: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LocalWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWorker")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LocalWorker {
    /// Starts the worker thread and builds the engine there with `build` (so the model is
    /// loaded on the thread that will use it); returns once it is ready or failed.
    pub fn spawn<F>(name: &str, build: F) -> Result<Self, RolloutError>
    where
        F: FnOnce() -> Result<Engine, RolloutError> + Send + 'static,
    {
        let (commands, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let version = Arc::new(AtomicU64::new(0));
        let shared = version.clone();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let engine = match catch_unwind(AssertUnwindSafe(build)) {
                    Ok(Ok(engine)) => engine,
                    Ok(Err(e)) => return drop(ready_tx.send(Err(e))),
                    Err(panic) => {
                        let e = RolloutError::Engine(panic_message(&panic));
                        return drop(ready_tx.send(Err(e)));
                    }
                };
                let info = WorkerInfo {
                    policy_version: engine.policy_version(),
                    device: rl_model::device_name(engine.device()),
                    max_batch: engine.max_batch(),
                    max_seq_len: engine.max_seq_len(),
                };
                if ready_tx.send(Ok(info)).is_ok() {
                    serve(engine, &inbox, &shared);
                }
            })
            .map_err(|e| RolloutError::WorkerGone(format!("cannot start its thread: {e}")))?;
        let info = ready_rx
            .recv()
            .map_err(|_| RolloutError::WorkerGone("it exited while starting".into()))??;
        Ok(Self {
            commands,
            info,
            version,
            thread: Some(thread),
        })
    }

    fn send(&self, command: Command) -> Result<(), RolloutError> {
        self.commands
            .send(command)
            .map_err(|_| RolloutError::WorkerGone("its thread has exited".into()))
    }
}

impl RolloutWorker for LocalWorker {
    fn generate(
        &self,
        requests: Vec<GenerateRequest>,
    ) -> BoxFuture<'_, Result<EventStream, RolloutError>> {
        let (tx, rx) = tmpsc::unbounded_channel();
        let sent = self.send(Command::Generate(requests, tx));
        Box::pin(async move { sent.map(|()| rx) })
    }

    fn update_weights(
        &self,
        version: u64,
        tensors: NamedTensors,
    ) -> BoxFuture<'_, Result<(), RolloutError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Command::UpdateWeights(version, tensors, tx));
        Box::pin(async move {
            sent?;
            rx.await
                .map_err(|_| RolloutError::WorkerGone("it exited during the update".into()))?
        })
    }

    fn info(&self) -> BoxFuture<'_, Result<WorkerInfo, RolloutError>> {
        let mut info = self.info.clone();
        info.policy_version = self.version.load(Ordering::Acquire);
        let alive = self.thread.as_ref().is_some_and(|t| !t.is_finished());
        Box::pin(async move {
            if alive {
                Ok(info)
            } else {
                Err(RolloutError::WorkerGone("its thread has exited".into()))
            }
        })
    }
}

impl Drop for LocalWorker {
    fn drop(&mut self) {
        // Closing the command channel ends the loop once the work in flight is done.
        let (closed, _) = mpsc::channel();
        self.commands = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The worker loop: take commands (blocking only when idle), run engine steps, apply weight
/// updates once the engine has drained. Ends when every handle is gone and the work is done.
fn serve(mut engine: Engine, inbox: &mpsc::Receiver<Command>, version: &AtomicU64) {
    let mut updates: Vec<(u64, NamedTensors, UpdateReply)> = Vec::new();
    let mut waiting: Vec<(Vec<GenerateRequest>, tmpsc::UnboundedSender<Event>)> = Vec::new();
    let mut open = true;
    loop {
        let next = if engine.is_idle() && updates.is_empty() && waiting.is_empty() {
            if !open {
                return;
            }
            inbox.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            inbox.try_recv()
        };
        match next {
            Ok(Command::Generate(requests, events)) => waiting.push((requests, events)),
            Ok(Command::UpdateWeights(v, tensors, reply)) => match check_update(&tensors) {
                Ok(()) => updates.push((v, tensors, reply)),
                Err(e) => drop(reply.send(Err(e))),
            },
            Err(mpsc::TryRecvError::Disconnected) => open = false,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if !updates.is_empty() && engine.is_idle() {
            for (v, tensors, reply) in updates.drain(..) {
                let result = engine.update_weights(v, &tensors);
                version.store(engine.policy_version(), Ordering::Release);
                let _ = reply.send(result);
            }
        }
        if updates.is_empty() {
            // A pending update holds new submissions back so the batch drains.
            for (requests, events) in waiting.drain(..) {
                if !events.is_closed() {
                    engine.submit(&requests, events.into());
                }
            }
        }
        if !engine.is_idle()
            && let Err(panic) = catch_unwind(AssertUnwindSafe(|| engine.step()))
        {
            engine.fail_all(&format!("generation failed: {}", panic_message(&panic)));
        }
    }
}

/// Refuses, before it waits for the batch in flight, an update that must not be applied: one
/// without tensors (it would only bump the version) or one holding a NaN or an infinity (the
/// replica would then sample garbage without an error). Names the first offending tensor.
pub(crate) fn check_update(tensors: &NamedTensors) -> Result<(), RolloutError> {
    if tensors.is_empty() {
        return Err(RolloutError::Weights(
            "the update is empty: send at least one tensor (a version alone changes no weight)"
                .into(),
        ));
    }
    for (name, tensor) in tensors {
        let bad = tensor
            .f_isfinite()
            .and_then(|finite| finite.f_logical_not())
            .and_then(|bad| bad.f_sum(tch::Kind::Int64))
            .and_then(|count| count.f_int64_value(&[]))
            .map_err(|e| RolloutError::Weights(format!("{name}: cannot check its values: {e}")))?;
        if bad > 0 {
            return Err(RolloutError::Weights(format!(
                "{name}: {bad} of its {} values are NaN or infinite; send finite weights",
                tensor.numel()
            )));
        }
    }
    Ok(())
}

/// The message of a caught panic (libtorch errors surface as panics in tch).
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".into())
}
