//! Batch metrics logged each step beside the algorithm's, named as veRL names them:
//! `response_length/{mean,max,min,clip_ratio}` (clip ratio: the share of responses that hit
//! `max_new_tokens` and were cut off).

use rl_algorithms::Experience;
use tch::Kind;

/// Response-length metrics of `batch`, whose responses were capped at `max_new_tokens`.
pub fn response_lengths(batch: &Experience, max_new_tokens: i64) -> Vec<(String, f64)> {
    let lengths = batch.mask.sum_dim_intlist(1, false, Kind::Double);
    let clipped = lengths.ge(max_new_tokens as f64).to_kind(Kind::Double);
    vec![
        (
            "response_length/mean".into(),
            lengths.mean(Kind::Double).double_value(&[]),
        ),
        (
            "response_length/max".into(),
            lengths.max().double_value(&[]),
        ),
        (
            "response_length/min".into(),
            lengths.min().double_value(&[]),
        ),
        (
            "response_length/clip_ratio".into(),
            clipped.mean(Kind::Double).double_value(&[]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experience::{Rollout, build};

    #[test]
    fn lengths_and_the_clipped_share() {
        let lp = [-1.0f32; 4];
        let r = |n: usize| Rollout {
            prompt: &[1, 2],
            response: &[3, 3, 3, 3][..n],
            logprobs: &lp[..n],
            reward: 0.0,
            group: 0,
            loss_mask: None,
        };
        let batch = build(&[r(1), r(4), r(4), r(3)], 0, tch::Device::Cpu).unwrap();
        let m: std::collections::BTreeMap<String, f64> =
            response_lengths(&batch, 4).into_iter().collect();
        assert_eq!(m["response_length/mean"], 3.0);
        assert_eq!(m["response_length/max"], 4.0);
        assert_eq!(m["response_length/min"], 1.0);
        assert_eq!(m["response_length/clip_ratio"], 0.5);
    }
}
