//! Advantage estimators: GAE for PPO with a critic, and the critic-free group-relative and
//! batch-normalised estimators of GRPO, Dr. GRPO, RLOO and REINFORCE++.
//!
//! - GAE: Schulman et al. 2015, <https://arxiv.org/abs/1506.02438>; PPO: Schulman et al. 2017,
//!   <https://arxiv.org/abs/1707.06347>.
//! - GRPO: Shao et al. 2024 (DeepSeekMath), <https://arxiv.org/abs/2402.03300>, §4.1.2
//!   (outcome supervision).
//! - Dr. GRPO: Liu et al. 2025, <https://arxiv.org/abs/2503.20783>: GRPO without the std division.
//! - RLOO: Ahmadian et al. 2024, <https://arxiv.org/abs/2402.14740>: leave-one-out baseline.
//! - REINFORCE++: Hu 2025, <https://arxiv.org/abs/2501.03262>: discounted returns whitened over
//!   the batch; the `-baseline` variant subtracts the group mean reward first.
//!
//! Shapes: `b` samples (sequences) of `t` response positions. `mask` `[b, t]`: nonzero = a
//! response token, 0 = prompt or padding. Per-token tensors are `[b, t]` f32, outcome `scores`
//! `[b]` f32 (one reward per sample), `group_ids` `[b]` i64 (see [`super::groups`]). Results
//! are f32, 0 at invalid positions, cut off from autograd, on the device of the inputs.
//!
//! The sequential recurrences (GAE, discounted returns) run on a host copy: a `[64, 320]`
//! batch is 20k floats, far cheaper to copy than `t` rounds of small kernels.

use rl_core::config::AdvantageEstimator;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::error::{MathError, Result};
use super::groups::{self, Groups};
use super::{check, masked, rewards};

/// Advantages and returns of a scored batch, as `estimator` defines them:
///
/// | estimator | advantages `[b, t]` | returns `[b, t]` |
/// |---|---|---|
/// | `gae` | [`gae`], then [`masked::masked_whiten`] | GAE's `advantages + values`, not whitened |
/// | `group_norm` | [`grpo_advantage`] (GRPO; Dr. GRPO without `scale_by_std`) on every token of the sample | = advantages |
/// | `rloo` | [`rloo_advantage`] on every token | = advantages |
/// | `reinforce_pp` | [`reinforce_pp_advantage`] | its discounted returns |
/// | `reinforce_pp_baseline` | [`reinforce_pp_baseline_advantage`] | its discounted returns |
///
/// Token rewards, where used, are each score on its sample's last response token
/// ([`rewards::token_rewards`]) minus `token_penalty`. The whitening estimators (`gae`,
/// `reinforce_pp*`) need at least 2 valid tokens in the batch.
pub fn compute(
    estimator: AdvantageEstimator,
    input: &AdvantageInput<'_>,
    params: &AdvantageParams,
) -> Result<Advantages> {
    let missing = |message| MathError::Input {
        estimator: estimator.as_str(),
        message,
    };
    if input.token_penalty.is_some() && !estimator.uses_token_rewards() {
        return Err(missing(
            "a token_penalty (KL in the reward) is not part of a group-relative advantage; \
             put the KL term in the loss instead",
        ));
    }
    let group_ids = || {
        input
            .group_ids
            .ok_or_else(|| missing("needs group_ids: which prompt each sample answers"))
    };
    let per_sequence = |adv: Tensor| -> Result<Advantages> {
        let tokens = broadcast_to_tokens(&adv, input.mask)?;
        Ok(Advantages {
            returns: tokens.shallow_clone(),
            advantages: tokens,
            per_sample: Some(adv),
        })
    };
    let (mask, gamma) = (input.mask, params.gamma);
    match estimator {
        AdvantageEstimator::Gae => {
            let values = input
                .values
                .ok_or_else(|| missing("needs the critic's values"))?;
            let rewards = penalised_rewards(input.scores, mask, input.token_penalty)?;
            let out = gae(&rewards, values, mask, gamma, params.lam)?;
            Ok(Advantages {
                advantages: masked::masked_whiten(&out.advantages, mask)?,
                returns: out.returns,
                per_sample: None,
            })
        }
        AdvantageEstimator::GroupNorm => {
            let eps = if params.scale_by_std { params.eps } else { 0.0 };
            let adv = grpo_advantage(input.scores, group_ids()?, params.scale_by_std, eps)?;
            per_sequence(adv)
        }
        AdvantageEstimator::Rloo => per_sequence(rloo_advantage(input.scores, group_ids()?)?),
        AdvantageEstimator::ReinforcePp => {
            let rewards = penalised_rewards(input.scores, mask, input.token_penalty)?;
            reinforce_pp_advantage(&rewards, mask, gamma)
        }
        AdvantageEstimator::ReinforcePpBaseline => {
            let ids = group_ids()?;
            reinforce_pp_baseline_advantage(input.scores, ids, mask, input.token_penalty, gamma)
        }
    }
}

