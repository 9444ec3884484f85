//! The actor objective the policy-gradient algorithms share: PPO's clipped surrogate on the
//! advantages (each token's term weighted by its importance weight when the samples are stale),
//! plus an optional KL penalty to the reference model and an entropy bonus, each
//! reduced by the configured aggregation so that micro-batch losses sum exactly to the
//! mini-batch loss. Metrics use veRL's names.

use crate::{AlgorithmError, Loss, LossInputs};
use tch::{Kind, Tensor};

use crate::{
    common::missing_reference,
    math::{
        KlEstimator, LossAggregation, MathError, PpoClip, aggregate, ppo_policy_loss, token_kl,
    },
};

/// The actor objective's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActorObjective {
    /// Ratio clipping (ε_low, ε_high, dual-clip).
    pub clip: PpoClip,
    /// How token losses become one number.
    pub aggregation: LossAggregation,
    /// KL penalty in the loss: estimator and coefficient (None or 0 = off). When on, a
    /// micro-batch without reference log-probs is an error, never a loss without the penalty.
    pub kl: Option<(KlEstimator, f64)>,
    /// Weight of the entropy bonus (0 = off).
    pub entropy_coef: f64,
}

impl ActorObjective {
    /// Whether a token with advantage 0 adds nothing to the gradient: no KL penalty and no
    /// entropy bonus read it ([`crate::Algorithm::zero_advantage_is_inert`]).
    pub fn inert_at_zero_advantage(&self) -> bool {
        self.kl.is_none_or(|(_, coef)| coef <= 0.0) && self.entropy_coef == 0.0
    }

