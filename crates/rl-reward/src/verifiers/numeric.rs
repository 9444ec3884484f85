//! Exact numeric match: 1 when the reply's final number (see [`extract`](super::extract))
//! equals the task's reference answer as an exact rational (`3.50` = `3.5` = `7/2`,
//! `1,234` = `1234`), else 0.

use rl_core::{RewardError, RewardFn, Score, Scoring};

use crate::{
    rational::Rational,
    verifiers::{binary, extract::Extractor, number::parse_number, reference},
};

/// Scores 1 for a reply whose final number equals the reference answer, 0 otherwise (no
/// number, a number too large to represent, or a different value).
///
/// The reference (`Task::answer`) must be one number, e.g. `"42"`, `"-1,234"`, `"3.5"`,
/// `"7/2"`; a task without one, or with text that is not a number, fails the batch with an
/// error naming the task.
///
/// ```
/// use rl_core::{RewardFn, Scoring, Task};
/// use rl_reward::NumericMatch;
///
/// let task = Task::single_turn("t0", "What is 3 + 0.5?", Some("3.5".into()));
/// let replies = ["3 + 0.5 = 3.50", r"\boxed{7/2}", "The answer is 4."];
/// let batch: Vec<_> = replies.iter().map(|r| Scoring { task: &task, response: r }).collect();
/// let rewards: Vec<f64> = NumericMatch::default().score(&batch).unwrap().iter().map(|s| s.reward).collect();
/// assert_eq!(rewards, [1.0, 1.0, 0.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct NumericMatch {
    extractor: Extractor,
}

impl NumericMatch {
    /// Scored with the given extraction rules (answer tag, scan window).
    pub fn new(extractor: Extractor) -> Self {
        Self { extractor }
    }

    /// Whether `reply`'s final number equals `reference`.
    pub fn matches(&self, reply: &str, reference: Rational) -> bool {
        self.extractor
            .extract(reply)
            .and_then(|e| e.value)
            .is_some_and(|v| v == reference)
    }
}

impl RewardFn for NumericMatch {
    fn name(&self) -> &str {
        "numeric_match"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        batch
            .iter()
            .map(|s| {
                let reference = reference_number(self.name(), s)?;
                Ok(binary(self.matches(s.response, reference)))
            })
            .collect()
    }
}

/// The task's reference answer as a number, or an error naming the task.
fn reference_number(reward: &str, s: &Scoring<'_>) -> Result<Rational, RewardError> {
    let answer = reference(reward, s)?;
    parse_number(answer).ok_or_else(|| {
        let shown: String = answer.chars().take(64).collect();
        RewardError {
            reward: reward.to_owned(),
            message: format!(
                "task {:?}: reference answer {shown:?} is not one number (like 42, -1,234, 3.5, 7/2) that fits in 128 bits",
                s.task.id
            ),
        }
    })
}
