//! `reward.scale` and `reward.clip` around any reward function: `clip(scale · r, ±clip)`.
//! Parts are reported as the inner function gave them.

use rl_core::{RewardError, RewardFn, Score, Scoring, config::RewardConfig};

use crate::error::BuildError;

/// Multiplies another reward function's rewards by `scale`, then clips them to
/// `[-clip, clip]` when a clip is set.
pub struct Scaled {
    inner: Box<dyn RewardFn>,
    scale: f64,
    clip: Option<f64>,
}

impl Scaled {
    /// `inner` scaled by `scale` (finite, non-zero) and clipped to `clip` (finite, > 0).
    pub fn new(
        inner: Box<dyn RewardFn>,
        scale: f64,
        clip: Option<f64>,
    ) -> Result<Self, BuildError> {
        if !scale.is_finite() || scale == 0.0 {
            return Err(BuildError::BadScale(format!(
                "reward scale {scale}: must be a finite, non-zero number"
            )));
        }
        if let Some(c) = clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(BuildError::BadScale(format!(
                "reward clip {c}: must be a finite number > 0"
            )));
        }
        Ok(Self { inner, scale, clip })
    }

    /// `inner` scaled and clipped as `[reward]` says (`reward.scale`, `reward.clip`).
    pub fn from_config(
        inner: Box<dyn RewardFn>,
        config: &RewardConfig,
    ) -> Result<Self, BuildError> {
        Self::new(inner, config.scale, config.clip)
    }
}

impl RewardFn for Scaled {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        let mut scores = self.inner.score(batch)?;
        for s in &mut scores {
            s.reward *= self.scale;
            if let Some(c) = self.clip {
                s.reward = s.reward.clamp(-c, c);
            }
            if !s.reward.is_finite() {
                return Err(RewardError {
                    reward: self.name().to_owned(),
                    message: format!("scaled reward {} is not finite", s.reward),
                });
            }
        }
        Ok(scores)
    }
}
