//! RLOO (Ahmadian et al. 2024, arXiv 2402.14740): REINFORCE with a leave-one-out baseline —
//! each sample's advantage is its reward minus the mean reward of the other `k − 1` samples of
//! its prompt — optimised with the PPO clipped surrogate (as OpenRLHF does), KL in the loss.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};

use crate::{
    actor_loss::ActorObjective,
    common::{err, kl_on, metrics},
    math::{broadcast_to_tokens, rloo_advantage},
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
        let per_sample = rloo_advantage(&batch.rewards, &batch.groups).map_err(err("rloo"))?;
        Ok(Targets {
            advantages: broadcast_to_tokens(&per_sample, &batch.mask).map_err(err("rloo"))?,
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
