//! Groups of samples answering the same prompt, the unit the group-relative estimators (GRPO,
//! RLOO, REINFORCE++-baseline) and DAPO's dynamic sampling compare within.
//!
//! A batch names its groups with a `[b]` i64 tensor of group ids, one per sample: samples with
//! the same id answer the same prompt. Groups need not be contiguous nor of equal size (DAPO's
//! filter and failed rollouts leave uneven ones). [`contiguous_group_ids`] makes the ids of the
//! common layout, `k` samples of each prompt side by side.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::check;
use super::error::Result;

/// `[b]` i64 ids `[0, …, 0, 1, …, 1, …]`: `b / k` groups of `k` consecutive samples, on
/// `device`. `k` must divide `b`.
pub fn contiguous_group_ids(b: i64, k: i64, device: Device) -> Result<Tensor> {
    check::param("group size k", k as f64, k >= 1, "must be at least 1")?;
    check::param(
        "batch size b",
        b as f64,
        b >= 0 && b % k == 0,
        "must be a multiple of the group size k",
    )?;
    Ok(Tensor::arange(b, (Kind::Int64, device)).floor_divide_scalar(k))
}

/// Group membership on the host: which group each sample is in, and each group's members.
pub(crate) struct Groups {
    /// Group ids in order of first appearance.
    pub ids: Vec<i64>,
    /// `members[g]`: indices of the samples of group `ids[g]`, ascending.
    pub members: Vec<Vec<usize>>,
}

impl Groups {
    /// Reads `group_ids` (`[b]`, any integer kind) for a batch of `b` samples.
    pub fn new(group_ids: &Tensor, b: i64) -> Result<Self> {
        check::expect("group_ids", group_ids, &[b], "one id per sample")?;
        let flat = group_ids.to_kind(Kind::Int64).to_device(Device::Cpu);
        let mut index = HashMap::new();
        let mut groups = Self {
            ids: Vec::new(),
            members: Vec::new(),
        };
        for (i, id) in Vec::<i64>::try_from(&flat)?.into_iter().enumerate() {
            let g = *index.entry(id).or_insert_with(|| {
                groups.ids.push(id);
                groups.members.push(Vec::new());
                groups.ids.len() - 1
            });
            groups.members[g].push(i);
        }
        Ok(groups)
    }

    /// Each group's members with their scores.
    pub fn iter<'a>(
        &'a self,
        scores: &'a [f32],
    ) -> impl Iterator<Item = (i64, Vec<f32>, &'a [usize])> {
        self.ids.iter().zip(&self.members).map(|(&id, members)| {
            let group_scores = members.iter().map(|&i| scores[i]).collect();
            (id, group_scores, members.as_slice())
        })
    }
}

/// Mean of `xs` (non-empty), accumulated in f64.
pub(crate) fn mean(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation of `xs` (Bessel-corrected, as `torch.std`); 0 for one element.
pub(crate) fn std(xs: &[f32]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|&x| (f64::from(x) - m).powi(2)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testutil::ids;

    #[test]
    fn contiguous_ids() {
        let got = contiguous_group_ids(6, 3, Device::Cpu).unwrap();
        assert_eq!(Vec::<i64>::try_from(&got).unwrap(), [0, 0, 0, 1, 1, 1]);
        assert!(contiguous_group_ids(5, 2, Device::Cpu).is_err());
        assert!(contiguous_group_ids(4, 0, Device::Cpu).is_err());
    }

    #[test]
    fn groups_in_order_of_first_appearance() {
        let groups = Groups::new(&ids(&[7, 3, 7, 9, 3]), 5).unwrap();
        assert_eq!(groups.ids, [7, 3, 9]);
        assert_eq!(groups.members, [vec![0, 2], vec![1, 4], vec![3]]);
    }

    #[test]
    fn mean_and_sample_std() {
        // Mean of 1, 2, 3 is 2; deviations ±1, 0 → std = sqrt(2 / 2) = 1. One element → 0.
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(std(&[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(std(&[5.0]), 0.0);
    }
}
