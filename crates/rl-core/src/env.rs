//! The [`Env`] trait: a task source, single- or multi-turn. Environments live in `envs/`, one
//! file each; users add their own in their own crate by implementing this trait.

use crate::{
    chat::Message,
    task::{Split, Task},
};

/// Why an environment could not produce tasks or take a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment {env}: {message}")]
pub struct EnvError {
    /// The environment's name.
    pub env: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// What follows the policy's reply in a multi-turn task.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The environment answers (a tool result, the next user turn); the policy speaks again.
    Continue(Message),
    /// The episode is over. `Some(r)`: the environment's own reward; `None`: the run's
    /// [`RewardFn`](crate::RewardFn) scores the final reply.
    Done(Option<f64>),
}

/// A task source. Single-turn tasks only implement [`tasks`](Env::tasks): each episode ends
/// after the first reply, which the reward function scores. Multi-turn tasks also implement
/// [`step`](Env::step).
///
/// A user-defined environment, in the user's own crate:
///
/// ```
/// use rl_core::{Env, EnvError, Split, Task};
///
/// /// "Say N": the answer is the number itself.
/// struct Echo;
///
/// impl Env for Echo {
///     fn name(&self) -> &str {
///         "echo"
///     }
///
///     fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
///         let offset = if split == Split::Eval { 1_000_000 } else { 0 };
///         Ok((0..n as u64)
///             .map(|i| {
///                 let x = offset + (seed + i) % 1000;
///                 Task::single_turn(format!("{x}"), format!("Say {x}."), Some(x.to_string()))
///             })
///             .collect())
///     }
/// }
///
/// let tasks = Echo.tasks(Split::Train, 2, 7).unwrap();
/// assert_eq!(tasks[1].answer.as_deref(), Some("8"));
/// ```
pub trait Env: Send {
    /// Name used in configs and metrics.
    fn name(&self) -> &str;

    /// `n` tasks from `split`, the same for the same `seed`.
    fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError>;

    /// The policy replied `reply` after `transcript` (the task's messages and the turns so
    /// far) in `task`: what comes next. Single-turn environments keep the default, which ends
    /// the episode and leaves scoring to the reward function.
    fn step(
        &mut self,
        task: &Task,
        transcript: &[Message],
        reply: &str,
    ) -> Result<Transition, EnvError> {
        let _ = (task, transcript, reply);
        Ok(Transition::Done(None))
    }
}
