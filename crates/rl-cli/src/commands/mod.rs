//! One file per subcommand; each is a thin layer over the library crates.

pub mod convert;
pub mod doctor;
pub mod logprobs;
pub mod planned;
pub mod train;

/// Arguments that do not make sense together or for the input given (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
