//! PPO with a learned critic (Schulman et al. 2017, arXiv 1707.06347) as used for LLMs
//! (Ouyang et al. 2022): token rewards are the outcome score on the last response token minus
//! the KL penalty to the reference model on every token; advantages come from GAE(γ, λ)
//! (arXiv 1506.02438) over the critic's values and are whitened; the actor takes the clipped
//! surrogate (with dual-clip when set), the critic a clipped value loss towards the returns.
//! During the first `critic_warmup` updates only the critic learns.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
use tch::{Kind, Tensor};

use crate::{
    actor_loss::ActorObjective,
    common::{KlInReward, err, estimate, kl_on, kl_penalty, metrics},
    math::{AdvantageEstimator, AdvantageParams, explained_variance, value_loss},
    state,
};

/// PPO with a critic.
#[derive(Debug, Clone, PartialEq)]
pub struct Ppo {
    /// The actor objective (its KL term is usually off: the KL is in the reward).
    pub objective: ActorObjective,
    /// KL penalty in the reward: estimator and (fixed or adaptive) coefficient.
    pub kl_in_reward: Option<KlInReward>,
    /// Discount γ.
    pub gamma: f64,
    /// GAE λ.
    pub lam: f64,
    /// Value clip ε_v around the rollout-time values; None = unclipped.
    pub value_clip: Option<f64>,
    /// Weight of the value loss in the total loss.
    pub vf_coef: f64,
    /// Updates during which only the critic learns.
    pub critic_warmup: u64,
    /// Batches seen so far (advanced by `targets`; saved by `Algorithm::state`).
    pub updates: u64,
}

impl Ppo {
    fn warming_up(&self) -> bool {
        self.updates <= self.critic_warmup
    }
}

impl Algorithm for Ppo {
    fn name(&self) -> &str {
        "ppo"
    }

    fn needs(&self) -> Needs {
        Needs {
            reference: self.kl_in_reward.is_some() || kl_on(self.objective.kl),
            critic: true,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        self.updates += 1;
        let values = batch.values.as_ref().ok_or_else(|| AlgorithmError {
            algorithm: "ppo".into(),
            message: "PPO needs the critic's values of the batch (Experience::values)".into(),
        })?;
        let kl = kl_penalty("ppo", batch, self.kl_in_reward.as_mut())?;
        let (penalty, kl_metrics) = kl.unzip();
        let params = AdvantageParams {
            gamma: self.gamma,
            lam: self.lam,
            ..AdvantageParams::default()
        };
        let (scores, estimator) = (&batch.rewards, AdvantageEstimator::Gae);
        let (out, per_sample) =
            estimate("ppo", estimator, batch, scores, penalty.as_ref(), &params)?;
        let mut metrics = metrics(batch, &per_sample);
        metrics.extend(kl_metrics.into_iter().flatten());
        let valid = batch.mask.sum(Kind::Double).double_value(&[]).max(1.0);
        let mean = |t: &Tensor| (t * &batch.mask).sum(Kind::Double).double_value(&[]) / valid;
        metrics.push(("critic/values/mean".into(), mean(values)));
        metrics.push(("critic/returns/mean".into(), mean(&out.returns)));
        let explained =
            explained_variance(values, &out.returns, &batch.mask).map_err(err("ppo"))?;
        metrics.push((
            "critic/vf_explained_var".into(),
            explained.double_value(&[]),
        ));
        Ok(Targets {
            advantages: out.advantages,
            returns: Some(out.returns),
            keep: None,
            metrics,
        })
    }

    fn loss(&self, x: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        let missing = |what: &str| AlgorithmError {
            algorithm: "ppo".into(),
            message: format!("the PPO loss needs {what}"),
        };
        let values = x
            .values
            .ok_or_else(|| missing("the critic's current values"))?;
        let old_values = x
            .old_values
            .ok_or_else(|| missing("the rollout-time values"))?;
        let returns = x
            .returns
            .ok_or_else(|| missing("the returns from targets()"))?;
        let vf =
            value_loss(values, old_values, returns, x.mask, self.value_clip).map_err(err("ppo"))?;
        let tokens = x.mask.sum(Kind::Float).double_value(&[]);
        let share = tokens / x.minibatch_tokens.max(1.0);
        let vf_loss = (&vf.loss * x.mask).sum(Kind::Float) / x.minibatch_tokens.max(1.0);
        let mut metrics = vec![
            ("critic/vf_loss".to_owned(), vf_loss.double_value(&[])),
            (
                "critic/vf_clipfrac".to_owned(),
                vf.clip_frac.double_value(&[]) * share,
            ),
        ];
        let mut total = vf_loss * self.vf_coef;
        if !self.warming_up() {
            let actor = self.objective.loss("ppo", x)?;
            total += actor.loss;
            metrics.extend(actor.metrics);
        }
        Ok(Loss {
            loss: total,
            metrics,
        })
    }

    /// `{"updates": n}`, plus `"kl_coef"` when the KL coefficient adapts.
    fn state(&self) -> serde_json::Value {
        state::save(Some(self.updates), self.kl_in_reward.as_ref())
    }

    fn load_state(&mut self, saved: &serde_json::Value) -> Result<(), AlgorithmError> {
        let updates = state::load("ppo", saved, true, self.kl_in_reward.as_mut())?;
        self.updates = updates.unwrap_or_default();
        Ok(())
    }
}
