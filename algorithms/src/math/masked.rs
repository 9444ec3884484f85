//! Masked reductions over token tensors: sum, mean, variance, whitening and explained variance
//! (the `masked_*` helpers of veRL's `verl/utils/torch_functional.py`).
//!
//! `x` and `mask` have the same shape, usually `[b, t]`; mask nonzero = valid (a response
//! token), 0 = prompt or padding. Whatever an invalid position holds, even NaN, reaches neither
//! a result nor a gradient. Results are f32; reductions are 0-d tensors, differentiable in `x`.

use tch::{Kind, Tensor};

use super::check;
use super::error::Result;

/// Added to the variance before the square root in [`masked_whiten`] (veRL's constant).
pub const WHITEN_EPS: f64 = 1e-8;

/// Added to `Var[returns]` in [`explained_variance`] (veRL's constant).
pub const EXPLAINED_VAR_EPS: f64 = 1e-5;

/// `Σ x` over the valid positions: a 0-d f32 tensor, 0 for an all-zero mask.
pub fn masked_sum(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check::expect("x", x, &mask.size(), "the mask's shape")?;
    Ok(check::zero_invalid(x, &check::valid(mask)).sum(Kind::Float))
}

/// `Σ x / n` over the `n` valid positions: a 0-d f32 tensor. An all-zero mask is an error.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (sum, n) = sum_count(x, mask, "a mean", 1)?;
    Ok(sum / n as f64)
}

/// Variance of `x` over the `n` valid positions: `Σ (x - mean)² / (n - 1)` when `unbiased`
/// (Bessel's correction, as `torch.var` and veRL's `masked_var`), else `/ n`. 0-d f32. Needs
/// `n ≥ 2` when `unbiased`, `n ≥ 1` otherwise.
pub fn masked_var(x: &Tensor, mask: &Tensor, unbiased: bool) -> Result<Tensor> {
    let (var, _) = var_mean(x, mask, unbiased)?;
    Ok(var)
}

/// `(x - mean) / sqrt(var + 1e-8)` at valid positions, 0 elsewhere; mean and unbiased variance
/// over all valid positions of the batch (veRL's `masked_whiten` with `shift_mean = True`).
/// Same shape as `x`, f32. Needs at least 2 valid positions.
pub fn masked_whiten(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (var, mean) = var_mean(x, mask, true)?;
    let valid = check::valid(mask);
    let z = (check::zero_invalid(x, &valid) - mean) * (var + WHITEN_EPS).rsqrt();
    Ok(z.masked_fill(&valid.logical_not(), 0.0))
}

/// Fraction of the variance of `returns` the critic's `values` explain, over valid positions:
/// `1 - Var[returns - values] / (Var[returns] + 1e-5)` with population variances. 1 is a
/// perfect critic, 0 one no better than a constant, negative worse. 0-d f32; the metric
/// `critic/vf_explained_var`. Needs one valid position.
pub fn explained_variance(values: &Tensor, returns: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check::expect("values", values, &mask.size(), "the mask's shape")?;
    check::expect("returns", returns, &mask.size(), "the mask's shape")?;
    let valid = check::valid(mask);
    let returns = check::zero_invalid(returns, &valid);
    let diff = &returns - check::zero_invalid(values, &valid);
    let (var_diff, _) = var_mean(&diff, mask, false)?;
    let (var_returns, _) = var_mean(&returns, mask, false)?;
    Ok(1.0 - var_diff / (var_returns + EXPLAINED_VAR_EPS))
}

/// `(Σ x, n)` over valid positions, failing unless `n ≥ needs`.
fn sum_count(x: &Tensor, mask: &Tensor, op: &'static str, needs: i64) -> Result<(Tensor, i64)> {
    check::expect("x", x, &mask.size(), "the mask's shape")?;
    let valid = check::valid(mask);
    let n = check::scan(&valid, &[])?;
    check::enough("x", op, n, needs)?;
    Ok((check::zero_invalid(x, &valid).sum(Kind::Float), n))
}

