//! The shared math of the PPO family, as small pure functions over `[b, t]` token tensors
//! (tensors in, tensors out, shapes in every doc comment), in the manner of veRL's
//! `core_algos.py`. Each closed set of choices is the config's own enum
//! (`rl_core::config`: [`AdvantageEstimator`], [`KlEstimator`], [`LossAggregation`]), matched
//! here to its functions. The algorithm files compose these; nothing here holds
//! a model or state, except the adaptive KL coefficient.
//!
//! | file | what |
//! |---|---|
//! | [`masked`] | masked sum, mean, variance, whitening, explained variance |
//! | [`groups`] | group ids: which prompt each sample answers |
//! | [`rewards`] | outcome scores → per-token rewards; DAPO's overlong penalty |
//! | [`advantage`] | [`advantage::compute`]: GAE, GRPO, Dr. GRPO, RLOO, REINFORCE++(-baseline) |
//! | [`policy_loss`] | PPO clipped surrogate with clip-higher and dual-clip |
//! | [`value_loss`](mod@value_loss) | the critic's (clipped) value loss |
//! | [`kl`] | [`KlEstimator`] k1/k2/k3 and the fixed/adaptive KL coefficient |
//! | [`aggregate`](mod@aggregate) | [`LossAggregation`]: token-mean, seq-mean-token-sum, seq-mean-token-mean |
//! | [`filters`] | DAPO's dynamic sampling (drop all-equal groups) |
//! | [`importance`] | truncated importance weights for samples of a stale policy |
//!
//! Conventions: `b` samples (sequences), `t` response positions; `mask` `[b, t]` nonzero =
//! response token, 0 = prompt or padding, and whatever an invalid position holds (even NaN)
//! changes no result. Math in f32; the host-side recurrences and group statistics accumulate
//! in f64. Bad input — mismatched shapes, empty masks, NaN/inf, out-of-range
//! parameters — is a [`MathError`], never a panic or a silent NaN. Losses are differentiable in
//! the current model's outputs only (`logp`, `values`); advantages and returns are detached.

pub mod advantage;
pub mod aggregate;
mod check;
mod error;
pub mod filters;
pub mod groups;
pub mod importance;
pub mod kl;
pub mod masked;
pub mod policy_loss;
pub mod rewards;
#[cfg(test)]
mod testutil;
pub mod value_loss;

pub use advantage::{
    AdvantageInput, AdvantageParams, Advantages, broadcast_to_tokens, discounted_returns, gae,
    grpo_advantage, reinforce_pp_advantage, reinforce_pp_baseline_advantage, rloo_advantage,
};
pub use aggregate::aggregate;
pub use error::{MathError, Result};
pub use filters::dynamic_sampling_keep;
pub use groups::contiguous_group_ids;
pub use importance::{IsWeights, truncated_is_weights};
pub use kl::{AdaptiveKlController, FixedKlController, KlController, token_kl};
pub use masked::{explained_variance, masked_mean, masked_sum, masked_var, masked_whiten};
pub use policy_loss::{PolicyLoss, PpoClip, ppo_policy_loss};
pub use rewards::{overlong_penalty, token_rewards};
pub use rl_core::config::{AdvantageEstimator, KlEstimator, LossAggregation};
pub use value_loss::{ValueLoss, value_loss};
