//! Loss aggregation: how a `[b, t]` per-token loss becomes one number, and so how much each
//! token and each sequence weighs in the gradient.
//!
//! - `token_mean`: every valid token of the batch weighs the same (DAPO's token-level loss,
//!   Yu et al. 2025, <https://arxiv.org/abs/2503.14476>, §3.3).
//! - `seq_mean_token_mean`: each sequence weighs the same, its tokens share its weight
//!   (the original GRPO, <https://arxiv.org/abs/2402.03300>, eq. 3).
//! - `seq_mean_token_sum`: each sequence's token losses summed, then averaged over sequences.
//!   Dr. GRPO (Liu et al. 2025, <https://arxiv.org/abs/2503.20783>, §3.1) drops GRPO's
//!   `1/|o_i|` this way; its "divide by a constant `max_len`" is this mode scaled by
//!   `1 / max_len` (multiply the result, or fold it into the learning rate).
//!
//! Sequences with no valid token (padding rows) count for nothing in any mode.
//!
//! Micro-batches: a mini-batch split for gradient accumulation must divide each micro-batch's
//! [`numerator`] by the [`denominator`] of the whole
//! mini-batch (the sum of its micro-batches'), so that the accumulated gradient equals the
//! mini-batch's own.

use rl_core::config::LossAggregation;
use tch::{Kind, Tensor};

use super::check;
use super::error::Result;

/// The sum `mode` averages, 0-d f32, differentiable in `loss`: over valid tokens for
/// `token_mean`, over sequences (of their token sum or token mean) otherwise. `loss` and
/// `mask` `[b, t]`.
pub fn numerator(mode: LossAggregation, loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check::dims2("mask", mask)?;
    check::expect("loss", loss, &mask.size(), "the mask's shape")?;
    let valid = check::valid(mask);
    let loss = check::zero_invalid(loss, &valid);
    Ok(match mode {
        LossAggregation::TokenMean | LossAggregation::SeqMeanTokenSum => loss.sum(Kind::Float),
        LossAggregation::SeqMeanTokenMean => {
            let tokens = valid.sum_dim_intlist(1, false, Kind::Float);
            // A row without tokens sums to 0; dividing by max(n, 1) keeps it 0, not 0/0.
            (loss.sum_dim_intlist(1, false, Kind::Float) / tokens.clamp_min(1.0)).sum(Kind::Float)
        }
    })
}

/// How many units `mode`'s mean is over: valid tokens (`token_mean`) or sequences with at
/// least one valid token (the `seq_mean_*` modes). `mask` `[b, t]`.
pub fn denominator(mode: LossAggregation, mask: &Tensor) -> Result<i64> {
    check::dims2("mask", mask)?;
    let valid = check::valid(mask);
    let units = match mode {
        LossAggregation::TokenMean => valid,
        LossAggregation::SeqMeanTokenSum | LossAggregation::SeqMeanTokenMean => {
            valid.any_dim(1, false)
        }
    };
    check::scan(&units, &[])
}

/// `loss` `[b, t]` reduced to a 0-d f32 scalar as `mode` says: `numerator / denominator`.
/// A mask with no valid token is an error, not 0/0.
pub fn aggregate(loss: &Tensor, mask: &Tensor, mode: LossAggregation) -> Result<Tensor> {
    let units = denominator(mode, mask)?;
    check::enough("mask", "a loss aggregation", units, 1)?;
    Ok(numerator(mode, loss, mask)? / units as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, assert_scalar, t2};

    // Row 0: losses 1, 2, 3; row 1: loss 4; row 2: padding only (NaN everywhere else).
    fn batch() -> (Tensor, Tensor) {
        let loss = t2(&[&[1.0, 2.0, 3.0, PAD], &[4.0, PAD, PAD, PAD], &[PAD; 4]]);
        let mask = t2(&[&[1.0, 1.0, 1.0, 0.0], &[1.0, 0.0, 0.0, 0.0], &[0.0; 4]]);
        (loss, mask)
    }

    #[test]
    fn modes_by_hand() {
        let (loss, mask) = batch();
        // token_mean: (1 + 2 + 3 + 4) / 4 tokens = 2.5.
        // seq_mean_token_sum: (6 + 4) / 2 non-empty rows = 5.
        // seq_mean_token_mean: (6/3 + 4/1) / 2 = 3.
        let cases = [
            (LossAggregation::TokenMean, 2.5, 10.0, 4),
            (LossAggregation::SeqMeanTokenSum, 5.0, 10.0, 2),
            (LossAggregation::SeqMeanTokenMean, 3.0, 6.0, 2),
        ];
        for (mode, mean, sum, units) in cases {
            assert_scalar(&aggregate(&loss, &mask, mode).unwrap(), mean);
            assert_scalar(&numerator(mode, &loss, &mask).unwrap(), sum);
            assert_eq!(denominator(mode, &mask).unwrap(), units, "{mode}");
        }
    }

    #[test]
    fn gradients_weigh_tokens_as_the_mode_says() {
        let (loss, mask) = batch();
        // d/dl: token_mean 1/4 per token; seq_mean_token_sum 1/2 per token (1/2 per row, summed);
        // seq_mean_token_mean 1/2 · 1/3 on row 0, 1/2 · 1/1 on row 1. Padding: 0, not NaN.
        let cases = [
            (LossAggregation::TokenMean, [0.25, 0.25, 0.25, 0.25]),
            (LossAggregation::SeqMeanTokenSum, [0.5, 0.5, 0.5, 0.5]),
            (
                LossAggregation::SeqMeanTokenMean,
                [1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0, 0.5],
            ),
        ];
        for (mode, [a, b, c, d]) in cases {
            let loss = loss.copy().set_requires_grad(true);
            aggregate(&loss, &mask, mode).unwrap().backward();
            assert_close(
                &loss.grad(),
                &[a, b, c, 0.0, d, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            );
        }
    }

    #[test]
    fn micro_batches_accumulate_to_the_full_batch() {
        let (loss, mask) = batch();
        for mode in [
            LossAggregation::TokenMean,
            LossAggregation::SeqMeanTokenSum,
            LossAggregation::SeqMeanTokenMean,
        ] {
            let full = aggregate(&loss, &mask, mode).unwrap();
            let parts = [(0, 1), (1, 2)]
                .map(|(start, len)| (loss.narrow(0, start, len), mask.narrow(0, start, len)));
            let total: i64 = parts
                .iter()
                .map(|(_, m)| denominator(mode, m).unwrap())
                .sum();
            let summed = parts
                .iter()
                .map(|(l, m)| numerator(mode, l, m).unwrap() / total as f64)
                .fold(Tensor::from(0.0f32), |acc, x| acc + x);
            assert_scalar(&summed, full.double_value(&[]));
        }
    }

    #[test]
    fn empty_mask_is_an_error() {
        let (loss, mask) = batch();
        let err =
            aggregate(&loss, &mask.zeros_like(), LossAggregation::SeqMeanTokenMean).unwrap_err();
        assert!(
            matches!(err, MathError::EmptyMask { valid: 0, .. }),
            "{err}"
        );
    }
}