    /// The loss of one micro-batch, for algorithm `name` (in errors).
    pub fn loss(&self, name: &str, x: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        let err = |e: MathError| AlgorithmError {
            algorithm: name.to_owned(),
            message: e.to_string(),
        };
        let divisor = match self.aggregation {
            LossAggregation::TokenMean => x.minibatch_tokens,
            _ => x.minibatch_sequences,
        };
        if divisor <= 0.0 {
            return Err(AlgorithmError {
                algorithm: name.to_owned(),
                message: "the mini-batch has no response tokens".into(),
            });
        }
        // Share of the mini-batch this micro-batch's token means stand for.
        let tokens = x.mask.sum(Kind::Float).double_value(&[]);
        let share = tokens / x.minibatch_tokens.max(1.0);
        let reduce = |per_token: &Tensor| -> Result<Tensor, AlgorithmError> {
            Ok(aggregate::numerator(self.aggregation, per_token, x.mask).map_err(err)? / divisor)
        };

        let pg = ppo_policy_loss(x.logprobs, x.old_logprobs, x.advantages, x.mask, &self.clip)
            .map_err(err)?;
        // Stale samples (asynchronous rollouts): the surrogate is relative to the learner's
        // policy at the start of the update, and each token's term carries its truncated
        // importance weight back to the policy that sampled it.
        let pg_per_token = match x.is_weights {
            Some(w) if w.size() == x.mask.size() => &pg.loss * w.detach(),
            Some(w) => {
                return Err(AlgorithmError {
                    algorithm: name.to_owned(),
                    message: format!(
                        "importance weights of shape {:?} for a mask of shape {:?}",
                        w.size(),
                        x.mask.size()
                    ),
                });
            }
            None => pg.loss.shallow_clone(),
        };
        let pg_loss = reduce(&pg_per_token)?;
        let mut metrics = vec![
            ("actor/pg_loss".to_owned(), pg_loss.double_value(&[])),
            (
                "actor/pg_clipfrac".to_owned(),
                pg.clip_frac.double_value(&[]) * share,
            ),
            (
                "actor/ppo_kl".to_owned(),
                pg.ppo_kl.double_value(&[]) * share,
            ),
        ];
        let mut total = pg_loss;
        if let Some((estimator, coef)) = self.kl
            && coef > 0.0
        {
            let reference = x.ref_logprobs.ok_or_else(|| missing_reference(name))?;
            let kl = token_kl(x.logprobs, reference, x.mask, estimator).map_err(err)?;
            let kl_loss = reduce(&kl)?;
            metrics.push(("kl/ref".to_owned(), kl_loss.double_value(&[])));
            total += kl_loss * coef;
        }
        if let Some(entropy) = x.entropy {
            let mean =
                (entropy * x.mask).sum(Kind::Float).double_value(&[]) / x.minibatch_tokens.max(1.0);
            metrics.push(("actor/entropy".to_owned(), mean));
            if self.entropy_coef != 0.0 {
                total -= reduce(entropy)? * self.entropy_coef;
            }
        }
        Ok(Loss {
            loss: total,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{batch, objective};

    /// The loss inputs of batch `b` with advantages 1 on every token, current log-probs
    /// `logprobs` and importance weights `weights`.
    fn inputs<'a>(
        b: &'a crate::Experience,
        logprobs: &'a Tensor,
        weights: Option<&'a Tensor>,
    ) -> LossInputs<'a> {
        LossInputs {
            logprobs,
            entropy: None,
            values: None,
            old_logprobs: &b.old_logprobs,
            is_weights: weights,
            ref_logprobs: b.ref_logprobs.as_ref(),
            old_values: None,
            advantages: &b.mask,
            returns: None,
            mask: &b.mask,
            minibatch_tokens: 12.0,
            minibatch_sequences: 4.0,
        }
    }

    /// The loss of `fixtures::batch` under `objective` at the rollout policy itself.
    fn loss(objective: &ActorObjective, with_reference: bool) -> Result<Loss, AlgorithmError> {
        let b = batch(with_reference);
        objective.loss("grpo", &inputs(&b, &b.old_logprobs, None))
    }

    #[test]
    fn importance_weights_scale_each_tokens_policy_gradient_term() {
        let b = batch(false);
        let run = |weights: Option<&Tensor>| {
            let logprobs = (&b.old_logprobs + 0.05).set_requires_grad(true);
            let loss = objective(None)
                .loss("grpo", &inputs(&b, &logprobs, weights))
                .unwrap();
            loss.loss.backward();
            (loss.loss.double_value(&[]), logprobs.grad())
        };
        let (plain, plain_grad) = run(None);
        let half = Tensor::full_like(&b.mask, 0.5);
        let (weighted, weighted_grad) = run(Some(&half));
        assert!(
            (weighted - plain / 2.0).abs() < 1e-6,
            "{weighted} vs {plain}"
        );
        assert!(weighted_grad.allclose(&(plain_grad / 2.0), 1e-6, 1e-7, false));
        let wrong = Tensor::ones([1, 1], (Kind::Float, tch::Device::Cpu));
        let err = objective(None)
            .loss("grpo", &inputs(&b, &b.old_logprobs, Some(&wrong)))
            .unwrap_err();
        assert!(err.message.contains("importance weights of shape"), "{err}");
    }

    #[test]
    fn only_a_pure_policy_gradient_ignores_zero_advantages() {
        assert!(objective(None).inert_at_zero_advantage());
        assert!(objective(Some((KlEstimator::K3, 0.0))).inert_at_zero_advantage());
        assert!(!objective(Some((KlEstimator::K3, 0.05))).inert_at_zero_advantage());
        let entropy_bonus = ActorObjective {
            entropy_coef: 0.01,
            ..objective(None)
        };
        assert!(!entropy_bonus.inert_at_zero_advantage());
    }

    #[test]
    fn a_kl_in_the_loss_without_reference_logprobs_is_an_error() {
        let with_kl = objective(Some((KlEstimator::K3, 0.05)));
        let err = loss(&with_kl, false).unwrap_err();
        assert_eq!(err.algorithm, "grpo");
        assert!(
            err.message
                .contains("the reference model's log-probs are missing"),
            "{err}"
        );
        let ok = loss(&with_kl, true).unwrap();
        assert!(ok.metrics.iter().any(|(k, v)| k == "kl/ref" && *v > 0.0));
        // Without a KL term (or at coefficient 0) there is nothing to miss.
        assert!(loss(&objective(None), false).is_ok());
        assert!(loss(&objective(Some((KlEstimator::K3, 0.0))), false).is_ok());
    }
}
