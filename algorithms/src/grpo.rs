//! GRPO (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300): no critic; each sample's advantage
//! is its reward minus its group's mean (the `n` samples of one prompt), divided by the group's
//! standard deviation unless `scale_by_std` is off (Dr. GRPO, arXiv 2503.20783, which also
//! prefers a sequence-sum aggregation); the same advantage for every response token; PPO's
//! clipped surrogate with an optional KL term to the reference model in the loss.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};

use crate::{
    actor_loss::ActorObjective,
    common::{err, kl_on, metrics},
    math::{broadcast_to_tokens, grpo_advantage},
};

/// GRPO and its Dr. GRPO variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Grpo {
    /// The actor objective.
    pub objective: ActorObjective,
    /// Divide by the group's standard deviation (GRPO) or not (Dr. GRPO).
    pub scale_by_std: bool,
}

/// Guards the std division of all-equal groups.
const STD_EPS: f64 = 1e-6;

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
        let name = self.name().to_owned();
        let per_sample = grpo_advantage(&batch.rewards, &batch.groups, self.scale_by_std, STD_EPS)
            .map_err(err(&name))?;
        Ok(Targets {
            advantages: broadcast_to_tokens(&per_sample, &batch.mask).map_err(err(&name))?,
            returns: None,
            keep: None,
            metrics: metrics(batch, &per_sample),
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss(self.name(), inputs)
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.objective.inert_at_zero_advantage()
    }
}
