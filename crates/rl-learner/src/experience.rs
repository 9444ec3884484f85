//! Turning sampled sequences into the token-aligned [`Experience`] tensors the algorithms and
//! the update loop use: prompt and response concatenated and right-padded, the response mask,
//! and the rollout log-probs placed at the positions that predict each response token.

use rl_algorithms::Experience;
use tch::{Device, Tensor};

use crate::LearnerError;

/// One sampled sequence with its reward.
#[derive(Debug, Clone, Copy)]
pub struct Rollout<'a> {
    /// Prompt token ids.
    pub prompt: &'a [u32],
    /// Generated token ids.
    pub response: &'a [u32],
    /// Log-prob of each generated token under the sampling policy.
    pub logprobs: &'a [f32],
    /// Outcome reward.
    pub reward: f64,
    /// Group id (sequences of one prompt share it).
    pub group: i64,
    /// Which response tokens the loss trains on (`response.len()` entries); None = all.
    /// Multi-turn episodes put the environment's turns in the response, untrained.
    pub loss_mask: Option<&'a [bool]>,
}

/// The [`Experience`] of `rollouts` on `device`, padded with `pad_id` (`ref_logprobs` and
/// `values` are left for the reference model and critic to fill).
pub fn build(
    rollouts: &[Rollout<'_>],
    pad_id: u32,
    device: Device,
) -> Result<Experience, LearnerError> {
    if rollouts.is_empty() {
        return Err(LearnerError::Batch("the rollout batch is empty".into()));
    }
    for (i, r) in rollouts.iter().enumerate() {
        if r.prompt.is_empty() {
            return Err(LearnerError::Batch(format!(
                "sequence {i} has an empty prompt"
            )));
        }
        if r.logprobs.len() != r.response.len() {
            return Err(LearnerError::Batch(format!(
                "sequence {i}: {} log-probs for {} response tokens",
                r.logprobs.len(),
                r.response.len()
            )));
        }
        if r.loss_mask.is_some_and(|m| m.len() != r.response.len()) {
            return Err(LearnerError::Batch(format!(
                "sequence {i}: a loss mask of {} entries for {} response tokens",
                r.loss_mask.map_or(0, <[bool]>::len),
                r.response.len()
            )));
        }
        if !r.reward.is_finite() {
            return Err(LearnerError::Batch(format!(
                "sequence {i} has reward {}: rewards must be finite (check the reward function)",
                r.reward
            )));
        }
    }
    let b = rollouts.len();
    let t = rollouts
        .iter()
        .map(|r| r.prompt.len() + r.response.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let n = t - 1;
    let mut ids = vec![i64::from(pad_id); b * t];
    let mut attention = vec![0i64; b * t];
    let mut mask = vec![0f32; b * n];
    let mut old = vec![0f32; b * n];
    for (row, r) in rollouts.iter().enumerate() {
        for (j, &id) in r.prompt.iter().chain(r.response).enumerate() {
            ids[row * t + j] = i64::from(id);
            attention[row * t + j] = 1;
        }
        for (j, &lp) in r.logprobs.iter().enumerate() {
            let pos = r.prompt.len() - 1 + j; // predicts response token j
            let trained = r.loss_mask.is_none_or(|m| m[j]);
            mask[row * n + pos] = if trained { 1.0 } else { 0.0 };
            old[row * n + pos] = lp;
        }
    }
    let (b, t, n) = (b as i64, t as i64, n as i64);
    let rewards: Vec<f32> = rollouts.iter().map(|r| r.reward as f32).collect();
    let groups: Vec<i64> = rollouts.iter().map(|r| r.group).collect();
    Ok(Experience {
        input_ids: Tensor::from_slice(&ids).view([b, t]).to_device(device),
        attention_mask: Tensor::from_slice(&attention)
            .view([b, t])
            .to_device(device),
        mask: Tensor::from_slice(&mask).view([b, n]).to_device(device),
        old_logprobs: Tensor::from_slice(&old).view([b, n]).to_device(device),
        ref_logprobs: None,
        values: None,
        rewards: Tensor::from_slice(&rewards).to_device(device),
        groups: Tensor::from_slice(&groups).to_device(device),
        is_weights: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_line_up_with_the_positions_that_predict_them() {
        let a = Rollout {
            prompt: &[5, 6],
            response: &[7, 8, 9],
            logprobs: &[-0.1, -0.2, -0.3],
            reward: 1.0,
            group: 0,
            loss_mask: None,
        };
        let b = Rollout {
            prompt: &[5, 6, 7],
            response: &[4],
            logprobs: &[-0.5],
            reward: 0.0,
            group: 0,
            loss_mask: None,
        };
        let e = build(&[a, b], 0, Device::Cpu).unwrap();
        assert_eq!(e.input_ids.size(), [2, 5]);
        let mask = Vec::<f32>::try_from(e.mask.view([-1])).unwrap();
        // Row a: positions 1, 2, 3 predict 7, 8, 9. Row b: position 2 predicts 4.
        assert_eq!(mask, [0., 1., 1., 1., 0., 0., 1., 0.]);
        assert_eq!(e.old_logprobs.double_value(&[0, 3]), -0.30000001192092896);
        assert_eq!(e.old_logprobs.double_value(&[1, 2]), -0.5);
        assert_eq!(e.attention_mask.int64_value(&[1, 4]), 0);
    }

    #[test]
    fn bad_rollouts_are_named() {
        let ok = Rollout {
            prompt: &[1],
            response: &[2],
            logprobs: &[-1.0],
            reward: 1.0,
            group: 0,
            loss_mask: None,
        };
        let nan = Rollout {
            reward: f64::NAN,
            ..ok
        };
        let short = Rollout {
            logprobs: &[],
            ..ok
        };
        let err = |r: Rollout<'_>| build(&[ok, r], 0, Device::Cpu).unwrap_err().to_string();
        assert!(err(nan).contains("sequence 1 has reward NaN"));
        assert!(err(short).contains("sequence 1: 0 log-probs for 1 response tokens"));
    }
}
