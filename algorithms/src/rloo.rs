//! RLOO (Ahmadian et al. 2024, arXiv 2402.14740): REINFORCE with a leave-one-out baseline —
//! each sample's advantage is its reward minus the mean reward of the other `k − 1` samples of
//! its prompt — optimised with the PPO clipped surrogate (as OpenRLHF does), KL in the loss.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};

use crate::{
    actor_loss::ActorObjective,
    common::{estimate, kl_on, metrics},
    math::{AdvantageEstimator, AdvantageParams},
};

/// RLOO.
#[derive(Debug, Clone, PartialEq)]
pub struct Rloo {
    /// The actor objective.
    pub objective: ActorObjective,
}

impl Algorithm for Rloo {
    fn name(&self) -> &str {
        "rloo"
    }

    fn needs(&self) -> Needs {
        Needs {
            reference: kl_on(self.objective.kl),
            critic: false,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let params = AdvantageParams::default();
        let estimator = AdvantageEstimator::Rloo;
        let (out, per_sample) = estimate("rloo", estimator, batch, &batch.rewards, None, &params)?;
        Ok(Targets {
            advantages: out.advantages,
            returns: None,
            keep: None,
            metrics: metrics(batch, &per_sample),
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss("rloo", inputs)
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.objective.inert_at_zero_advantage()
    }
}
