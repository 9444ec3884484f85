//! GRPO (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300): no critic; each sample's advantage
//! is its reward minus its group's mean (the `n` samples of one prompt), divided by the group's
//! standard deviation unless `scale_by_std` is off (Dr. GRPO, arXiv 2503.20783, which also
//! prefers a sequence-sum aggregation); the same advantage for every response token; PPO's
//! clipped surrogate with an optional KL term to the reference model in the loss.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};

use crate::{
    actor_loss::ActorObjective,
    common::{estimate, kl_on, metrics},
    math::{AdvantageEstimator, AdvantageParams},
};

/// GRPO and its Dr. GRPO variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Grpo {
    /// The actor objective.
    pub objective: ActorObjective,
    /// Divide by the group's standard deviation (GRPO) or not (Dr. GRPO).
    pub scale_by_std: bool,
}

impl Algorithm for Grpo {
    fn name(&self) -> &str {
        if self.scale_by_std { "grpo" } else { "dr_grpo" }
    }

    fn needs(&self) -> Needs {
        Needs {
            reference: kl_on(self.objective.kl),
            critic: false,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let params = AdvantageParams {
            scale_by_std: self.scale_by_std,
            ..AdvantageParams::default()
        };
        let estimator = AdvantageEstimator::GroupNorm;
        let (out, per_sample) =
            estimate(self.name(), estimator, batch, &batch.rewards, None, &params)?;
        Ok(Targets {
            metrics: metrics(batch, &per_sample),
            advantages: out.advantages,
            returns: None,
            keep: None,
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss(self.name(), inputs)
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.objective.inert_at_zero_advantage()
    }
}
