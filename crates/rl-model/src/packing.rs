//! Shared-prefix packing for the training pass (Prefix Grouper, arXiv 2506.05433).
//!
//! The sequences of a GRPO group share their prompt. Packing puts each group in one row: the
//! prompt once, then every response after it. The attention mask lets each response see the
//! prompt and its own earlier tokens, nothing else, and positions restart after the prompt for
//! every response. Each token then has the same keys, values and positions as in its own padded
//! row, so outputs and gradients equal the per-sequence pass, while the prompt goes through the
//! backbone once per group instead of once per sequence.
//!
//! [`plan`] is the pure part (host vectors in, host vectors out); [`Packed::new`] puts a plan on
//! a device as the tensors [`crate::CausalLm::hidden_states_masked`] takes.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

/// One sequence to pack: its real tokens and how many of them form the shared prefix.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    /// Token ids, without padding.
    pub tokens: &'a [i64],
    /// Leading tokens shared with the other sequences of its group (at most `tokens.len()`).
    pub prefix: usize,
}

/// Where each sequence's tokens sit in the packed rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Packed rows of token ids: a prefix, then the suffixes of the sequences that share it.
    pub rows: Vec<Vec<i64>>,
    /// The position of each packed token within its own sequence.
    pub positions: Vec<Vec<i64>>,
    /// The segment of each packed token: 0 the shared prefix, `k ≥ 1` the k-th suffix.
    pub segments: Vec<Vec<i64>>,
    /// For each input sequence: its packed row and the packed column of each of its tokens.
    pub placement: Vec<(usize, Vec<usize>)>,
}

