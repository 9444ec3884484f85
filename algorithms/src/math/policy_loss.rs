//! PPO's clipped surrogate policy loss, per token, with DAPO's decoupled clip range
//! (clip-higher) and dual-clip.
//!
//! - PPO: Schulman et al. 2017, <https://arxiv.org/abs/1707.06347>, eq. 7.
//! - Clip-higher (ε_low ≠ ε_high): DAPO, Yu et al. 2025, <https://arxiv.org/abs/2503.14476>, §3.1.
//! - Dual-clip: Ye et al. 2020, <https://arxiv.org/abs/1912.09729>, §3.3.
//!
//! Shapes: `[b, t]` f32 per-token tensors; `mask` `[b, t]` nonzero = response token, 0 =
//! prompt or padding. Reduce [`PolicyLoss::loss`] with [`super::aggregate()`].

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::check;
use super::error::Result;

/// Bound on `|logp - old_logp|` before `exp`, so a wild ratio stays finite (veRL's 20).
pub const MAX_LOG_RATIO: f64 = 20.0;

/// Clip range of the surrogate: the ratio `r = π/π_old` is clipped to
/// `[1 - eps_low, 1 + eps_high]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoClip {
    /// ε_low in `[0, 1)` (`algorithm.clip_ratio`; PPO 0.2).
    pub eps_low: f64,
    /// ε_high ≥ 0 (`algorithm.clip_ratio_high`; DAPO 0.28).
    pub eps_high: f64,
    /// Dual-clip constant `c > 1` (typically 3): for a negative advantage the loss is at most
    /// `-c · A`, however large the ratio has grown. `None`: no dual clip.
    pub dual_clip: Option<f64>,
}

impl PpoClip {
    /// PPO's symmetric range `[1 - eps, 1 + eps]`, no dual clip.
    pub fn symmetric(eps: f64) -> Self {
        Self {
            eps_low: eps,
            eps_high: eps,
            dual_clip: None,
        }
    }

    /// Checks the ranges; every loss call does.
    pub fn validate(&self) -> Result<()> {
        let (low, high) = (self.eps_low, self.eps_high);
        check::param(
            "clip_ratio",
            low,
            (0.0..1.0).contains(&low),
            "must be in [0, 1)",
        )?;
        check::param(
            "clip_ratio_high",
            high,
            high >= 0.0 && high.is_finite(),
            "must be finite and >= 0",
        )?;
        if let Some(c) = self.dual_clip {
            check::param(
                "dual_clip",
                c,
                c > 1.0 && c.is_finite(),
                "must be finite and > 1",
            )?;
        }
        Ok(())
    }
}

/// The policy loss of a batch and its diagnostics.
#[derive(Debug)]
pub struct PolicyLoss {
    /// `[b, t]` f32 per-token loss, 0 at invalid positions; differentiable in `logp`.
    pub loss: Tensor,
    /// 0-d: fraction of valid tokens where the clipped term was the larger loss, i.e. the
    /// gradient was cut (`actor/pg_clipfrac`).
    pub clip_frac: Tensor,
    /// 0-d: fraction of valid tokens where the dual clip bound the loss
    /// (`actor/pg_clipfrac_lower`); 0 without dual clip.
    pub clip_frac_lower: Tensor,
    /// 0-d: masked mean of `old_logp - logp` (clamped as the ratio is), the k1 estimate of
    /// KL(π_old ‖ π) (`actor/ppo_kl`).
    pub ppo_kl: Tensor,
}

