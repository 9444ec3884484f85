//! Log-probs of a batch under a frozen model, without gradient: the reference policy's for the
//! KL term, or the current policy's to measure how far the learner drifts from the sampler.

use rl_core::Experience;
use rl_model::{
    CausalLm,
    logprobs::{DEFAULT_CHUNK_TOKENS, token_logprobs},
};
use tch::Tensor;

/// `[b, t-1]` log-probs of `batch`'s tokens under `model` at sampling `temperature`, computed in
/// micro-batches of `micro_batch_rows` rows, each trimmed to its longest row.
pub fn reference_logprobs(
    model: &dyn CausalLm,
    batch: &Experience,
    temperature: f64,
    micro_batch_rows: usize,
) -> Tensor {
    let _ = temperature;
    let _guard = tch::no_grad_guard();
    let (b, t) = (batch.input_ids.size()[0], batch.input_ids.size()[1]);
    let rows = micro_batch_rows.max(1) as i64;
    let mut parts = Vec::new();
    for start in (0..b).step_by(rows as usize) {
        let len = rows.min(b - start);
        let ids = batch.input_ids.narrow(0, start, len);
        let attention = batch.attention_mask.narrow(0, start, len);
        let longest = attention
            .sum_dim_intlist(1, false, tch::Kind::Int64)
            .max()
            .int64_value(&[])
            .max(2);
        let stats = token_logprobs(
            model,
            &ids.narrow(1, 0, longest),
            &attention.narrow(1, 0, longest),
            false,
            DEFAULT_CHUNK_TOKENS,
        );
        parts.push(stats.logprobs.constant_pad_nd([0, t - longest]));
    }
    Tensor::cat(&parts, 0)
}