impl Plan {
    /// Length of the longest packed row.
    pub fn width(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Whether packing saves anything: some row holds more than one sequence.
    pub fn shares(&self) -> bool {
        self.rows.len() < self.placement.len()
    }
}

/// Groups `sequences` by identical prefix tokens (in order of first appearance) and lays each
/// group out as one row: prefix, then each member's suffix in input order.
pub fn plan(sequences: &[Sequence<'_>]) -> Plan {
    let mut out = Plan {
        rows: Vec::new(),
        positions: Vec::new(),
        segments: Vec::new(),
        placement: Vec::with_capacity(sequences.len()),
    };
    let mut row_of: HashMap<&[i64], usize> = HashMap::new();
    let mut suffixes: Vec<i64> = Vec::new();
    for seq in sequences {
        let p = seq.prefix.min(seq.tokens.len());
        let (prefix, suffix) = seq.tokens.split_at(p);
        let row = *row_of.entry(prefix).or_insert_with(|| {
            out.rows.push(prefix.to_vec());
            out.positions.push((0..p as i64).collect());
            out.segments.push(vec![0; p]);
            suffixes.push(0);
            out.rows.len() - 1
        });
        suffixes[row] += 1;
        let start = out.rows[row].len();
        out.rows[row].extend_from_slice(suffix);
        out.positions[row].extend((p..seq.tokens.len()).map(|i| i as i64));
        out.segments[row].extend(std::iter::repeat_n(suffixes[row], suffix.len()));
        let columns = (0..p).chain(start..start + suffix.len()).collect();
        out.placement.push((row, columns));
    }
    out
}

/// A [`Plan`] on a device, right-padded to its widest row.
#[derive(Debug)]
pub struct Packed {
    /// `[g, w]` i64 token ids (0 at pads).
    pub input_ids: Tensor,
    /// `[g, w]` i64 positions (0 at pads).
    pub positions: Tensor,
    /// `[g, 1, w, w]` bool: query `i` may attend key `j` when `j ≤ i`, `j` is not a pad, and
    /// `j` is in the prefix or in `i`'s own segment. Every query sees itself, so the outputs
    /// at pads (never read) stay finite.
    pub mask: Tensor,
    /// Packed width `w`.
    pub width: i64,
}

impl Packed {
    /// The tensors of `plan` on `device`.
    pub fn new(plan: &Plan, device: Device) -> Self {
        let w = plan.width().max(1);
        let pad = |rows: &[Vec<i64>], fill: i64| -> Tensor {
            let flat: Vec<i64> = rows
                .iter()
                .flat_map(|r| {
                    r.iter()
                        .copied()
                        .chain(std::iter::repeat_n(fill, w - r.len()))
                })
                .collect();
            Tensor::from_slice(&flat)
                .view([rows.len() as i64, w as i64])
                .to_device(device)
        };
        let segments = pad(&plan.segments, -1); // -1 marks pads
        let (query, key) = (segments.unsqueeze(2), segments.unsqueeze(1)); // [g, w, 1], [g, 1, w]
        let w = w as i64;
        let causal = Tensor::ones([w, w], (Kind::Bool, device)).tril(0);
        let visible = key.eq(0).logical_or(&query.eq_tensor(&key));
        let mask = visible
            .logical_and(&key.ge(0))
            .logical_and(&causal.unsqueeze(0))
            .logical_or(&Tensor::eye(w, (Kind::Bool, device)).unsqueeze(0))
            .unsqueeze(1);
        Self {
            input_ids: pad(&plan.rows, 0),
            positions: pad(&plan.positions, 0),
            mask,
            width: w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_packed_as_its_prefix_once_then_each_suffix() {
        let a = [1, 2, 3, 10, 11];
        let b = [1, 2, 3, 20];
        let c = [7, 8, 30, 31];
        let d = [1, 2, 3];
        let plan = plan(&[
            Sequence {
                tokens: &a,
                prefix: 3,
            },
            Sequence {
                tokens: &c,
                prefix: 2,
            },
            Sequence {
                tokens: &b,
                prefix: 3,
            },
            Sequence {
                tokens: &d,
                prefix: 3,
            },
        ]);
        assert_eq!(plan.rows, [vec![1, 2, 3, 10, 11, 20], vec![7, 8, 30, 31]]);
        assert_eq!(plan.positions, [vec![0, 1, 2, 3, 4, 3], vec![0, 1, 2, 3]]);
        assert_eq!(plan.segments, [vec![0, 0, 0, 1, 1, 2], vec![0, 0, 1, 1]]);
        assert_eq!(
            plan.placement,
            [
                (0, vec![0, 1, 2, 3, 4]),
                (1, vec![0, 1, 2, 3]),
                (0, vec![0, 1, 2, 5]),
                (0, vec![0, 1, 2]),
            ]
        );
        assert!(plan.shares());
        assert_eq!(plan.width(), 6);
    }

    #[test]
    fn the_mask_shows_each_suffix_the_prefix_and_itself_only() {
        let (a, b) = ([1, 2, 10, 11], [1, 2, 20]);
        let plan = plan(&[
            Sequence {
                tokens: &a,
                prefix: 2,
            },
            Sequence {
                tokens: &b,
                prefix: 2,
            },
        ]);
        let packed = Packed::new(&plan, Device::Cpu);
        let mask = Vec::<Vec<i64>>::try_from(
            packed
                .mask
                .squeeze_dim(1)
                .squeeze_dim(0)
                .to_kind(Kind::Int64),
        )
        .unwrap();
        // Packed: [1, 2 | 10, 11 | 20]; the suffix 20 sees the prefix and itself, not 10 or 11.
        assert_eq!(
            mask,
            [
                vec![1, 0, 0, 0, 0],
                vec![1, 1, 0, 0, 0],
                vec![1, 1, 1, 0, 0],
                vec![1, 1, 1, 1, 0],
                vec![1, 1, 0, 0, 1],
            ]
        );
    }

    #[test]
    fn no_real_token_of_a_shorter_row_sees_its_pads() {
        let (a, b, c) = ([1, 5, 6], [1, 7], [2, 9]);
        let plan = plan(&[
            Sequence {
                tokens: &a,
                prefix: 1,
            },
            Sequence {
                tokens: &b,
                prefix: 1,
            },
            Sequence {
                tokens: &c,
                prefix: 1,
            },
        ]);
        let packed = Packed::new(&plan, Device::Cpu);
        assert_eq!(packed.width, 4);
        let row = Vec::<Vec<i64>>::try_from(packed.mask.get(1).squeeze_dim(0).to_kind(Kind::Int64))
            .unwrap();
        assert_eq!(
            row,
            [
                vec![1, 0, 0, 0],
                vec![1, 1, 0, 0],
                vec![1, 0, 1, 0], // a pad's own output is never read
                vec![1, 0, 0, 1],
            ]
        );
    }
}