/// PPO's clipped surrogate, per token, negated into a loss:
///
/// ```text
/// r    = exp(logp - old_logp)                       (log-ratio clamped to ±20)
/// L    = max(-A · r, -A · clip(r, 1 - ε_low, 1 + ε_high))
/// L    = min(L, -c · A)   where A < 0               (dual clip, if set)
/// ```
///
/// `logp` `[b, t]` f32 log-probs of the sampled tokens under the policy being trained (the
/// only input gradients flow to); `old_logp` `[b, t]` under the policy that sampled them;
/// `advantages` `[b, t]`; `mask` `[b, t]`. Errors on mismatched shapes, an all-zero mask,
/// NaN/inf at a valid position, or a bad `clip`.
pub fn ppo_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: &PpoClip,
) -> Result<PolicyLoss> {
    clip.validate()?;
    let inputs = [
        ("logp", logp),
        ("old_logp", old_logp),
        ("advantages", advantages),
    ];
    let (valid, n) = check::token_inputs(mask, &inputs, "a policy loss", 1)?;
    let logp = check::zero_invalid(logp, &valid);
    let old_logp = check::zero_invalid(&old_logp.detach(), &valid);
    let adv = check::zero_invalid(&advantages.detach(), &valid);
    let log_ratio = (&logp - &old_logp).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO);
    let ratio = log_ratio.exp();
    let unclipped = -&adv * &ratio;
    let clipped = -&adv * ratio.clamp(1.0 - clip.eps_low, 1.0 + clip.eps_high);
    let mut loss = unclipped.maximum(&clipped);
    let mean = |x: Tensor| x.to_kind(Kind::Float).sum(Kind::Float) / n as f64;
    let clip_frac = mean(clipped.gt_tensor(&unclipped).logical_and(&valid));
    let mut clip_frac_lower = Tensor::zeros([], (Kind::Float, mask.device()));
    if let Some(c) = clip.dual_clip {
        let bound = -&adv * c;
        let negative = adv.lt(0.0);
        let bound_binds = loss.gt_tensor(&bound).logical_and(&negative);
        clip_frac_lower = mean(bound_binds.logical_and(&valid));
        loss = loss.where_self(&negative.logical_not(), &loss.minimum(&bound));
    }
    Ok(PolicyLoss {
        loss: loss.masked_fill(&valid.logical_not(), 0.0),
        clip_frac,
        clip_frac_lower,
        ppo_kl: mean(-log_ratio.detach()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, assert_scalar, t2};

    // Six tokens with old_logp = 0 and logp = ln r, ε_low = 0.2, ε_high = 0.28:
    //
    //   A    r     -A·r   -A·clip(r, 0.8, 1.28)   max      clipped?  d loss / d logp
    //   +1   1.5   -1.5   -1.28                   -1.28    yes       0
    //   +1   0.5   -0.5   -0.8                    -0.5     no        -A·r = -0.5
    //   -1   0.5    0.5    0.8                     0.8     yes       0
    //   -1   1.2    1.2    1.2                     1.2     no        1.2
    //   -1   5.0    5.0    1.28                    5.0     no        5.0
    //   +2   1.25  -2.5   -2.5                    -2.5     no        -2.5
    //
    // The last one is inside ε_high but outside ε_low: a symmetric 0.2 would clip it to -2.4.
    // The fourth column of each row is padding (NaN everywhere).
    fn batch() -> [Tensor; 4] {
        let ln = |r: f32| r.ln();
        let logp = t2(&[
            &[ln(1.5), ln(0.5), ln(0.5), PAD],
            &[ln(1.2), ln(5.0), ln(1.25), PAD],
        ]);
        let old = t2(&[&[0.0, 0.0, 0.0, PAD], &[0.0, 0.0, 0.0, PAD]]);
        let adv = t2(&[&[1.0, 1.0, -1.0, PAD], &[-1.0, -1.0, 2.0, PAD]]);
        let mask = t2(&[&[1.0, 1.0, 1.0, 0.0], &[1.0, 1.0, 1.0, 0.0]]);
        [logp, old, adv, mask]
    }

    const CLIP_HIGHER: PpoClip = PpoClip {
        eps_low: 0.2,
        eps_high: 0.28,
        dual_clip: None,
    };

    #[test]
    fn clipped_surrogate_by_hand_with_clip_higher() {
        let [logp, old, adv, mask] = batch();
        let logp = logp.set_requires_grad(true);
        let out = ppo_policy_loss(&logp, &old, &adv, &mask, &CLIP_HIGHER).unwrap();
        assert_close(&out.loss, &[-1.28, -0.5, 0.8, 0.0, 1.2, 5.0, -2.5, 0.0]);
        // Clipped: tokens 1 and 3 of 6.
        assert_scalar(&out.clip_frac, 2.0 / 6.0);
        assert_scalar(&out.clip_frac_lower, 0.0);
        // ppo_kl = mean(old - logp) = -(ln 1.5 + 2 ln 0.5 + ln 1.2 + ln 5 + ln 1.25) / 6
        //        = -(0.4054651 - 1.3862944 + 0.1823216 + 1.6094379 + 0.2231436) / 6 = -0.1723456.
        assert_scalar(&out.ppo_kl, -0.1723456);
        // Gradient: 0 where clipped, -A·r elsewhere, exactly 0 (not NaN) on the padding.
        out.loss.sum(Kind::Float).backward();
        assert_close(&logp.grad(), &[0.0, -0.5, 0.0, 0.0, 1.2, 5.0, -2.5, 0.0]);
    }

    #[test]
    fn symmetric_clip_cuts_what_clip_higher_lets_through() {
        let [logp, old, adv, mask] = batch();
        let out = ppo_policy_loss(&logp, &old, &adv, &mask, &PpoClip::symmetric(0.2)).unwrap();
        // Token 1 now clips at 1.2 (-1.2), token 6 at 1.2 (-2·1.2 = -2.4); token 4 sits on the
        // bound (r = 1.2, nothing cut). Clipped: tokens 1, 3 and 6, 3 of 6.
        assert_close(&out.loss, &[-1.2, -0.5, 0.8, 0.0, 1.2, 5.0, -2.4, 0.0]);
        assert_scalar(&out.clip_frac, 3.0 / 6.0);
    }

    #[test]
    fn dual_clip_bounds_negative_advantage_losses() {
        let [logp, old, adv, mask] = batch();
        let logp = logp.set_requires_grad(true);
        let clip = PpoClip {
            dual_clip: Some(3.0),
            ..CLIP_HIGHER
        };
        let out = ppo_policy_loss(&logp, &old, &adv, &mask, &clip).unwrap();
        // Token 5 (A = -1, r = 5): min(5, -3·(-1)) = 3, a constant: no gradient. Token 3 (0.8)
        // and 4 (1.2) are under the bound; positive advantages are never dual-clipped.
        assert_close(&out.loss, &[-1.28, -0.5, 0.8, 0.0, 1.2, 3.0, -2.5, 0.0]);
        assert_scalar(&out.clip_frac_lower, 1.0 / 6.0);
        out.loss.sum(Kind::Float).backward();
        assert_close(&logp.grad(), &[0.0, -0.5, 0.0, 0.0, 1.2, 0.0, -2.5, 0.0]);
    }

    #[test]
    fn huge_log_ratio_stays_finite() {
        // logp - old = 100 → clamped to 20: loss = -1 · clip(e^20, 0.8, 1.2) = -1.2.
        let logp = t2(&[&[100.0]]);
        let out = ppo_policy_loss(
            &logp,
            &t2(&[&[0.0]]),
            &t2(&[&[1.0]]),
            &t2(&[&[1.0]]),
            &PpoClip::symmetric(0.2),
        )
        .unwrap();
        assert_close(&out.loss, &[-1.2]);
        assert_scalar(&out.ppo_kl, -20.0);
    }

    #[test]
    fn rejects_bad_input() {
        let [logp, old, adv, mask] = batch();
        let none = mask.zeros_like();
        let err = ppo_policy_loss(&logp, &old, &adv, &none, &CLIP_HIGHER).unwrap_err();
        assert!(matches!(err, MathError::EmptyMask { .. }), "{err}");
        let nan_adv = adv
            .copy()
            .index_fill(1, &Tensor::from_slice(&[0i64]), f64::NAN);
        let err = ppo_policy_loss(&logp, &old, &nan_adv, &mask, &CLIP_HIGHER).unwrap_err();
        assert!(
            matches!(err, MathError::NonFinite { name: "advantages" }),
            "{err}"
        );
        let short = old.narrow(1, 0, 3);
        let err = ppo_policy_loss(&logp, &short, &adv, &mask, &CLIP_HIGHER).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::Shape {
                    name: "old_logp",
                    ..
                }
            ),
            "{err}"
        );
        let bad = [
            PpoClip {
                dual_clip: Some(1.0),
                ..CLIP_HIGHER
            },
            PpoClip {
                eps_low: 1.0,
                ..CLIP_HIGHER
            },
            PpoClip {
                eps_high: -0.1,
                ..CLIP_HIGHER
            },
        ];
        for clip in bad {
            let err = ppo_policy_loss(&logp, &old, &adv, &mask, &clip).unwrap_err();
            assert!(matches!(err, MathError::Param { .. }), "{clip:?}: {err}");
        }
    }
}
