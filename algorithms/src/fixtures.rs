//! Algorithms and a batch the unit tests of the algorithm files share: PPO and REINFORCE++ with
//! an optional KL term, and a small batch whose policy is far from its reference.

use crate::Experience;
use tch::{Device, Kind, Tensor};

use crate::{
    ActorObjective, KlInReward, Ppo, ReinforcePp,
    math::{AdaptiveKlController, KlController, KlEstimator, LossAggregation, PpoClip},
};

/// The clipped surrogate (ε = 0.2, token mean) with the KL term `kl` in the loss.
pub fn objective(kl: Option<(KlEstimator, f64)>) -> ActorObjective {
    ActorObjective {
        clip: PpoClip {
            eps_low: 0.2,
            eps_high: 0.2,
            dual_clip: None,
        },
        aggregation: LossAggregation::TokenMean,
        kl,
        entropy_coef: 0.0,
    }
}

/// A KL penalty in the reward whose coefficient adapts fast: from 0.1 towards KL 0.01 over a
/// horizon of 100 samples.
pub fn adaptive_kl() -> KlInReward {
    KlInReward {
        estimator: KlEstimator::K3,
        controller: KlController::Adaptive(
            AdaptiveKlController::new(0.1, 0.01, 100.0).expect("valid controller"),
        ),
    }
}

/// PPO with `kl_in_reward`, no warm-up.
pub fn ppo(kl_in_reward: Option<KlInReward>) -> Ppo {
    Ppo {
        objective: objective(None),
        kl_in_reward,
        gamma: 1.0,
        lam: 0.95,
        value_clip: Some(0.2),
        vf_coef: 0.5,
        critic_warmup: 0,
        updates: 0,
    }
}

/// REINFORCE++ with `kl_in_reward`.
pub fn reinforce_pp(kl_in_reward: Option<KlInReward>) -> ReinforcePp {
    ReinforcePp {
        objective: objective(None),
        kl_in_reward,
        gamma: 1.0,
        baseline: false,
    }
}

/// Four sequences of three response tokens in two groups, with critic values, the reference
/// log-probs only `with_reference`; the policy is far from the reference (a large KL).
pub fn batch(with_reference: bool) -> Experience {
    let (b, n) = (4, 3);
    let cpu = (Kind::Float, Device::Cpu);
    Experience {
        input_ids: Tensor::zeros([b, n + 1], (Kind::Int64, Device::Cpu)),
        attention_mask: Tensor::ones([b, n + 1], (Kind::Int64, Device::Cpu)),
        mask: Tensor::ones([b, n], cpu),
        old_logprobs: Tensor::from_slice(&[
            -1f32, -0.5, -2., -1.2, -0.3, -0.9, -1., -1., -1.5, -0.7, -0.2, -1.1,
        ])
        .view([b, n]),
        ref_logprobs: with_reference.then(|| Tensor::full([b, n], -3.0, cpu)),
        values: Some(
            Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0., -0.1, 0.4, 0.5, 0.5, 0.2, 0., 0., 0.1])
                .view([b, n]),
        ),
        rewards: Tensor::from_slice(&[1f32, 0., 0.7, 0.]),
        groups: Tensor::from_slice(&[0i64, 0, 1, 1]),
        is_weights: None,
    }
}
