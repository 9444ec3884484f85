//! Why a reward server could not start or stopped. Errors of a remote scoring call are
//! [`rl_core::RewardError`]s, which the [`rl_core::RewardFn`] trait returns.

/// Why a reward server could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound, or serving stopped with an I/O error.
    #[error("reward server on {addr}: {message}")]
    Listen {
        /// The address given.
        addr: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A setting that cannot work (a bad token, a zero limit).
    #[error("{0}")]
    Config(String),
}
