//! The scoring phase: each episode's reward, from the environment when it gave one, else from
//! the run's [`RewardFn`] on the final reply. A sample whose score errs or is not finite is
//! dropped with its reason (counted in `rollout/dropped`, never trained on); a scorer that fails
//! for every sample (a reward server that went away) is an error that stops the run.

use std::collections::BTreeMap;

use rl_core::{RewardError, RewardFn, Scoring, Task};

use super::rollout::Sampled;

/// Scores of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// Per sample: its reward, or why it has none.
    pub rewards: Vec<Result<f64, String>>,
    /// Means of the named reward parts (`correct`, `format`, ...) over the scored samples.
    pub parts: BTreeMap<String, f64>,
}

/// Individually scored samples that may fail before a failing batch counts as a broken
/// scorer rather than a few bad samples.
const PROBES: usize = 2;

/// Scores `sampled` (episode `i` answers `tasks[sampled[i].episode.task]`).
pub fn score(
    reward: &dyn RewardFn,
    tasks: &[Task],
    sampled: &[Sampled],
) -> Result<Scores, RewardError> {
    let mut rewards: Vec<Result<f64, String>> = sampled
        .iter()
        .map(|s| match (&s.dropped, s.episode.env_reward) {
            (Some(why), _) => Err(format!("refused by the rollout worker: {why}")),
            (None, Some(r)) => Ok(r),
            (None, None) => Err(String::new()), // to score below
        })
        .collect();
    let todo: Vec<usize> = (0..sampled.len())
        .filter(|&i| rewards[i].as_ref().is_err_and(String::is_empty))
        .collect();
    let scoring = |i: usize| Scoring {
        task: &tasks[sampled[i].episode.task],
        response: sampled[i].episode.reply(),
    };
    let batch: Vec<Scoring<'_>> = todo.iter().map(|&i| scoring(i)).collect();
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut take = |i: usize, score: rl_core::Score, rewards: &mut Vec<Result<f64, String>>| {
        rewards[i] = if score.reward.is_finite() {
            for (k, v) in score.parts {
                let e = sums.entry(k).or_default();
                *e = (e.0 + v, e.1 + 1);
            }
            Ok(score.reward)
        } else {
            Err(format!("the reward is {}", score.reward))
        };
    };
    match reward.score(&batch) {
        Ok(scores) if scores.len() == todo.len() => {
            for (&i, s) in todo.iter().zip(scores) {
                take(i, s, &mut rewards);
            }
        }
        Ok(scores) => {
            return Err(RewardError {
                reward: reward.name().to_owned(),
                message: format!(
                    "returned {} scores for {} samples",
                    scores.len(),
                    todo.len()
                ),
            });
        }
        Err(batch_error) => {
            // Find the samples that fail; a scorer failing its first probes is broken.
            for (n, &i) in todo.iter().enumerate() {
                match reward.score(&[scoring(i)]) {
                    Ok(mut one) if one.len() == 1 => take(i, one.remove(0), &mut rewards),
                    Ok(_) => rewards[i] = Err("the scorer returned no score".into()),
                    Err(_) if n + 1 == PROBES && rewards[todo[0]].is_err() => {
                        return Err(batch_error);
                    }
                    Err(e) => rewards[i] = Err(e.to_string()),
                }
            }
        }
    }
    let parts = sums
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / n.max(1) as f64))
        .collect();
    Ok(Scores { rewards, parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rl_core::{Episode, Message, Score};
    use rl_rollout::FinishReason;

    use crate::trainer::transcript::TokenTranscript;

    /// Scores the length of the reply; "nan" scores NaN and "boom" fails the batch.
    struct Length {
        broken: bool,
    }

    impl RewardFn for Length {
        fn name(&self) -> &str {
            "length"
        }

        fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
            if self.broken || batch.iter().any(|s| s.response == "boom") {
                return Err(RewardError {
                    reward: "length".into(),
                    message: "cannot score".into(),
                });
            }
            Ok(batch
                .iter()
                .map(|s| match s.response {
                    "nan" => Score::new(f64::NAN),
                    r => Score::new(r.len() as f64),
                })
                .collect())
        }
    }

    fn sampled(reply: &str) -> Sampled {
        Sampled {
            episode: Episode {
                task: 0,
                sample: 0,
                transcript: vec![Message::user("q"), Message::assistant(reply)],
                env_reward: None,
                replies: 1,
            },
            tokens: TokenTranscript::new(vec![1]),
            finish: FinishReason::Stop,
            dropped: None,
            policy_version: 0,
            truncated: false,
        }
    }

    #[test]
    fn bad_samples_are_dropped_with_their_reason_and_the_rest_scored() {
        let tasks = [Task::single_turn("t", "q", None)];
        let mut refused = sampled("x");
        refused.dropped = Some("too long".into());
        let batch = [sampled("ab"), sampled("nan"), refused, sampled("boom")];
        let scores = score(&Length { broken: false }, &tasks, &batch).unwrap();
        assert_eq!(scores.rewards[0], Ok(2.0));
        assert_eq!(scores.rewards[1], Err("the reward is NaN".into()));
        assert!(scores.rewards[2].as_ref().unwrap_err().contains("too long"));
        assert!(
            scores.rewards[3]
                .as_ref()
                .unwrap_err()
                .contains("cannot score")
        );
    }

    #[test]
    fn a_scorer_that_fails_everything_is_an_error() {
        let tasks = [Task::single_turn("t", "q", None)];
        let batch = [sampled("ab"), sampled("cd"), sampled("ef")];
        let err = score(&Length { broken: true }, &tasks, &batch).unwrap_err();
        assert!(err.to_string().contains("cannot score"), "{err}");
    }
}
