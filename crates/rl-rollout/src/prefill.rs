//! Prefill planning: which queued requests move into free cache slots in one engine step, and
//! how their prompts are packed into one right-padded batch. Pure functions over prompt
//! lengths, token ids and slot numbers (no tensors, no model), so the admission rules are
//! tested on their own.

/// A queued request as planning sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Queued {
    /// Prompt tokens.
    pub prompt_len: usize,
    /// Completions not yet started (at least 1).
    pub samples_left: u32,
}

/// One row of a prefill batch: queued request `job` (an index into the queue) and the free
/// slots its samples start in, one sample a slot; all of them share the row's prefill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Index of the request in the queue.
    pub job: usize,
    /// Slots its new sequences take.
    pub slots: Vec<usize>,
}

/// What one step prefills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Rows in queue order; row `i` is queued request `i` (the plan takes a prefix of the
    /// queue, so every row but the last starts all its samples).
    pub rows: Vec<Row>,
    /// Width `t` of the batch: the longest prompt among the rows.
    pub width: usize,
}

/// Plans one prefill. Queued requests are taken in order while a free slot is left and the
/// padded batch (rows × longest prompt) stays within `max_tokens`; the first request is always
/// taken, however long its prompt. A request's samples take the `free` slots in the order
/// given; one whose samples do not all fit starts what fits and keeps its place at the head of
/// the queue.
pub(crate) fn plan(
    queue: impl IntoIterator<Item = Queued>,
    free: &[usize],
    max_tokens: i64,
) -> Plan {
    let mut plan = Plan::default();
    let mut free = free.iter().copied();
    let mut left = free.len();
    for (job, queued) in queue.into_iter().enumerate() {
        let width = plan.width.max(queued.prompt_len);
        let tokens = (plan.rows.len() as i64 + 1).saturating_mul(width as i64);
        if left == 0 || (!plan.rows.is_empty() && tokens > max_tokens) {
            break;
        }
        let take = left.min(queued.samples_left as usize);
        left -= take;
        plan.width = width;
        plan.rows.push(Row {
            job,
            slots: free.by_ref().take(take).collect(),
        });
    }
    plan
}

/// The contents of a planned batch's tensors, with `b` rows of width `t` and `m` new
/// sequences (the slots the plan fills).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// `[b * t]` token ids, row-major, right-padded with 0.
    pub ids: Vec<i64>,
    /// `[b * t]` 1 for a prompt token, 0 for padding.
    pub mask: Vec<i64>,
    /// `[b]` flat index (`row * t + len - 1`) of each row's last prompt token.
    pub last: Vec<i64>,
    /// `[m]` the batch row each new sequence copies its keys and values from.
    pub src: Vec<i64>,
    /// `[m]` the slot each new sequence goes to.
    pub dst: Vec<i64>,
}

/// Packs `prompts` (`prompts[i]` the prompt of `plan.rows[i]`) as `plan` lays them out.
pub(crate) fn pack(prompts: &[&[u32]], plan: &Plan) -> Packed {
    let t = plan.width;
    let b = plan.rows.len();
    let mut packed = Packed {
        ids: vec![0; b * t],
        mask: vec![0; b * t],
        last: Vec::with_capacity(b),
        src: Vec::new(),
        dst: Vec::new(),
    };
    for (i, (prompt, row)) in prompts.iter().zip(&plan.rows).enumerate() {
        let start = i * t;
        for (j, &id) in prompt.iter().enumerate() {
            packed.ids[start + j] = i64::from(id);
            packed.mask[start + j] = 1;
        }
        packed.last.push((start + prompt.len()) as i64 - 1);
        for &slot in &row.slots {
            packed.src.push(i as i64);
            packed.dst.push(slot as i64);
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(prompt_len: usize, samples_left: u32) -> Queued {
        Queued {
            prompt_len,
            samples_left,
        }
    }

    fn row(job: usize, slots: &[usize]) -> Row {
        Row {
            job,
            slots: slots.to_vec(),
        }
    }

    #[test]
    fn samples_of_a_request_share_one_row_and_take_free_slots_in_order() {
        let got = plan([queued(3, 2), queued(5, 1)], &[0, 2, 7], 100);
        assert_eq!(got.rows, [row(0, &[0, 2]), row(1, &[7])]);
        assert_eq!(got.width, 5);
    }

    #[test]
    fn a_request_that_does_not_fit_starts_what_fits_and_ends_the_plan() {
        let got = plan([queued(3, 4), queued(2, 1)], &[1, 3], 100);
        assert_eq!(got.rows, [row(0, &[1, 3])]);
        assert_eq!(got.width, 3);
    }

    #[test]
    fn the_token_budget_counts_padding_but_always_admits_one_row() {
        // Rows × longest prompt: 1 × 8 = 8, then 2 × 8 = 16 > 12.
        let got = plan([queued(8, 1), queued(2, 1)], &[0, 1], 12);
        assert_eq!(got.rows, [row(0, &[0])]);
        // A lone prompt longer than the budget still goes.
        let got = plan([queued(50, 1)], &[0], 12);
        assert_eq!((got.rows.len(), got.width), (1, 50));
        // 3 × 4 = 12 fits exactly.
        let got = plan([queued(4, 1), queued(1, 1), queued(4, 1)], &[0, 1, 2], 12);
        assert_eq!(got.rows.len(), 3);
    }

    #[test]
    fn no_free_slot_or_empty_queue_plans_nothing() {
        assert_eq!(plan([queued(3, 1)], &[], 100), Plan::default());
        assert_eq!(plan([], &[0, 1], 100), Plan::default());
    }

    #[test]
    fn packing_right_pads_rows_and_maps_each_slot_to_its_row() {
        let p = Plan {
            rows: vec![row(0, &[4, 5]), row(1, &[0])],
            width: 3,
        };
        let packed = pack(&[&[7, 8, 9], &[6]], &p);
        assert_eq!(packed.ids, [7, 8, 9, 6, 0, 0]);
        assert_eq!(packed.mask, [1, 1, 1, 1, 0, 0]);
        assert_eq!(packed.last, [2, 3]);
        assert_eq!(packed.src, [0, 0, 1]);
        assert_eq!(packed.dst, [4, 5, 0]);
    }
}
