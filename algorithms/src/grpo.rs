//! GRPO (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300): no critic; each sample's advantage
//! is its reward minus its group's mean (the `n` samples of one prompt), divided by the group's
//! standard deviation unless `scale_by_std` is off (Dr. GRPO, arXiv 2503.20783, which also
//! prefers a sequence-sum aggregation); the same advantage for every response token; PPO's
//! clipped surrogate with an optional KL term to the reference model in the loss.

use rl_core::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
use tch::Kind;

use crate::{
    actor_loss::ActorObjective,
    core::{broadcast_to_tokens, grpo_advantage},
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
            reference: self.objective.kl.is_some_and(|(_, coef)| coef > 0.0),
            critic: false,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let err = |e: crate::core::AlgoError| AlgorithmError {
            algorithm: self.name().to_owned(),
            message: e.to_string(),
        };
        let per_sample = grpo_advantage(&batch.rewards, &batch.groups, self.scale_by_std, STD_EPS)
            .map_err(err)?;
        let advantages = broadcast_to_tokens(&per_sample, &batch.mask).map_err(err)?;
        let rewards = batch.rewards.to_kind(Kind::Double);
        let metrics = vec![
            (
                "reward/mean".to_owned(),
                rewards.mean(Kind::Double).double_value(&[]),
            ),
            (
                "reward/std".to_owned(),
                rewards.std(false).double_value(&[]),
            ),
            (
                "critic/advantages/mean".to_owned(),
                per_sample.mean(Kind::Double).double_value(&[]),
            ),
            (
                "critic/advantages/max".to_owned(),
                per_sample.max().double_value(&[]),
            ),
        ];
        Ok(Targets {
            advantages,
            returns: None,
            keep: None,
            metrics,
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss(self.name(), inputs)
    }
}
