//! Truncated importance sampling (TIS) for samples drawn by a stale policy: with asynchronous
//! rollouts the sampler runs one policy version behind the learner, so each token's
//! policy-gradient term is reweighted by how much more likely the learner makes it, capped so
//! that a few tokens the sampler found unlikely cannot dominate the update.
//!
//! - Truncated IS: Espeholt et al. 2018 (IMPALA, V-trace), <https://arxiv.org/abs/1802.01561>, §4.1.
//! - As veRL applies it to rollout/learner mismatch: Yao et al. 2025, "Your efficient RL
//!   framework secretly brings you off-policy RL training", `tis_imp_ratio_cap`.
//!
//! Shapes: `[b, t]` f32 per-token tensors; `mask` `[b, t]` nonzero = response token.

use tch::{Kind, Tensor};

use super::{check, error::Result, policy_loss::MAX_LOG_RATIO};

/// The weights of one batch and how they came out.
#[derive(Debug)]
pub struct IsWeights {
    /// `[b, t]` f32 `min(π_learner / π_sampler, cap)` at valid positions, 0 elsewhere;
    /// detached (a weight, not a path for gradients).
    pub weights: Tensor,
    /// Mean weight over the valid positions.
    pub mean: f64,
    /// Fraction of the valid positions where the cap bound the weight.
    pub capped_frac: f64,
}

/// Per-token truncated importance weights `w = min(exp(learner - sampler), cap)`:
///
/// `learner` `[b, t]` log-probs of the sampled tokens under the learner's policy at the start of
/// the update; `sampler` `[b, t]` under the policy that sampled them; `mask` `[b, t]`; `cap`
/// finite and > 0. Errors on mismatched shapes, an all-zero mask, NaN/inf at a valid position,
/// or a bad `cap`.
pub fn truncated_is_weights(
    learner: &Tensor,
    sampler: &Tensor,
    mask: &Tensor,
    cap: f64,
) -> Result<IsWeights> {
    check::param(
        "is_cap",
        cap,
        cap > 0.0 && cap.is_finite(),
        "must be finite and > 0",
    )?;
    let inputs = [("learner_logp", learner), ("sampler_logp", sampler)];
    let (valid, n) = check::token_inputs(mask, &inputs, "importance weights", 1)?;
    let learner = check::zero_invalid(&learner.detach(), &valid);
    let sampler = check::zero_invalid(&sampler.detach(), &valid);
    let ratio = (learner - sampler)
        .clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
        .exp();
    let capped = ratio.gt(cap).logical_and(&valid);
    let weights = ratio.clamp_max(cap).masked_fill(&valid.logical_not(), 0.0);
    let sums = Tensor::stack(
        &[
            weights.sum(Kind::Float),
            capped.to_kind(Kind::Float).sum(Kind::Float),
        ],
        0,
    );
    let sums = Vec::<f64>::try_from(&sums.to_kind(Kind::Double).to_device(tch::Device::Cpu))?;
    Ok(IsWeights {
        weights,
        mean: sums[0] / n as f64,
        capped_frac: sums[1] / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, t2};

    #[test]
    fn weights_by_hand_with_the_cap_binding_once() {
        // Ratios e^0 = 1, e^ln(0.5) = 0.5, e^ln(3) = 3 (capped to 2), e^ln(1.5) = 1.5; padding NaN.
        let learner = t2(&[&[0.0, 0.5f32.ln(), PAD], &[3f32.ln(), 1.5f32.ln(), PAD]]);
        let sampler = t2(&[&[0.0, 0.0, PAD], &[0.0, 0.0, PAD]]);
        let mask = t2(&[&[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0]]);
        let w = truncated_is_weights(&learner, &sampler, &mask, 2.0).unwrap();
        assert_close(&w.weights, &[1.0, 0.5, 0.0, 2.0, 1.5, 0.0]);
        assert!((w.mean - 5.0 / 4.0).abs() < 1e-6, "{}", w.mean);
        assert!((w.capped_frac - 0.25).abs() < 1e-9, "{}", w.capped_frac);
    }

    #[test]
    fn on_policy_samples_weigh_one() {
        let logp = t2(&[&[-0.3, -2.0], &[-1.0, -0.1]]);
        let mask = t2(&[&[1.0, 1.0], &[1.0, 0.0]]);
        let w = truncated_is_weights(&logp, &logp, &mask, 2.0).unwrap();
        assert_close(&w.weights, &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(w.capped_frac, 0.0);
    }

    #[test]
    fn a_bad_cap_or_a_nan_token_is_an_error() {
        let logp = t2(&[&[-0.3, f32::NAN]]);
        let mask = t2(&[&[1.0, 1.0]]);
        let err = truncated_is_weights(&logp, &logp, &mask, 2.0).unwrap_err();
        assert!(matches!(err, MathError::NonFinite { .. }), "{err}");
        for cap in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let err = truncated_is_weights(&logp, &logp, &mask, cap).unwrap_err();
            assert!(matches!(err, MathError::Param { .. }), "{cap}: {err}");
        }
    }
}
