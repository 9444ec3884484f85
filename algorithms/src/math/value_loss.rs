//! The critic's loss: squared error to the returns, optionally clipped around the values the
//! critic predicted when the batch was sampled (PPO's value clipping).
//!
//! PPO: Schulman et al. 2017, <https://arxiv.org/abs/1707.06347> (the clipped value loss is
//! from OpenAI baselines' `ppo2`; veRL's `compute_value_loss`).

use tch::{Kind, Tensor};

use super::check;
use super::error::Result;

/// The value loss of a batch and its diagnostics.
#[derive(Debug)]
pub struct ValueLoss {
    /// `[b, t]` f32 per-token loss, 0 at invalid positions; differentiable in `values`.
    pub loss: Tensor,
    /// 0-d: fraction of valid tokens where the clipped error was the larger
    /// (`critic/vf_clipfrac`); 0 without clipping.
    pub clip_frac: Tensor,
}

/// Per-token value loss:
///
/// ```text
/// L = ½ (V - R)²                                              clip = None
/// L = ½ max((V - R)², (clip(V, V_old - ε_v, V_old + ε_v) - R)²)   clip = Some(ε_v)
/// ```
///
/// `values` `[b, t]` f32 the critic's current predictions (gradients flow to them only),
/// `old_values` `[b, t]` its predictions at sampling time, `returns` `[b, t]` the targets
/// (GAE's `advantages + values`), `mask` `[b, t]`. `clip` ε_v > 0 (`algorithm.value_clip`).
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: Option<f64>,
) -> Result<ValueLoss> {
    if let Some(eps) = clip {
        check::param(
            "value_clip",
            eps,
            eps > 0.0 && eps.is_finite(),
            "must be finite and > 0",
        )?;
    }
    let inputs = [
        ("values", values),
        ("old_values", old_values),
        ("returns", returns),
    ];
    let (valid, n) = check::token_inputs(mask, &inputs, "a value loss", 1)?;
    let values = check::zero_invalid(values, &valid);
    let returns = check::zero_invalid(&returns.detach(), &valid);
    let unclipped = (&values - &returns).square();
    let (loss, clip_frac) = match clip {
        None => (unclipped, Tensor::zeros([], (Kind::Float, mask.device()))),
        Some(eps) => {
            let old = check::zero_invalid(&old_values.detach(), &valid);
            let clipped =
                (values.clamp_tensor(Some(&old - eps), Some(&old + eps)) - &returns).square();
            let frac = clipped
                .gt_tensor(&unclipped)
                .logical_and(&valid)
                .to_kind(Kind::Float);
            (
                unclipped.maximum(&clipped),
                frac.sum(Kind::Float) / n as f64,
            )
        }
    };
    Ok(ValueLoss {
        loss: (loss * 0.5).masked_fill(&valid.logical_not(), 0.0),
        clip_frac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, assert_scalar, t2};

    // ε_v = 0.2, so V is clipped to [V_old - 0.2, V_old + 0.2]:
    //
    //   V    V_old  R     (V - R)²  clip(V)  (clip(V) - R)²  ½ max   clipped?  d/dV
    //   1.0  0.5    1.0   0         0.7      0.09            0.045   yes       0
    //   0.6  0.5    1.0   0.16      0.6      0.16            0.08    no        V - R = -0.4
    //   0.0  0.5    1.0   1         0.3      0.49            0.5     no        -1
    //   2.0  0.5    0.0   4         0.7      0.49            2       no        2
    fn batch() -> [Tensor; 4] {
        let values = t2(&[&[1.0, 0.6, PAD], &[0.0, 2.0, PAD]]);
        let old = t2(&[&[0.5, 0.5, PAD], &[0.5, 0.5, PAD]]);
        let returns = t2(&[&[1.0, 1.0, PAD], &[1.0, 0.0, PAD]]);
        let mask = t2(&[&[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0]]);
        [values, old, returns, mask]
    }

    #[test]
    fn clipped_value_loss_by_hand() {
        let [values, old, returns, mask] = batch();
        let values = values.set_requires_grad(true);
        let out = value_loss(&values, &old, &returns, &mask, Some(0.2)).unwrap();
        assert_close(&out.loss, &[0.045, 0.08, 0.0, 0.5, 2.0, 0.0]);
        assert_scalar(&out.clip_frac, 0.25);
        out.loss.sum(Kind::Float).backward();
        assert_close(&values.grad(), &[0.0, -0.4, 0.0, -1.0, 2.0, 0.0]);
    }

    #[test]
    fn unclipped_value_loss_is_half_squared_error() {
        let [values, old, returns, mask] = batch();
        let out = value_loss(&values, &old, &returns, &mask, None).unwrap();
        // ½ (V - R)²: 0, 0.08, 0.5, 2.
        assert_close(&out.loss, &[0.0, 0.08, 0.0, 0.5, 2.0, 0.0]);
        assert_scalar(&out.clip_frac, 0.0);
    }

    #[test]
    fn rejects_bad_input() {
        let [values, old, returns, mask] = batch();
        assert!(matches!(
            value_loss(&values, &old, &returns, &mask, Some(0.0)),
            Err(MathError::Param { .. })
        ));
        let nan = returns
            .copy()
            .index_fill(1, &Tensor::from_slice(&[0i64]), f64::NAN);
        let err = value_loss(&values, &old, &nan, &mask, Some(0.2)).unwrap_err();
        assert!(
            matches!(err, MathError::NonFinite { name: "returns" }),
            "{err}"
        );
        let err = value_loss(&values, &old, &returns, &mask.zeros_like(), None).unwrap_err();
        assert!(matches!(err, MathError::EmptyMask { .. }), "{err}");
    }
}
