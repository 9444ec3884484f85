//! Errors of the engine and the worker that are not about one request (those are
//! [`crate::RequestError`]s and leave the other requests running).

/// Why the engine or a worker could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// An engine setting does not fit the model or the device.
    #[error("invalid engine setting: {0}")]
    Config(String),
    /// A weight update was refused; the previous weights and version stay in place.
    #[error("weight update refused: {0}")]
    Weights(String),
    /// The worker thread is gone (it panicked or was shut down).
    #[error("the rollout worker has stopped: {0}")]
    WorkerGone(String),
    /// The engine failed while generating (e.g. out of device memory); the batch's
    /// remaining completions are lost, the worker keeps serving.
    #[error("generation failed: {0}")]
    Engine(String),
    /// A remote worker could not be reached or answered with an error.
    #[error("remote rollout worker {addr}: {message}")]
    Remote {
        /// Its address.
        addr: String,
        /// What went wrong.
        message: String,
    },
}
