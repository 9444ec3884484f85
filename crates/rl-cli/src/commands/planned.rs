//! Subcommands whose interface is fixed but whose engine arrives with a later issue. They say so
//! and exit non-zero; none pretends to work.

/// A subcommand that is not available yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "`rl {command}` is not available yet: it arrives with {arrives_with}. Nothing was run. `rl train`, `rl generate`, `rl eval`, `rl logprobs`, `rl convert`, `rl rollout-worker` and `rl doctor` work today"
)]
pub struct NotYet {
    /// The subcommand.
    pub command: &'static str,
    /// What brings it.
    pub arrives_with: &'static str,
}

/// Refuses `command`, naming what brings it.
pub fn refuse(command: &'static str, arrives_with: &'static str) -> anyhow::Result<()> {
    Err(NotYet {
        command,
        arrives_with,
    }
    .into())
}
