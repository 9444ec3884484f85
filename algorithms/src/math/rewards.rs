//! From outcome scores to the rewards the estimators see: each score placed on its sample's
//! last response token, and DAPO's overlong reward shaping.
//!
//! DAPO: Yu et al. 2025, <https://arxiv.org/abs/2503.14476>, §3.4 (soft overlong punishment).

use tch::{Kind, Tensor};

use super::check;
use super::error::Result;

/// Per-token rewards `[b, t]` f32 from outcome scores `[b]` f32: each score on the last valid
/// position of its row (the token that ended the response), 0 elsewhere. A row with no valid
/// position carries nothing. Subtract a per-token KL penalty from the result to put the KL in
/// the reward (veRL's `apply_kl_penalty`, OpenRLHF's `compute_reward`).
pub fn token_rewards(scores: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, t) = check::dims2("mask", mask)?;
    check::expect("scores", scores, &[b], "one score per row of the mask")?;
    let valid = check::valid(mask);
    let device = mask.device();
    check::all_finite("scores", scores)?;
    let pos = Tensor::arange(t, (Kind::Int64, device)).expand([b, t], false);
    let last = pos.masked_fill(&valid.logical_not(), -1).amax([1], true);
    let at_last = pos.eq_tensor(&last);
    let spread = scores
        .detach()
        .to_kind(Kind::Float)
        .to_device(device)
        .unsqueeze(1)
        .expand([b, t], false);
    Ok(spread.where_scalarother(&at_last, 0.0))
}

/// DAPO's soft overlong punishment, one reward term per sample, `[b]` f32 (≤ 0), added to the
/// score of a response of `len` tokens:
///
/// ```text
///  0                                                    len ≤ max_len - cache_len
///  factor · ((max_len - cache_len) - len) / cache_len   max_len - cache_len < len ≤ max_len
/// -factor                                               len > max_len
/// ```
///
/// `lengths` `[b]` (any numeric kind; e.g. `mask.sum(-1)`), `max_len` the response length
/// limit `L_max`, `cache_len` the punishment interval `L_cache` (DAPO: 20480 and 4096), with
/// `0 < cache_len ≤ max_len`; `factor` ≥ 0 the largest reduction (DAPO: 1; veRL's
/// `overlong_penalty_factor`).
pub fn overlong_penalty(
    lengths: &Tensor,
    max_len: i64,
    cache_len: i64,
    factor: f64,
) -> Result<Tensor> {
    check::dims1("lengths", lengths)?;
    check::param("max_len", max_len as f64, max_len > 0, "must be > 0")?;
    check::param(
        "cache_len",
        cache_len as f64,
        cache_len > 0 && cache_len <= max_len,
        "must be in (0, max_len]",
    )?;
    check::param(
        "factor",
        factor,
        factor >= 0.0 && factor.is_finite(),
        "must be a finite number >= 0",
    )?;
    let expected = (max_len - cache_len) as f64;
    let len = lengths.to_kind(Kind::Float);
    // The middle line of the formula, clamped: it is ≥ 0 exactly when len ≤ L_max - L_cache and
    // ≤ -1 exactly when len ≥ L_max.
    Ok(((expected - len) / cache_len as f64).clamp(-1.0, 0.0) * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{assert_close, t1, t2};

    #[test]
    fn scores_land_on_the_last_valid_token() {
        // Right padding, left prompt, a multi-turn gap, and an all-padding row.
        let mask = t2(&[
            &[1.0, 1.0, 0.0, 0.0],
            &[0.0, 1.0, 1.0, 1.0],
            &[1.0, 0.0, 1.0, 0.0],
            &[0.0; 4],
        ]);
        let rewards = token_rewards(&t1(&[1.0, 2.0, 3.0, 4.0]), &mask).unwrap();
        #[rustfmt::skip]
        assert_close(&rewards, &[
            0.0, 1.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 2.0,
            0.0, 0.0, 3.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ]);
    }

    #[test]
    fn nan_score_or_wrong_count_is_an_error() {
        let mask = t2(&[&[1.0, 1.0], &[1.0, 0.0]]);
        let err = token_rewards(&t1(&[1.0, f32::NAN]), &mask).unwrap_err();
        assert!(
            matches!(err, MathError::NonFinite { name: "scores" }),
            "{err}"
        );
        let err = token_rewards(&t1(&[1.0]), &mask).unwrap_err();
        assert!(
            matches!(err, MathError::Shape { name: "scores", .. }),
            "{err}"
        );
    }

    #[test]
    fn overlong_penalty_by_hand() {
        // L_max = 20, L_cache = 4: no penalty up to 16, then (16 - len) / 4, -1 from 20 on.
        //   10 → 0;  16 → 0;  17 → -0.25;  18 → -0.5;  20 → -1;  25 → -1.
        let lengths = Tensor::from_slice(&[10i64, 16, 17, 18, 20, 25]);
        let penalty = overlong_penalty(&lengths, 20, 4, 1.0).unwrap();
        assert_close(&penalty, &[0.0, 0.0, -0.25, -0.5, -1.0, -1.0]);
    }

    #[test]
    fn overlong_penalty_scales_with_its_factor_by_hand() {
        // L_max = 8, L_cache = 4, factor 0.5: no penalty up to 4, then 0.5 · (4 - len) / 4.
        //   4 → 0;  5 → -0.125;  6 → -0.25;  8 → -0.5;  9 → -0.5.  Factor 0 turns it off.
        let lengths = Tensor::from_slice(&[4i64, 5, 6, 8, 9]);
        let penalty = overlong_penalty(&lengths, 8, 4, 0.5).unwrap();
        assert_close(&penalty, &[0.0, -0.125, -0.25, -0.5, -0.5]);
        let off = overlong_penalty(&lengths, 8, 4, 0.0).unwrap();
        assert_close(&off, &[0.0; 5]);
    }

    #[test]
    fn overlong_penalty_rejects_bad_intervals() {
        let lengths = Tensor::from_slice(&[1i64]);
        let err = overlong_penalty(&lengths, 20, 0, 1.0).unwrap_err();
        assert!(
            matches!(
                err,
                MathError::Param {
                    name: "cache_len",
                    ..
                }
            ),
            "{err}"
        );
        assert!(overlong_penalty(&lengths, 20, 21, 1.0).is_err());
        assert!(overlong_penalty(&lengths, 0, 0, 1.0).is_err());
        assert!(overlong_penalty(&lengths, 20, 4, -1.0).is_err());
        assert!(overlong_penalty(&lengths, 20, 4, f64::NAN).is_err());
    }
}
