//! REINFORCE++ (Hu 2025, arXiv 2501.03262): no critic; per-token rewards are the outcome score on
//! the last response token minus the KL penalty to the reference model on every token, their
//! discounted returns are whitened over the whole batch, and the PPO clipped surrogate is
//! optimised. The baseline variant subtracts each prompt's mean score first.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};

use crate::{
    actor_loss::ActorObjective,
    common::{KlInReward, estimate, kl_on, kl_penalty, metrics},
    math::{AdvantageEstimator, AdvantageParams},
    state,
};

/// REINFORCE++ and REINFORCE++-baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct ReinforcePp {
    /// The actor objective (its KL term is usually off: the KL is in the reward).
    pub objective: ActorObjective,
    /// KL penalty in the reward: estimator and (fixed or adaptive) coefficient.
    pub kl_in_reward: Option<KlInReward>,
    /// Discount γ of the returns.
    pub gamma: f64,
    /// Subtract the prompt's mean score first (REINFORCE++-baseline).
    pub baseline: bool,
}

impl Algorithm for ReinforcePp {
    fn name(&self) -> &str {
        if self.baseline {
            "reinforce_pp_baseline"
        } else {
            "reinforce_pp"
        }
    }

    fn needs(&self) -> Needs {
        Needs {
            reference: self.kl_in_reward.is_some() || kl_on(self.objective.kl),
            critic: false,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let name = self.name().to_owned();
        let kl = kl_penalty(&name, batch, self.kl_in_reward.as_mut())?;
        let (penalty, kl_metrics) = kl.unzip();
        let estimator = if self.baseline {
            AdvantageEstimator::ReinforcePpBaseline
        } else {
            AdvantageEstimator::ReinforcePp
        };
        let params = AdvantageParams {
            gamma: self.gamma,
            ..AdvantageParams::default()
        };
        let scores = &batch.rewards;
        let (out, per_sample) =
            estimate(&name, estimator, batch, scores, penalty.as_ref(), &params)?;
        let mut metrics = metrics(batch, &per_sample);
        metrics.extend(kl_metrics.into_iter().flatten());
        Ok(Targets {
            advantages: out.advantages,
            returns: None,
            keep: None,
            metrics,
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss(self.name(), inputs)
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.objective.inert_at_zero_advantage()
    }

    /// `{"kl_coef": c}` when the KL coefficient adapts; Null otherwise.
    fn state(&self) -> serde_json::Value {
        state::save(None, self.kl_in_reward.as_ref())
    }

    fn load_state(&mut self, saved: &serde_json::Value) -> Result<(), AlgorithmError> {
        let name = self.name().to_owned();
        state::load(&name, saved, false, self.kl_in_reward.as_mut()).map(|_| ())
    }
}
