//! The registry of algorithms: the run's `[algorithm]` section to the algorithm it names. The
//! names, and each algorithm's default advantage estimator, are the config's closed sets
//! (`rl_core::config::AlgorithmName::default_advantage`); this is the one place that maps
//! (name, estimator) to an implementation. A new algorithm is a file beside this one, a variant
//! of `AlgorithmName`, and one arm here.

use rl_core::config::{AdvantageEstimator, AlgorithmConfig, AlgorithmName, LossAggregation};

use crate::{
    ActorObjective, Algorithm, AlgorithmError, Dapo, Grpo, KlInReward, Ppo, ReinforcePp, Rloo,
    dapo::Overlong,
    math::{AdaptiveKlController, FixedKlController, KlController, PpoClip},
};

/// The algorithm `config` describes (after [`AlgorithmConfig::resolve`]); `max_new_tokens`
/// (`rollout.max_new_tokens`) is where DAPO's overlong punishment peaks.
pub fn from_config(
    config: &AlgorithmConfig,
    max_new_tokens: u32,
) -> Result<Box<dyn Algorithm>, AlgorithmError> {
    let error = |message: String| AlgorithmError {
        algorithm: config.name.as_str().to_owned(),
        message,
    };
    let estimator = config.kl_estimator;
    let aggregation = config.loss_agg.unwrap_or(LossAggregation::TokenMean);
    let kl = (config.kl_coef > 0.0).then_some((estimator, config.kl_coef));
    let kl_in_reward = match kl {
        None => None,
        Some((estimator, coef)) => {
            let controller = if config.kl_target > 0.0 {
                let horizon = config.kl_horizon as f64;
                AdaptiveKlController::new(coef, config.kl_target, horizon)
                    .map(KlController::Adaptive)
            } else {
                FixedKlController::new(coef).map(KlController::Fixed)
            };
            let controller = controller.map_err(|e| error(e.to_string()))?;
            Some(KlInReward {
                estimator,
                controller,
            })
        }
    };
    let objective = ActorObjective {
        clip: PpoClip {
            eps_low: config.clip_ratio,
            eps_high: config.clip_ratio_high.unwrap_or(config.clip_ratio),
            dual_clip: (config.dual_clip > 0.0).then_some(config.dual_clip),
        },
        aggregation,
        kl,
        entropy_coef: config.entropy_coef,
    };
    let advantage = config.advantage();
    let overlong = (config.overlong_buffer > 0).then_some(Overlong {
        max_len: max_new_tokens.into(),
        cache_len: config.overlong_buffer.into(),
        factor: config.overlong_penalty,
    });
    // Only DAPO shapes rewards by length; any other algorithm would drop the key without a word.
    if overlong.is_some()
        && (config.name, advantage) != (AlgorithmName::Dapo, AdvantageEstimator::GroupNorm)
    {
        return Err(error(format!(
            "algorithm.overlong_buffer = {}: only dapo with advantage group_norm applies the overlong punishment",
            config.overlong_buffer
        )));
    }
    Ok(match (config.name, advantage) {
        (_, AdvantageEstimator::Gae) => Box::new(Ppo {
            objective: ActorObjective {
                kl: None,
                ..objective
            },
            kl_in_reward,
            gamma: config.gamma,
            lam: config.lam,
            value_clip: Some(config.value_clip),
            vf_coef: config.vf_coef,
            critic_warmup: config.critic_warmup,
            updates: 0,
        }),
        (AlgorithmName::Dapo, AdvantageEstimator::GroupNorm) => Box::new(Dapo {
            objective,
            overlong,
        }),
        (_, AdvantageEstimator::GroupNorm) => Box::new(Grpo {
            objective,
            scale_by_std: config.scale_by_std,
        }),
        (_, AdvantageEstimator::Rloo) => Box::new(Rloo { objective }),
        (_, adv @ (AdvantageEstimator::ReinforcePp | AdvantageEstimator::ReinforcePpBaseline)) => {
            Box::new(ReinforcePp {
                objective: ActorObjective {
                    kl: None,
                    ..objective
                },
                kl_in_reward,
                gamma: config.gamma,
                baseline: adv == AdvantageEstimator::ReinforcePpBaseline,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Experience;
    use tch::{Device, Kind, Tensor};

    /// `rollout.max_new_tokens` of the algorithms built here.
    const MAX_NEW_TOKENS: u32 = 4;

    fn build(
        name: AlgorithmName,
        change: impl FnOnce(&mut AlgorithmConfig),
    ) -> Result<Box<dyn Algorithm>, AlgorithmError> {
        let mut config = AlgorithmConfig {
            name,
            ..AlgorithmConfig::default()
        };
        change(&mut config);
        config.resolve();
        from_config(&config, MAX_NEW_TOKENS)
    }

    /// A batch of samples in groups of two, `lengths[i]` response tokens each.
    fn experience(rewards: &[f32], lengths: &[i64]) -> Experience {
        let b = rewards.len() as i64;
        let n = *lengths.iter().max().unwrap();
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..n).map(move |i| f32::from(u8::from(i < l))))
            .collect();
        Experience {
            input_ids: Tensor::zeros([b, n + 1], (Kind::Int64, Device::Cpu)),
            attention_mask: Tensor::ones([b, n + 1], (Kind::Int64, Device::Cpu)),
            mask: Tensor::from_slice(&mask).view([b, n]),
            old_logprobs: Tensor::full([b, n], -1.0, (Kind::Float, Device::Cpu)),
            ref_logprobs: None,
            values: None,
            rewards: Tensor::from_slice(rewards),
            groups: Tensor::arange(b, (Kind::Int64, Device::Cpu)).divide_scalar_mode(2, "floor"),
            is_weights: None,
        }
    }

    #[test]
    fn each_name_builds_its_algorithm_and_needs_follow_the_kl() {
        let names = |c: fn(&mut AlgorithmConfig)| -> Vec<String> {
            [
                AlgorithmName::Grpo,
                AlgorithmName::Dapo,
                AlgorithmName::Rloo,
                AlgorithmName::ReinforcePp,
            ]
            .into_iter()
            .map(|n| build(n, c).unwrap().name().to_owned())
            .collect()
        };
        assert_eq!(names(|_| {}), ["grpo", "dapo", "rloo", "reinforce_pp"]);
        let dr = build(AlgorithmName::Grpo, |c| c.scale_by_std = false).unwrap();
        assert_eq!(dr.name(), "dr_grpo");
        assert!(!dr.needs().reference);
        let with_kl = build(AlgorithmName::ReinforcePp, |c| c.kl_coef = 0.01).unwrap();
        assert!(with_kl.needs().reference && !with_kl.needs().critic);
        let adaptive = build(AlgorithmName::Ppo, |c| {
            c.kl_coef = 0.05;
            c.kl_target = 0.1;
        });
        assert!(adaptive.unwrap().needs().reference);
    }

    #[test]
    fn ppo_needs_a_critic() {
        let ppo = build(AlgorithmName::Ppo, |_| {}).unwrap();
        assert_eq!(ppo.name(), "ppo");
        assert!(ppo.needs().critic && !ppo.needs().reference);
    }

    #[test]
    fn an_adaptive_kl_coefficient_rises_when_the_kl_overshoots_its_target() {
        let mut ppo = build(AlgorithmName::Ppo, |c| {
            c.kl_coef = 0.1;
            c.kl_target = 0.01;
            c.kl_horizon = 100;
        })
        .unwrap();
        let (b, n) = (4, 3);
        let batch = Experience {
            // The policy is far from the reference: a large KL per token.
            ref_logprobs: Some(Tensor::full([b, n], -3.0, (Kind::Float, Device::Cpu))),
            values: Some(Tensor::zeros([b, n], (Kind::Float, Device::Cpu))),
            ..experience(&[1., 0., 1., 0.], &[n; 4])
        };
        let coef = |t: &crate::Targets| t.metrics.iter().find(|(k, _)| k == "kl/coef").unwrap().1;
        let first = ppo.targets(&batch).unwrap();
        let second = ppo.targets(&batch).unwrap();
        assert_eq!(coef(&first), 0.1);
        // Ziegler et al.: error clipped to +0.2, coef *= 1 + 0.2 * 4 / 100.
        assert!(
            (coef(&second) - 0.1 * 1.008).abs() < 1e-12,
            "{}",
            coef(&second)
        );
    }

    #[test]
    fn the_reinforce_pp_baseline_advantage_builds_reinforce_pp_with_the_group_baseline() {
        let baseline =
            |c: &mut AlgorithmConfig| c.advantage = Some(AdvantageEstimator::ReinforcePpBaseline);
        let mut with = build(AlgorithmName::ReinforcePp, baseline).unwrap();
        let mut without = build(AlgorithmName::ReinforcePp, |_| {}).unwrap();
        assert_eq!(with.name(), "reinforce_pp_baseline");
        assert_eq!(without.name(), "reinforce_pp");
        // Group 1 (1, 1) is all equal: the baseline centres it to 0, the plain estimator
        // whitens it against group 0 to a positive advantage.
        let batch = experience(&[1., 0., 1., 1.], &[2; 4]);
        let a = |t: crate::Targets| t.advantages.double_value(&[2, 0]);
        assert!(a(with.targets(&batch).unwrap()).abs() < 1e-6);
        assert!(a(without.targets(&batch).unwrap()) > 0.1);
    }

    #[test]
    fn dapo_punishes_responses_in_the_overlong_buffer_and_only_dapo_takes_one() {
        let overlong = |c: &mut AlgorithmConfig| c.overlong_buffer = 2;
        // Group 0 (rewards 1, 1) is all equal and dropped, unless its 4-token response (at
        // MAX_NEW_TOKENS, the end of the 2-token buffer) loses the whole penalty of 1.
        let batch = experience(&[1., 1., 1., 0.], &[2, 4, 2, 2]);
        let keep = |mut d: Box<dyn Algorithm>| {
            let keep = d.targets(&batch).unwrap().keep.unwrap();
            Vec::<bool>::try_from(keep).unwrap()
        };
        let plain = build(AlgorithmName::Dapo, |_| {}).unwrap();
        assert_eq!(keep(plain), [false, false, true, true]);
        let punished = build(AlgorithmName::Dapo, overlong).unwrap();
        assert_eq!(keep(punished), [true, true, true, true]);
        let err = build(AlgorithmName::Grpo, overlong).err().unwrap();
        assert!(
            err.to_string().contains("algorithm.overlong_buffer"),
            "{err}"
        );
    }
}
