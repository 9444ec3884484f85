//! Scoring a batch without gradient, a few rows at a time: the frozen reference model's
//! log-probs for a KL term, and the policy's own, to compare with what the sampler reported.

use rl_algorithms::Experience;
use rl_model::{CausalLm, logprobs::DEFAULT_CHUNK_TOKENS, token_logprobs};
use tch::{Kind, Tensor};

/// Log-probs `[b, t-1]` f32 of `batch`'s tokens under `model` at the sampling `temperature`
/// (`≤ 0` means 1, as for greedy sampling), without gradient, on the batch's device. They line
/// up with `batch.old_logprobs`: position `i` scores token `i + 1`, and positions outside the
/// response mask are 0. Runs `micro_batch_rows` rows per forward pass (at least 1), each cut to
/// its longest row, so memory is bounded by the micro-batch rather than the batch.
pub fn reference_logprobs(
    model: &dyn CausalLm,
    batch: &Experience,
    temperature: f64,
    micro_batch_rows: usize,
) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    let (b, t) = (batch.input_ids.size()[0], batch.input_ids.size()[1]);
    let out_device = batch.input_ids.device();
    if t < 2 {
        return Tensor::zeros([b, 0], (Kind::Float, out_device));
    }
    let device = model.lm_head().device();
    // Rows are right-padded, so each row's tokens are its first `length` columns.
    let lengths = batch.attention_mask.sum_dim_intlist(1, false, Kind::Int64);
    let rows = micro_batch_rows.max(1) as i64;
    let mut parts = Vec::new();
    for start in (0..b).step_by(rows as usize) {
        let len = rows.min(b - start);
        let width = lengths
            .narrow(0, start, len)
            .max()
            .int64_value(&[])
            .clamp(2, t);
        let take = |x: &Tensor| {
            x.narrow(0, start, len)
                .narrow(1, 0, width)
                .to_device(device)
        };
        let stats = token_logprobs(
            model,
            &take(&batch.input_ids),
            &take(&batch.attention_mask),
            temperature,
            false,
            DEFAULT_CHUNK_TOKENS,
        );
        // Columns past the micro-batch's longest row are padding: 0, like the cut-off rows.
        parts.push(
            stats
                .logprobs
                .to_device(out_device)
                .constant_pad_nd([0, t - width]),
        );
    }
    Tensor::cat(&parts, 0).masked_fill(&batch.mask.eq(0.0), 0.0)
}
