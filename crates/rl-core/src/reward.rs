//! The [`RewardFn`] trait: scores a batch of (task, response) pairs. Rule-based verifiers,
//! reward models and remote scorers all implement it; the controller does not know which.

use std::collections::BTreeMap;

use crate::task::Task;

/// Why a batch could not be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reward {reward}: {message}")]
pub struct RewardError {
    /// The reward function's name.
    pub reward: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// One response to score.
#[derive(Debug, Clone, Copy)]
pub struct Scoring<'a> {
    /// The task it answers (reference answer and metadata included).
    pub task: &'a Task,
    /// The policy's final reply, as text.
    pub response: &'a str,
}

/// A score: the reward the algorithm uses and its named parts (logged as `reward/<name>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// The scalar reward.
    pub reward: f64,
    /// Sub-scores (e.g. `correct`, `format`), for metrics.
    pub parts: BTreeMap<String, f64>,
}

impl Score {
    /// A score without parts.
    pub fn new(reward: f64) -> Self {
        Self {
            reward,
            parts: BTreeMap::new(),
        }
    }
}

/// Scores batches of responses. Implementations must return one finite score per input, or an
/// error naming what is wrong; a NaN reward is an error, never a score.
///
/// ```
/// use rl_core::{RewardError, RewardFn, Score, Scoring, Task};
///
/// /// 1 when the response contains the reference answer.
/// struct Contains;
///
/// impl RewardFn for Contains {
///     fn name(&self) -> &str {
///         "contains"
///     }
///
///     fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
///         Ok(batch
///             .iter()
///             .map(|s| {
///                 let hit = s.task.answer.as_deref().is_some_and(|a| s.response.contains(a));
///                 Score::new(if hit { 1.0 } else { 0.0 })
///             })
///             .collect())
///     }
/// }
///
/// let task = Task::single_turn("0", "What is 2 + 2?", Some("4".into()));
/// let scores = Contains.score(&[Scoring { task: &task, response: "It is 4." }]).unwrap();
/// assert_eq!(scores[0].reward, 1.0);
/// ```
pub trait RewardFn: Send + Sync {
    /// Name used in configs and metrics.
    fn name(&self) -> &str;

    /// One score per element of `batch`, in order.
    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError>;
}