/// Each score on its sample's last response token, minus the per-token `penalty` if any.
fn penalised_rewards(scores: &Tensor, mask: &Tensor, penalty: Option<&Tensor>) -> Result<Tensor> {
    let rewards = rewards::token_rewards(scores, mask)?;
    let Some(penalty) = penalty else {
        return Ok(rewards);
    };
    check::expect("token_penalty", penalty, &mask.size(), "the mask's shape")?;
    let valid = check::valid(mask);
    check::scan(&valid, &[("token_penalty", penalty)])?;
    Ok(rewards - check::zero_invalid(&penalty.detach(), &valid))
}

/// What [`compute`] reads from a scored batch of `b` samples.
#[derive(Debug, Clone, Copy)]
pub struct AdvantageInput<'a> {
    /// `[b]` f32 outcome reward of each sample (the reward function's score, shaped).
    pub scores: &'a Tensor,
    /// `[b, t]`: nonzero = response token, 0 = prompt or padding.
    pub mask: &'a Tensor,
    /// `[b, t]` f32 per-token term subtracted from the token rewards: `kl_coef · KL` when the
    /// KL to the reference model is in the reward (PPO, REINFORCE++). `None`: none.
    pub token_penalty: Option<&'a Tensor>,
    /// `[b, t]` f32 critic values `V(s_t)` at each response position (GAE only).
    pub values: Option<&'a Tensor>,
    /// `[b]` i64 group ids (the group estimators only).
    pub group_ids: Option<&'a Tensor>,
}

/// Hyper-parameters of the estimators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvantageParams {
    /// Discount γ in `[0, 1]` (`algorithm.gamma`): GAE and REINFORCE++ returns.
    pub gamma: f64,
    /// GAE λ in `[0, 1]` (`algorithm.lam`).
    pub lam: f64,
    /// ε added to the group std in GRPO's division (veRL's 1e-6).
    pub eps: f64,
    /// `group_norm` divides by the group std (GRPO) or not (Dr. GRPO, `algorithm.scale_by_std`).
    pub scale_by_std: bool,
}

impl Default for AdvantageParams {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            lam: 0.95,
            eps: 1e-6,
            scale_by_std: true,
        }
    }
}

/// Advantages and returns, `[b, t]` f32 each, 0 at invalid positions.
#[derive(Debug)]
pub struct Advantages {
    /// What the policy loss weighs each token's log-ratio by.
    pub advantages: Tensor,
    /// The critic's regression targets (GAE); the estimator's returns otherwise.
    pub returns: Tensor,
    /// `[b]` f32: the one advantage of each sample, for the estimators that give every token
    /// of a sample the same (`group_norm`, `rloo`); `None` otherwise.
    pub per_sample: Option<Tensor>,
}

