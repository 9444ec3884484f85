//! DAPO's dynamic sampling: drop the groups whose samples all got the same reward. Under a
//! group-relative advantage they have zero advantage, hence no gradient, yet they dilute the
//! batch; DAPO keeps sampling until the batch is full of groups with some contrast.
//!
//! DAPO: Yu et al. 2025, <https://arxiv.org/abs/2503.14476>, §3.2 (dynamic sampling).

use tch::{Kind, Tensor};

use super::check;
use super::error::Result;
use super::groups::Groups;

/// Which samples to keep, `[b]` bool: those whose group holds at least two different scores.
/// All-equal groups (every answer right, or every answer wrong) are dropped, and so are groups
/// of one sample (no contrast either). `scores` `[b]` f32 (NaN is an error), `group_ids` `[b]`
/// i64 (see [`super::groups`]). Scores are compared exactly, as rule rewards are.
pub fn dynamic_sampling_keep(scores: &Tensor, group_ids: &Tensor) -> Result<Tensor> {
    let b = check::dims1("scores", scores)?;
    let groups = Groups::new(group_ids, b)?;
    let s = check::host(scores)?;
    check::host_finite("scores", &s, &vec![true; s.len()])?;
    let mut keep = vec![false; s.len()];
    for (_, group, members) in groups.iter(&s) {
        if group.iter().any(|&r| r != group[0]) {
            members.iter().for_each(|&i| keep[i] = true);
        }
    }
    Ok(Tensor::from_slice(&keep)
        .to_kind(Kind::Bool)
        .to_device(scores.device()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{ids, t1, values};

    #[test]
    fn keeps_only_groups_with_contrast() {
        // Groups (interleaved): 0 = {1, 0} mixed → keep; 1 = {1, 1} all right → drop;
        // 2 = {0, 0} all wrong → drop; 3 = {0.5, 0.7} → keep; 4 = {2} alone → drop.
        let scores = t1(&[1.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.7, 2.0]);
        let group_ids = ids(&[0, 1, 0, 3, 2, 1, 2, 3, 4]);
        let keep = dynamic_sampling_keep(&scores, &group_ids).unwrap();
        assert_eq!(keep.kind(), Kind::Bool);
        assert_eq!(values(&keep), [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn nan_score_is_an_error() {
        let err = dynamic_sampling_keep(&t1(&[1.0, f32::NAN]), &ids(&[0, 0])).unwrap_err();
        assert!(
            matches!(err, MathError::NonFinite { name: "scores" }),
            "{err}"
        );
    }
}
