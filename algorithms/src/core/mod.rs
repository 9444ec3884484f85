//! The shared math of the PPO family, as small pure functions over `[b, t]` token tensors
//! (tensors in, tensors out, shapes in every doc comment), in the manner of veRL's
//! `core_algos.py`. Each closed set of choices is an enum (serde `snake_case`, the names
//! configs use) mapped to its functions. The algorithm files compose these; nothing here holds
//! a model or state, except the adaptive KL coefficient.
//!
//! | file | what |
//! |---|---|
//! | [`masked`] | masked sum, mean, variance, whitening, explained variance |
//! | [`groups`] | group ids: which prompt each sample answers |
//! | [`rewards`] | outcome scores → per-token rewards; DAPO's overlong penalty |
//! | [`advantage`] | [`AdvantageEstimator`]: GAE, GRPO, Dr. GRPO, RLOO, REINFORCE++(-baseline) |
//! | [`filters`] | DAPO's dynamic sampling (drop all-equal groups) |
//!
//! Conventions: `b` samples (sequences), `t` response positions; `mask` `[b, t]` nonzero =
//! response token, 0 = prompt or padding, and whatever an invalid position holds (even NaN)
//! changes no result. Math in f32; the host-side recurrences and group statistics accumulate
//! in f64. Bad input — mismatched shapes, empty masks, NaN/inf, out-of-range
//! parameters — is an [`AlgoError`], never a panic or a silent NaN. Losses are differentiable in
//! the current model's outputs only (`logp`, `values`); advantages and returns are detached.

pub mod advantage;
mod check;
mod error;
pub mod filters;
pub mod groups;
pub mod masked;
pub mod rewards;
#[cfg(test)]
mod testutil;

pub use advantage::{
    AdvantageEstimator, AdvantageInput, AdvantageParams, Advantages, broadcast_to_tokens,
    discounted_returns, gae, grpo_advantage, reinforce_pp_advantage,
    reinforce_pp_baseline_advantage, rloo_advantage,
};
pub use error::{AlgoError, Result};
pub use filters::dynamic_sampling_keep;
pub use groups::contiguous_group_ids;
pub use masked::{explained_variance, masked_mean, masked_sum, masked_var, masked_whiten};
pub use rewards::{overlong_penalty, token_rewards};
