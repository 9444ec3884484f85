//! Rule-based verifiers: pure functions of the reply and the task, one concept per file.

pub mod exact;
pub mod extract;
pub mod format;
pub mod number;
pub mod numeric;
pub mod pattern;
pub mod tags;

use rl_core::{RewardError, Score, Scoring};

/// The score of a pass/fail check: 1 for a pass, 0 for a fail.
pub fn binary(pass: bool) -> Score {
    Score::new(if pass { 1.0 } else { 0.0 })
}

/// The reference answer of `s`'s task, or an error from `reward` naming the task.
pub fn reference<'a>(reward: &str, s: &Scoring<'a>) -> Result<&'a str, RewardError> {
    s.task.answer.as_deref().ok_or_else(|| RewardError {
        reward: reward.to_owned(),
        message: format!(
            "task {:?} has no reference answer; {reward} needs Task::answer",
            s.task.id
        ),
    })
}
