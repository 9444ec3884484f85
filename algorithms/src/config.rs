//! Building an algorithm from the run's `[algorithm]` section.

use rl_core::{
    Algorithm, AlgorithmError,
    config::{Advantage, AlgorithmConfig, AlgorithmName, KlEstimator as KlName, LossAgg},
};

use crate::{
    ActorObjective, Dapo, Grpo, KlInReward, Ppo, ReinforcePp, Rloo,
    core::{
        AdaptiveKlController, FixedKlController, KlController, KlEstimator, LossAggregation,
        PpoClip,
    },
};

/// The algorithm `config` describes (after [`AlgorithmConfig::resolve`]).
pub fn from_config(config: &AlgorithmConfig) -> Result<Box<dyn Algorithm>, AlgorithmError> {
    let estimator = match config.kl_estimator {
        KlName::K1 => KlEstimator::K1,
        KlName::K2 => KlEstimator::K2,
        KlName::K3 => KlEstimator::K3,
    };
    let aggregation = match config.loss_agg.unwrap_or(LossAgg::TokenMean) {
        LossAgg::TokenMean => LossAggregation::TokenMean,
        LossAgg::SeqMeanTokenSum => LossAggregation::SeqMeanTokenSum,
        LossAgg::SeqMeanTokenMean => LossAggregation::SeqMeanTokenMean,
    };
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
            let controller = controller.map_err(|e| AlgorithmError {
                algorithm: config.name.as_str().to_owned(),
                message: e.to_string(),
            })?;
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
    let advantage = config.advantage.unwrap_or(match config.name {
        AlgorithmName::Ppo => Advantage::Gae,
        AlgorithmName::Grpo | AlgorithmName::Dapo => Advantage::GroupNorm,
        AlgorithmName::Rloo => Advantage::Rloo,
        AlgorithmName::ReinforcePp => Advantage::ReinforcePp,
    });
    Ok(match (config.name, advantage) {
        (_, Advantage::Gae) => Box::new(Ppo {
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
        (AlgorithmName::Dapo, Advantage::GroupNorm) => Box::new(Dapo {
            objective,
            overlong: None,
        }),
        (_, Advantage::GroupNorm) => Box::new(Grpo {
            objective,
            scale_by_std: config.scale_by_std,
        }),
        (_, Advantage::Rloo) => Box::new(Rloo { objective }),
        (_, Advantage::ReinforcePp) => Box::new(ReinforcePp {
            objective: ActorObjective {
                kl: None,
                ..objective
            },
            kl_in_reward,
            gamma: config.gamma,
            baseline: false,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        from_config(&config)
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
        use tch::{Device, Kind, Tensor};
        let mut ppo = build(AlgorithmName::Ppo, |c| {
            c.kl_coef = 0.1;
            c.kl_target = 0.01;
            c.kl_horizon = 100;
        })
        .unwrap();
        let (b, n) = (4, 3);
        let batch = rl_core::Experience {
            input_ids: Tensor::zeros([b, n + 1], (Kind::Int64, Device::Cpu)),
            attention_mask: Tensor::ones([b, n + 1], (Kind::Int64, Device::Cpu)),
            mask: Tensor::ones([b, n], (Kind::Float, Device::Cpu)),
            old_logprobs: Tensor::full([b, n], -1.0, (Kind::Float, Device::Cpu)),
            // The policy is far from the reference: a large KL per token.
            ref_logprobs: Some(Tensor::full([b, n], -3.0, (Kind::Float, Device::Cpu))),
            values: Some(Tensor::zeros([b, n], (Kind::Float, Device::Cpu))),
            rewards: Tensor::from_slice(&[1f32, 0., 1., 0.]),
            groups: Tensor::from_slice(&[0i64, 0, 1, 1]),
        };
        let coef = |t: &rl_core::Targets| t.metrics.iter().find(|(k, _)| k == "kl/coef").unwrap().1;
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
}
