//! A weighted sum of reward functions: `reward = Σ wᵢ · rᵢ`, each part's own reward (before
//! weighting) reported under its name in [`Score::parts`], and the part's own parts under
//! `name/sub`.

use rl_core::{RewardError, RewardFn, Score, Scoring};

use crate::error::BuildError;

/// One named, weighted part of a [`WeightedSum`].
pub struct Part {
    /// Name in `Score::parts` and metrics (`reward/<name>`).
    pub name: String,
    /// Weight in the sum.
    pub weight: f64,
    /// The part's scorer.
    pub reward: Box<dyn RewardFn>,
}

impl Part {
    /// A part named `name`.
    pub fn new(name: impl Into<String>, weight: f64, reward: impl RewardFn + 'static) -> Self {
        Self {
            name: name.into(),
            weight,
            reward: Box::new(reward),
        }
    }
}

/// Several reward functions scored on the same batch and summed with weights.
///
/// ```
/// use rl_core::{RewardFn, Scoring, Task};
/// use rl_reward::{NumericMatch, Part, TagFormat, WeightedSum};
///
/// let sum = WeightedSum::new(
///     "math",
///     vec![
///         Part::new("correct", 1.0, NumericMatch::default()),
///         Part::new("format", 0.1, TagFormat::new(["answer"]).unwrap()),
///     ],
/// )
/// .unwrap();
/// let task = Task::single_turn("t0", "2 + 2?", Some("4".into()));
/// let s = sum.score(&[Scoring { task: &task, response: "<answer>4</answer>" }]).unwrap();
/// assert!((s[0].reward - 1.1).abs() < 1e-12);
/// assert_eq!(s[0].parts["correct"], 1.0);
/// assert_eq!(s[0].parts["format"], 1.0);
/// ```
pub struct WeightedSum {
    name: String,
    parts: Vec<Part>,
}

impl WeightedSum {
    /// A sum named `name` (its name in errors) of `parts`: at least one, finite weights,
    /// distinct names.
    pub fn new(name: impl Into<String>, parts: Vec<Part>) -> Result<Self, BuildError> {
        if parts.is_empty() {
            return Err(BuildError::NoParts);
        }
        for (i, p) in parts.iter().enumerate() {
            if !p.weight.is_finite() {
                return Err(BuildError::BadWeight {
                    name: p.name.clone(),
                    weight: p.weight,
                });
            }
            if parts[..i].iter().any(|q| q.name == p.name) {
                return Err(BuildError::DuplicatePart(p.name.clone()));
            }
        }
        Ok(Self {
            name: name.into(),
            parts,
        })
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
}

impl RewardFn for WeightedSum {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        let mut out = vec![Score::default(); batch.len()];
        for part in &self.parts {
            let error = |message: String| RewardError {
                reward: self.name.clone(),
                message: format!("part {:?} ({}): {message}", part.name, part.reward.name()),
            };
            let scores = part.reward.score(batch).map_err(|e| error(e.to_string()))?;
            if scores.len() != batch.len() {
                let n = scores.len();
                return Err(error(format!(
                    "returned {n} scores for {} responses",
                    batch.len()
                )));
            }
            for (i, (total, s)) in out.iter_mut().zip(scores).enumerate() {
                if !s.reward.is_finite() {
                    return Err(error(format!(
                        "reward {} for task {:?} is not finite",
                        s.reward, batch[i].task.id
                    )));
                }
                total.reward += part.weight * s.reward;
                for (sub, v) in s.parts {
                    total.parts.insert(format!("{}/{sub}", part.name), v);
                }
                total.parts.insert(part.name.clone(), s.reward);
            }
        }
        Ok(out)
    }
}