/// Generalised advantage estimation, GAE(γ, λ), over the valid tokens of each row:
///
/// ```text
/// δ_t = r_t + γ V_{t+1} - V_t        (V after the last valid token = 0: the episode ends)
/// A_t = δ_t + γ λ A_{t+1}            returns_t = A_t + V_t
/// ```
///
/// where `t + 1` is the next *valid* position: invalid positions in between (e.g. tool output
/// in a multi-turn sample) are skipped as if absent, as veRL does. `rewards` `[b, t]` f32: for
/// LLM PPO the outcome score on the last response token ([`rewards::token_rewards`]), minus any
/// per-token KL penalty; `values` `[b, t]` f32. Not whitened (the `gae` estimator whitens).
pub fn gae(
    rewards: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    gamma: f64,
    lam: f64,
) -> Result<Advantages> {
    let (b, t) = check::dims2("mask", mask)?;
    check::expect("rewards", rewards, &[b, t], "the mask's shape")?;
    check::expect("values", values, &[b, t], "the mask's shape")?;
    check::param(
        "gamma",
        gamma,
        (0.0..=1.0).contains(&gamma),
        "must be in [0, 1]",
    )?;
    check::param("lam", lam, (0.0..=1.0).contains(&lam), "must be in [0, 1]")?;
    let valid = check::host_valid(&check::valid(mask))?;
    let r = check::host(rewards)?;
    let v = check::host(values)?;
    check::host_finite("rewards", &r, &valid)?;
    check::host_finite("values", &v, &valid)?;
    let adv = gae_host(&r, &v, &valid, t as usize, gamma, lam);
    let ret: Vec<f32> = adv
        .iter()
        .zip(&v)
        .zip(&valid)
        .map(|((a, v), &ok)| if ok { a + v } else { 0.0 })
        .collect();
    let device = mask.device();
    Ok(Advantages {
        advantages: check::to_device(&adv, &[b, t], device),
        returns: check::to_device(&ret, &[b, t], device),
        per_sample: None,
    })
}

/// Discounted reward-to-go over the valid tokens of each row, `G_t = r_t + γ G_{t+1}`, with
/// `t + 1` the next valid position and `G = 0` after the last. `rewards` `[b, t]` f32 → `[b, t]`.
pub fn discounted_returns(rewards: &Tensor, mask: &Tensor, gamma: f64) -> Result<Tensor> {
    let (b, t) = check::dims2("mask", mask)?;
    check::expect("rewards", rewards, &[b, t], "the mask's shape")?;
    check::param(
        "gamma",
        gamma,
        (0.0..=1.0).contains(&gamma),
        "must be in [0, 1]",
    )?;
    let valid = check::host_valid(&check::valid(mask))?;
    let r = check::host(rewards)?;
    check::host_finite("rewards", &r, &valid)?;
    // GAE with V = 0 and λ = 1 is exactly the discounted return.
    let zeros = vec![0.0; r.len()];
    let g = gae_host(&r, &zeros, &valid, t as usize, gamma, 1.0);
    Ok(check::to_device(&g, &[b, t], mask.device()))
}

/// The GAE recursion on host rows of length `t`; 0 at invalid positions.
fn gae_host(r: &[f32], v: &[f32], valid: &[bool], t: usize, gamma: f64, lam: f64) -> Vec<f32> {
    let mut adv = vec![0.0; r.len()];
    for row in 0..r.len() / t.max(1) {
        let (mut next_value, mut next_adv) = (0.0, 0.0);
        for i in (row * t..(row + 1) * t).rev().filter(|&i| valid[i]) {
            let value = f64::from(v[i]);
            let delta = f64::from(r[i]) + gamma * next_value - value;
            next_adv = delta + gamma * lam * next_adv;
            next_value = value;
            adv[i] = next_adv as f32;
        }
    }
    adv
}

/// GRPO's group-relative outcome advantage, one per sample, `[b]` f32:
///
/// ```text
/// A_i = (r_i - mean_g) / (std_g + eps)    scale_by_std (GRPO)
/// A_i =  r_i - mean_g                     otherwise (Dr. GRPO)
/// ```
///
/// over the samples `g` of `i`'s group, std with Bessel's correction (`torch.std`, as veRL,
/// OpenRLHF and TRL). A group whose scores are all equal gets 0, and so does a group of one
/// sample (it has no peer to compare with). `scores` `[b]` f32, `group_ids` `[b]` i64. Spread
/// it over the tokens with [`broadcast_to_tokens`].
pub fn grpo_advantage(
    scores: &Tensor,
    group_ids: &Tensor,
    scale_by_std: bool,
    eps: f64,
) -> Result<Tensor> {
    check::param("eps", eps, eps >= 0.0, "must be >= 0")?;
    per_group(scores, group_ids, ("grpo", 1), |group| {
        let mean = groups::mean(group);
        let scale = if scale_by_std {
            groups::std(group) + eps
        } else {
            1.0
        };
        group
            .iter()
            .map(|&r| (f64::from(r) - mean) / scale)
            .collect()
    })
}