/// `(variance, mean)` over valid positions, both 0-d.
fn var_mean(x: &Tensor, mask: &Tensor, unbiased: bool) -> Result<(Tensor, Tensor)> {
    let (op, needs) = if unbiased {
        ("an unbiased variance", 2)
    } else {
        ("a variance", 1)
    };
    let (sum, n) = sum_count(x, mask, op, needs)?;
    let mean = sum / n as f64;
    let valid = check::valid(mask);
    let sq = (check::zero_invalid(x, &valid) - &mean).square();
    let ss = sq.masked_fill(&valid.logical_not(), 0.0).sum(Kind::Float);
    let dof = if unbiased { n - 1 } else { n };
    Ok((ss / dof as f64, mean))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, assert_scalar, scalar, t2};

    /// Valid values 1, 2, 3 | 4, 5; the padding holds NaN and inf.
    fn batch() -> (Tensor, Tensor) {
        let x = t2(&[&[1.0, 2.0, 3.0, PAD], &[4.0, 5.0, f32::INFINITY, 7.0]]);
        let mask = t2(&[&[1.0, 1.0, 1.0, 0.0], &[1.0, 1.0, 0.0, 0.0]]);
        (x, mask)
    }

    #[test]
    fn sum_mean_var_ignore_padding() {
        let (x, mask) = batch();
        // 1 + 2 + 3 + 4 + 5 = 15; mean 15 / 5 = 3.
        assert_scalar(&masked_sum(&x, &mask).unwrap(), 15.0);
        assert_scalar(&masked_mean(&x, &mask).unwrap(), 3.0);
        // Squared deviations from 3: 4 + 1 + 0 + 1 + 4 = 10; unbiased 10 / 4, biased 10 / 5.
        assert_scalar(&masked_var(&x, &mask, true).unwrap(), 2.5);
        assert_scalar(&masked_var(&x, &mask, false).unwrap(), 2.0);
    }

    #[test]
    fn whiten_is_zero_mean_unit_variance_and_zero_at_padding() {
        let (x, mask) = batch();
        // (x - 3) / sqrt(2.5 + 1e-8): ±2 / 1.5811388 = ±1.264911, ±1 / 1.5811388 = ±0.6324555.
        let z = masked_whiten(&x, &mask).unwrap();
        assert_close(
            &z,
            &[
                -1.264911, -0.6324555, 0.0, 0.0, 0.6324555, 1.264911, 0.0, 0.0,
            ],
        );
    }

    #[test]
    fn bool_and_integer_masks_mean_the_same() {
        let (x, mask) = batch();
        let want = masked_mean(&x, &mask).unwrap();
        for kind in [Kind::Bool, Kind::Int64, Kind::Uint8] {
            assert_scalar(
                &masked_mean(&x, &mask.to_kind(kind)).unwrap(),
                scalar(&want),
            );
        }
    }

    #[test]
    fn empty_mask_is_an_error_not_nan() {
        let (x, mask) = batch();
        let none = mask.zeros_like();
        assert!(matches!(
            masked_mean(&x, &none),
            Err(MathError::EmptyMask { valid: 0, .. })
        ));
        assert_scalar(&masked_sum(&x, &none).unwrap(), 0.0);
        // One valid token: a biased variance (0) exists, an unbiased one does not.
        let one = t2(&[&[1.0, 0.0, 0.0, 0.0], &[0.0; 4]]);
        assert_scalar(&masked_var(&x, &one, false).unwrap(), 0.0);
        let err = masked_var(&x, &one, true).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::EmptyMask {
                    valid: 1,
                    needs: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            masked_whiten(&x, &one),
            Err(MathError::EmptyMask { .. })
        ));
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let (x, _) = batch();
        let mask = Tensor::ones([2, 3], (Kind::Float, tch::Device::Cpu));
        let err = masked_mean(&x, &mask).unwrap_err();
        assert!(matches!(err, MathError::Shape { .. }), "{err}");
        assert!(err.to_string().contains("[2, 4]"), "{err}");
    }

    #[test]
    fn mean_gradient_is_one_over_n_on_valid_tokens_and_zero_on_padding() {
        let (x, mask) = batch();
        let x = x.set_requires_grad(true);
        masked_mean(&x, &mask).unwrap().backward();
        // d mean / d x_i = 1/5 on the 5 valid positions; padding (NaN, inf) gets exactly 0.
        assert_close(&x.grad(), &[0.2, 0.2, 0.2, 0.0, 0.2, 0.2, 0.0, 0.0]);
    }

    #[test]
    fn explained_variance_by_hand() {
        let returns = t2(&[&[1.0, 2.0, PAD], &[3.0, 4.0, PAD]]);
        let values = t2(&[&[1.0, 2.0, PAD], &[3.0, 5.0, 9.0]]);
        let mask = t2(&[&[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0]]);
        // returns - values = [0, 0, 0, -1]: mean -0.25, Var = (3·0.0625 + 0.5625) / 4 = 0.1875.
        // Var[returns] = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
        // 1 - 0.1875 / (1.25 + 1e-5) = 0.8500012.
        let ev = explained_variance(&values, &returns, &mask).unwrap();
        assert_scalar(&ev, 0.8500012);
        // A perfect critic explains everything.
        assert_scalar(&explained_variance(&returns, &returns, &mask).unwrap(), 1.0);
    }
}
