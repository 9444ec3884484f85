//! DAPO (Yu et al. 2025, arXiv 2503.14476): GRPO's group-normalised advantages with four
//! changes — clip-higher (a larger ε_high than ε_low keeps exploration alive), a token-level
//! loss (`token_mean`), dynamic sampling (groups whose rewards are all equal carry no signal and
//! are dropped from the update), and an overlong penalty that shapes the reward of responses
//! running into the length limit.

use crate::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
use tch::Kind;

use crate::{
    actor_loss::ActorObjective,
    common::{err, estimate, kl_on, metrics},
    math::{AdvantageEstimator, AdvantageParams, dynamic_sampling_keep, overlong_penalty},
};

/// DAPO's soft overlong punishment: responses longer than `max_len − cache_len` tokens lose up
/// to `factor` reward, linearly, reaching −`factor` at `max_len`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlong {
    /// The generation limit (`rollout.max_new_tokens`).
    pub max_len: i64,
    /// Length of the punished interval before it.
    pub cache_len: i64,
    /// The largest reduction (DAPO: 1).
    pub factor: f64,
}

/// DAPO.
#[derive(Debug, Clone, PartialEq)]
pub struct Dapo {
    /// The actor objective (clip-higher and `token_mean` by default in configs).
    pub objective: ActorObjective,
    /// Overlong reward shaping; None = off.
    pub overlong: Option<Overlong>,
}

impl Algorithm for Dapo {
    fn name(&self) -> &str {
        "dapo"
    }

    fn needs(&self) -> Needs {
        Needs {
            reference: kl_on(self.objective.kl),
            critic: false,
        }
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let rewards = batch.rewards.to_kind(Kind::Float);
        // A new tensor, not `+=`: `to_kind` to the kind it already has returns `batch.rewards`
        // itself, and the caller's batch must not change (a second call would punish twice).
        let scores = match self.overlong {
            Some(o) => {
                let lengths = batch.mask.sum_dim_intlist(1, false, Kind::Float);
                &rewards
                    + overlong_penalty(&lengths, o.max_len, o.cache_len, o.factor)
                        .map_err(err("dapo"))?
            }
            None => rewards,
        };
        let keep = dynamic_sampling_keep(&scores, &batch.groups).map_err(err("dapo"))?;
        let params = AdvantageParams::default();
        let estimator = AdvantageEstimator::GroupNorm;
        let (out, per_sample) = estimate("dapo", estimator, batch, &scores, None, &params)?;
        let mut metrics = metrics(batch, &per_sample);
        let kept = keep
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        metrics.push(("dapo/kept_fraction".into(), kept));
        Ok(Targets {
            advantages: out.advantages,
            returns: None,
            keep: Some(keep),
            metrics,
        })
    }

    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.objective.loss("dapo", inputs)
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.objective.inert_at_zero_advantage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{LossAggregation, PpoClip};
    use tch::{Device, Tensor};

    fn batch(rewards: &[f32], lengths: &[i64]) -> Experience {
        let b = rewards.len() as i64;
        let n = *lengths.iter().max().unwrap_or(&1);
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..n).map(move |i| if i < l { 1.0 } else { 0.0 }))
            .collect();
        Experience {
            input_ids: Tensor::zeros([b, n + 1], (Kind::Int64, Device::Cpu)),
            attention_mask: Tensor::ones([b, n + 1], (Kind::Int64, Device::Cpu)),
            mask: Tensor::from_slice(&mask).view([b, n]),
            old_logprobs: Tensor::zeros([b, n], (Kind::Float, Device::Cpu)),
            ref_logprobs: None,
            values: None,
            rewards: Tensor::from_slice(rewards),
            groups: Tensor::from_slice(&[0i64, 0, 1, 1]),
            is_weights: None,
        }
    }

    fn dapo(overlong: Option<Overlong>) -> Dapo {
        Dapo {
            objective: ActorObjective {
                clip: PpoClip {
                    eps_low: 0.2,
                    eps_high: 0.28,
                    dual_clip: None,
                },
                aggregation: LossAggregation::TokenMean,
                kl: None,
                entropy_coef: 0.0,
            },
            overlong,
        }
    }

    #[test]
    fn all_equal_groups_are_dropped_and_overlong_responses_lose_reward() {
        // Group 0 (rewards 1, 1) carries no signal; group 1 (1, 0) does.
        let t = dapo(None)
            .targets(&batch(&[1.0, 1.0, 1.0, 0.0], &[2, 2, 2, 2]))
            .unwrap();
        let keep = Vec::<bool>::try_from(t.keep.unwrap()).unwrap();
        assert_eq!(keep, [false, false, true, true]);
        // With max_len 4 and a cache of 2, a 4-token response gets −1: group 0 now differs
        // (1 vs 0), and its shorter member gets the positive advantage.
        let o = Overlong {
            max_len: 4,
            cache_len: 2,
            factor: 1.0,
        };
        let t = dapo(Some(o))
            .targets(&batch(&[1.0, 1.0, 1.0, 0.0], &[2, 4, 2, 2]))
            .unwrap();
        let keep = Vec::<bool>::try_from(t.keep.unwrap()).unwrap();
        assert_eq!(keep, [true, true, true, true]);
        assert!(t.advantages.double_value(&[0, 0]) > 0.0);
        assert!(t.advantages.double_value(&[1, 0]) < 0.0);
    }

    #[test]
    fn the_overlong_punishment_leaves_the_batch_rewards_as_they_were() {
        let o = Overlong {
            max_len: 4,
            cache_len: 2,
            factor: 0.5,
        };
        let mut algorithm = dapo(Some(o));
        let b = batch(&[1.0, 0.0, 1.0, 0.0], &[4, 2, 3, 1]);
        let first = algorithm.targets(&b).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&b.rewards).unwrap(),
            [1.0, 0.0, 1.0, 0.0]
        );
        let second = algorithm.targets(&b).unwrap();
        assert!(first.advantages.equal(&second.advantages));
    }
}