/// RLOO's leave-one-out advantage, one per sample, `[b]` f32: each score minus the mean of the
/// other `k - 1` scores of its group,
///
/// ```text
/// A_i = r_i - (Σ_g r_j - r_i) / (k - 1)  =  k / (k - 1) · (r_i - mean_g)
/// ```
///
/// An all-equal group gets 0. A group of one sample has no other to average: an error
/// ([`MathError::GroupTooSmall`]). `scores` `[b]` f32, `group_ids` `[b]` i64.
pub fn rloo_advantage(scores: &Tensor, group_ids: &Tensor) -> Result<Tensor> {
    per_group(scores, group_ids, ("rloo", 2), |group| {
        let k = group.len() as f64;
        let sum: f64 = group.iter().map(|&r| f64::from(r)).sum();
        group
            .iter()
            .map(|&r| f64::from(r) - (sum - f64::from(r)) / (k - 1.0))
            .collect()
    })
}

/// Applies `f` (a group's scores → their advantages) to every group of a `[b]` batch; groups
/// smaller than `min_size` are an error of `estimator`, all-equal groups get exact zeros.
fn per_group(
    scores: &Tensor,
    group_ids: &Tensor,
    (estimator, min_size): (&'static str, usize),
    f: impl Fn(&[f32]) -> Vec<f64>,
) -> Result<Tensor> {
    let b = check::dims1("scores", scores)?;
    let groups = Groups::new(group_ids, b)?;
    let s = check::host(scores)?;
    check::host_finite("scores", &s, &vec![true; s.len()])?;
    let mut out = vec![0.0f32; s.len()];
    for (id, group, members) in groups.iter(&s) {
        if group.len() < min_size {
            return Err(MathError::GroupTooSmall {
                group: id,
                size: group.len(),
                needs: min_size,
                estimator,
            });
        }
        if group.iter().all(|&r| r == group[0]) {
            continue; // no contrast: exactly 0, never 0/0
        }
        for (&i, a) in members.iter().zip(f(&group)) {
            out[i] = a as f32;
        }
    }
    Ok(check::to_device(&out, &[b], scores.device()))
}

/// REINFORCE++: discounted returns of the token rewards ([`discounted_returns`]), whitened
/// over all valid tokens of the batch ([`masked::masked_whiten`]):
///
/// ```text
/// G_t = Σ_{s ≥ t} γ^{s-t} r_s        A_t = (G_t - mean(G)) / sqrt(var(G) + 1e-8)
/// ```
///
/// `rewards` `[b, t]` f32: the outcome score on the last response token minus the per-token
/// KL penalty `kl_coef · KL_t`. Returns `G` as [`Advantages::returns`]. Needs 2 valid tokens.
pub fn reinforce_pp_advantage(rewards: &Tensor, mask: &Tensor, gamma: f64) -> Result<Advantages> {
    let returns = discounted_returns(rewards, mask, gamma)?;
    Ok(Advantages {
        advantages: masked::masked_whiten(&returns, mask)?,
        returns,
        per_sample: None,
    })
}

/// REINFORCE++-baseline: each score minus its group's mean (`grpo_advantage` without std),
/// placed on the sample's last response token, minus `token_penalty` (`kl_coef · KL`, if the
/// KL is in the reward), then [`reinforce_pp_advantage`]. `scores` `[b]` f32, `group_ids`
/// `[b]` i64, `mask` and `token_penalty` `[b, t]`.
pub fn reinforce_pp_baseline_advantage(
    scores: &Tensor,
    group_ids: &Tensor,
    mask: &Tensor,
    token_penalty: Option<&Tensor>,
    gamma: f64,
) -> Result<Advantages> {
    let centred = grpo_advantage(scores, group_ids, false, 0.0)?;
    let rewards = penalised_rewards(&centred, mask, token_penalty)?;
    reinforce_pp_advantage(&rewards, mask, gamma)
}

/// A per-sample `[b]` value spread over the valid tokens of its row: `[b, t]` f32, 0 at
/// invalid positions.
pub fn broadcast_to_tokens(per_sample: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, t) = check::dims2("mask", mask)?;
    check::expect(
        "per_sample",
        per_sample,
        &[b],
        "one value per row of the mask",
    )?;
    let valid = check::valid(mask);
    let spread = per_sample
        .detach()
        .to_device(mask.device())
        .unsqueeze(1)
        .expand([b, t], false);
    Ok(check::zero_invalid(&spread, &valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testutil::{PAD, assert_close, ids, t1, t2, values};

    // One row, all valid: rewards [0, 0, 1], values [0.5, 0.6, 0.7], γ = 0.9, λ = 0.8 (γλ = 0.72).
    //   t=2: δ = 1 + 0.9·0   - 0.7 = 0.3                 A = 0.3
    //   t=1: δ = 0 + 0.9·0.7 - 0.6 = 0.03                A = 0.03 + 0.72·0.3   = 0.246
    //   t=0: δ = 0 + 0.9·0.6 - 0.5 = 0.04                A = 0.04 + 0.72·0.246 = 0.21712
    //   returns = A + V = [0.71712, 0.846, 1.0]
    const GAE_ADV: [f32; 3] = [0.21712, 0.246, 0.3];
    const GAE_RET: [f32; 3] = [0.71712, 0.846, 1.0];

    #[test]
    fn gae_by_hand() {
        let rewards = t2(&[&[0.0, 0.0, 1.0]]);
        let values = t2(&[&[0.5, 0.6, 0.7]]);
        let mask = t2(&[&[1.0, 1.0, 1.0]]);
        let out = gae(&rewards, &values, &mask, 0.9, 0.8).unwrap();
        assert_close(&out.advantages, &GAE_ADV);
        assert_close(&out.returns, &GAE_RET);
    }

    #[test]
    fn gae_with_gamma_lambda_one_is_monte_carlo_return_minus_value() {
        // λ = γ = 1: A_t = Σ_{s≥t} r_s - V_t = 1 - [0.5, 0.6, 0.7] = [0.5, 0.4, 0.3].
        let out = gae(
            &t2(&[&[0.0, 0.0, 1.0]]),
            &t2(&[&[0.5, 0.6, 0.7]]),
            &t2(&[&[1.0; 3]]),
            1.0,
            1.0,
        )
        .unwrap();
        assert_close(&out.advantages, &[0.5, 0.4, 0.3]);
        assert_close(&out.returns, &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn gae_padding_and_gaps_change_nothing() {
        // Row 0: a prompt position before and padding after the same three tokens (NaN there).
        // Row 1: the three tokens with a masked observation token between the 2nd and 3rd
        // (multi-turn): it is skipped, so the result is the same again.
        let rewards = t2(&[&[PAD, 0.0, 0.0, 1.0, PAD], &[0.0, 0.0, 999.0, 1.0, PAD]]);
        let values = t2(&[&[PAD, 0.5, 0.6, 0.7, PAD], &[0.5, 0.6, 999.0, 0.7, PAD]]);
        let mask = t2(&[&[0.0, 1.0, 1.0, 1.0, 0.0], &[1.0, 1.0, 0.0, 1.0, 0.0]]);
        let out = gae(&rewards, &values, &mask, 0.9, 0.8).unwrap();
        let [a0, a1, a2] = GAE_ADV;
        let [r0, r1, r2] = GAE_RET;
        assert_close(
            &out.advantages,
            &[0.0, a0, a1, a2, 0.0, a0, a1, 0.0, a2, 0.0],
        );
        assert_close(&out.returns, &[0.0, r0, r1, r2, 0.0, r0, r1, 0.0, r2, 0.0]);
    }

    #[test]
    fn gae_rejects_bad_input() {
        let mask = t2(&[&[1.0, 1.0]]);
        let ok = t2(&[&[0.0, 1.0]]);
        let nan = t2(&[&[f32::NAN, 1.0]]);
        let short = t2(&[&[0.0]]);
        assert!(matches!(
            gae(&nan, &ok, &mask, 1.0, 1.0),
            Err(MathError::NonFinite { name: "rewards" })
        ));
        assert!(matches!(
            gae(&ok, &nan, &mask, 1.0, 1.0),
            Err(MathError::NonFinite { name: "values" })
        ));
        assert!(matches!(
            gae(&ok, &short, &mask, 1.0, 1.0),
            Err(MathError::Shape { name: "values", .. })
        ));
        assert!(matches!(
            gae(&ok, &ok, &mask, 1.5, 1.0),
            Err(MathError::Param { name: "gamma", .. })
        ));
        assert!(matches!(
            gae(&ok, &ok, &mask, 1.0, -0.1),
            Err(MathError::Param { name: "lam", .. })
        ));
    }

    #[test]
    fn discounted_returns_by_hand() {
        // γ = 0.5, rewards [0.1, 0, 1] with a masked gap and padding (NaN) around them:
        //   G = 1;  G = 0 + 0.5·1 = 0.5;  G = 0.1 + 0.5·0.5 = 0.35.
        let rewards = t2(&[&[0.1, PAD, 0.0, 1.0, PAD]]);
        let mask = t2(&[&[1.0, 0.0, 1.0, 1.0, 0.0]]);
        let g = discounted_returns(&rewards, &mask, 0.5).unwrap();
        assert_close(&g, &[0.35, 0.0, 0.5, 1.0, 0.0]);
    }

    /// Three groups, interleaved: group 0 scores 1, 2, 3; group 1 scores 0, 4; group 2 all 5.
    fn grouped() -> (Tensor, Tensor) {
        (
            t1(&[1.0, 0.0, 2.0, 5.0, 4.0, 3.0, 5.0, 5.0]),
            ids(&[0, 1, 0, 2, 1, 0, 2, 2]),
        )
    }

    #[test]
    fn grpo_by_hand() {
        let (scores, group_ids) = grouped();
        // Group 0: mean 2, std = sqrt((1 + 0 + 1) / 2) = 1 → (r - 2) / (1 + 1e-6) = ∓0.999999, 0.
        // Group 1: mean 2, std = sqrt((4 + 4) / 1) = 2.8284271 → ∓2 / 2.8284281 = ∓0.7071065.
        // Group 2: all equal → 0.
        let adv = grpo_advantage(&scores, &group_ids, true, 1e-6).unwrap();
        assert_close(
            &adv,
            &[
                -0.999999, -0.7071065, 0.0, 0.0, 0.7071065, 0.999999, 0.0, 0.0,
            ],
        );
    }

    #[test]
    fn dr_grpo_does_not_divide_by_std() {
        let (scores, group_ids) = grouped();
        // r - group mean: group 0 → -1, 0, 1; group 1 → -2, 2; group 2 → 0.
        let adv = grpo_advantage(&scores, &group_ids, false, 1e-6).unwrap();
        assert_close(&adv, &[-1.0, -2.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn grpo_identical_rewards_and_singletons_give_zero_not_nan() {
        // eps = 0 would make an all-equal group 0/0; a group of one sample has no std at all.
        let adv =
            grpo_advantage(&t1(&[0.3, 0.3, 0.3, 7.0]), &ids(&[4, 4, 4, 9]), true, 0.0).unwrap();
        assert_close(&adv, &[0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn rloo_by_hand() {
        let (scores, group_ids) = grouped();
        // Group 0 (1, 2, 3): 1 - (2+3)/2 = -1.5;  2 - (1+3)/2 = 0;  3 - (1+2)/2 = 1.5.
        // Group 1 (0, 4): 0 - 4 = -4;  4 - 0 = 4.   Group 2: all equal → 0.
        let adv = rloo_advantage(&scores, &group_ids).unwrap();
        assert_close(&adv, &[-1.5, -4.0, 0.0, 0.0, 4.0, 1.5, 0.0, 0.0]);
    }

    #[test]
    fn rloo_single_sample_group_is_an_error() {
        let err = rloo_advantage(&t1(&[1.0, 0.0, 1.0]), &ids(&[0, 0, 7])).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::GroupTooSmall {
                    group: 7,
                    size: 1,
                    needs: 2,
                    estimator: "rloo"
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn group_estimators_reject_nan_scores_and_bad_ids() {
        let nan = t1(&[1.0, f32::NAN]);
        assert!(matches!(
            grpo_advantage(&nan, &ids(&[0, 0]), true, 1e-6),
            Err(MathError::NonFinite { .. })
        ));
        assert!(matches!(
            rloo_advantage(&nan, &ids(&[0, 0])),
            Err(MathError::NonFinite { .. })
        ));
        let err = rloo_advantage(&t1(&[1.0, 0.0]), &ids(&[0, 0, 0])).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::Shape {
                    name: "group_ids",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn reinforce_pp_by_hand() {
        // γ = 1. Row 0 rewards [-0.1, -0.1, 0.9] → G = [0.7, 0.8, 0.9].
        // Row 1 rewards [0, -0.5, pad]          → G = [-0.5, -0.5, 0].
        // Valid G: mean 1.4 / 5 = 0.28; deviations 0.42, 0.52, 0.62, -0.78, -0.78;
        // Σ dev² = 0.1764 + 0.2704 + 0.3844 + 2·0.6084 = 2.048; unbiased var 0.512, std 0.7155418.
        let rewards = t2(&[&[-0.1, -0.1, 0.9], &[0.0, -0.5, PAD]]);
        let mask = t2(&[&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]]);
        let out = reinforce_pp_advantage(&rewards, &mask, 1.0).unwrap();
        assert_close(&out.returns, &[0.7, 0.8, 0.9, -0.5, -0.5, 0.0]);
        assert_close(
            &out.advantages,
            &[0.5869678, 0.7267221, 0.8664763, -1.0900831, -1.0900831, 0.0],
        );
    }

    #[test]
    fn reinforce_pp_baseline_by_hand() {
        // Scores [2, 0 | 1, 1] in groups of 2: centred [1, -1 | 0, 0], on the last token, γ = 1,
        // so every valid token of a row has its row's centred score: 1, 1, -1, -1, 0, 0, 0, 0.
        // Mean 0, unbiased var 4 / 7, std 0.7559289 → ±1.3228757 and 0. The third column is
        // padding, its penalty NaN: it must not matter.
        let scores = t1(&[2.0, 0.0, 1.0, 1.0]);
        let mask = t2(&[&[1.0, 1.0, 0.0][..]; 4]);
        let penalty = t2(&[&[0.0, 0.0, PAD][..]; 4]);
        let group_ids = ids(&[0, 0, 1, 1]);
        let out = reinforce_pp_baseline_advantage(&scores, &group_ids, &mask, Some(&penalty), 1.0)
            .unwrap();
        let a = 1.3228757;
        assert_close(
            &out.advantages,
            &[a, a, 0.0, -a, -a, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        );
    }

    fn input<'a>(scores: &'a Tensor, mask: &'a Tensor) -> AdvantageInput<'a> {
        AdvantageInput {
            scores,
            mask,
            token_penalty: None,
            values: None,
            group_ids: None,
        }
    }

    #[test]
    fn compute_spreads_group_advantages_over_valid_tokens() {
        let scores = t1(&[1.0, 0.0, 1.0, 1.0]);
        let mask = t2(&[
            &[1.0, 1.0, 0.0],
            &[1.0, 0.0, 0.0],
            &[0.0, 1.0, 1.0],
            &[1.0, 1.0, 1.0],
        ]);
        let group_ids = ids(&[0, 0, 1, 1]);
        let params = AdvantageParams::default();
        // Dr. GRPO: group 0 (1, 0) → ±0.5; group 1 (1, 1) → 0. RLOO: 1 - 0 = 1, 0 - 1 = -1.
        let dr_grpo = AdvantageParams {
            scale_by_std: false,
            ..params
        };
        let cases = [
            (AdvantageEstimator::GroupNorm, dr_grpo, 0.5),
            (AdvantageEstimator::Rloo, params, 1.0),
        ];
        for (estimator, params, a) in cases {
            let out = compute(
                estimator,
                &AdvantageInput {
                    group_ids: Some(&group_ids),
                    ..input(&scores, &mask)
                },
                &params,
            )
            .unwrap();
            let want = [a, a, 0.0, -a, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
            assert_close(&out.advantages, &want);
            assert_close(&out.returns, &want);
        }
    }

    #[test]
    fn compute_gae_whitens_advantages_not_returns() {
        let scores = t1(&[1.0, 0.0]);
        let mask = t2(&[&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]]);
        let vals = t2(&[&[0.5, 0.6, 0.7], &[0.2, 0.1, PAD]]);
        let params = AdvantageParams {
            gamma: 0.9,
            lam: 0.8,
            ..AdvantageParams::default()
        };
        let out = compute(
            AdvantageEstimator::Gae,
            &AdvantageInput {
                values: Some(&vals),
                ..input(&scores, &mask)
            },
            &params,
        )
        .unwrap();
        // Row 0 is the hand-computed example; row 1 (rewards [0, 0]): A1 = 0 - 0.1 = -0.1,
        // A0 = (0.9·0.1 - 0.2) + 0.72·(-0.1) = -0.11 - 0.072 = -0.182; returns A + V.
        let [r0, r1, r2] = GAE_RET;
        assert_close(&out.returns, &[r0, r1, r2, 0.018, 0.0, 0.0]);
        let adv = values(&out.advantages);
        let valid: Vec<f32> = [0, 1, 2, 3, 4].iter().map(|&i| adv[i]).collect();
        let mean = valid.iter().sum::<f32>() / 5.0;
        let var = valid.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "mean {mean}, var {var}"
        );
        assert_eq!(adv[5], 0.0);
    }

    #[test]
    fn compute_reinforce_pp_subtracts_the_token_penalty() {
        // Scores [1, 0]; penalty 0.1 on every token (NaN on the padding). Token rewards:
        // row 0 [-0.1, -0.1, 1 - 0.1], row 1 [-0.1, 0 - 0.1, pad] → G = [0.7, 0.8, 0.9], [-0.2, -0.1].
        let scores = t1(&[1.0, 0.0]);
        let mask = t2(&[&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]]);
        let penalty = t2(&[&[0.1, 0.1, 0.1], &[0.1, 0.1, PAD]]);
        let out = compute(
            AdvantageEstimator::ReinforcePp,
            &AdvantageInput {
                token_penalty: Some(&penalty),
                ..input(&scores, &mask)
            },
            &AdvantageParams::default(),
        )
        .unwrap();
        assert_close(&out.returns, &[0.7, 0.8, 0.9, -0.2, -0.1, 0.0]);
    }

    #[test]
    fn compute_names_missing_and_refused_inputs() {
        let scores = t1(&[1.0, 0.0]);
        let mask = t2(&[&[1.0, 1.0], &[1.0, 1.0]]);
        let params = AdvantageParams::default();
        let err = compute(AdvantageEstimator::Gae, &input(&scores, &mask), &params).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::Input {
                    estimator: "gae",
                    ..
                }
            ),
            "{err}"
        );
        for &estimator in AdvantageEstimator::VARIANTS
            .iter()
            .filter(|e| e.needs_groups())
        {
            let err = compute(estimator, &input(&scores, &mask), &params).unwrap_err();
            assert!(err.to_string().contains("group_ids"), "{estimator}: {err}");
        }
        let penalty = mask.zeros_like();
        let group_ids = ids(&[0, 0]);
        let with_kl = AdvantageInput {
            token_penalty: Some(&penalty),
            group_ids: Some(&group_ids),
            ..input(&scores, &mask)
        };
        let err = compute(AdvantageEstimator::GroupNorm, &with_kl, &params).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::Input {
                    estimator: "group_norm",
                    ..
                }
            ),
            "{err}"
        );
    }
}
