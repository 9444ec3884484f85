//! Per-token log-probabilities and entropies of a padded batch — the quantity every policy-gradient
//! loss, KL penalty and reference model needs — computed in chunks of tokens so that the full
//! `[batch, seq, vocab]` f32 log-softmax never exists at once.

use tch::{Kind, Tensor};

use crate::CausalLm;

/// Tokens per chunk of the output projection: `chunk × vocab × 4` bytes of f32 logits at a time
/// (4096 × 49152 × 4 B = 768 MiB for SmolLM2).
pub const DEFAULT_CHUNK_TOKENS: i64 = 4096;

/// Log-probs (and optionally entropies) of each next token.
#[derive(Debug)]
pub struct TokenStats {
    /// `[b, t-1]` f32: `log p(ids[:, i+1] | ids[:, ..=i])`; 0 where `mask` is false.
    pub logprobs: Tensor,
    /// `[b, t-1]` f32 entropy of the next-token distribution at each position; 0 where masked.
    pub entropy: Option<Tensor>,
    /// `[b, t-1]` bool: both the context token `i` and the target `i+1` are real tokens.
    pub mask: Tensor,
}

/// Runs `model` over `input_ids` `[b, t]` (i64) with `attention_mask` `[b, t]` (1 = token) and
/// scores every next token. Differentiable: use under `no_grad` for inference.
pub fn token_logprobs(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    with_entropy: bool,
    chunk_tokens: i64,
) -> TokenStats {
    let (b_sz, seq_len) = (input_ids.size()[0], input_ids.size()[1]);
    let hidden = model.hidden_states(input_ids, attention_mask); // [b, t, h]
    let h = hidden.size()[2];
    let context = hidden.narrow(1, 0, seq_len - 1).reshape([-1, h]); // [n, h]
    let targets = input_ids.narrow(1, 1, seq_len - 1).reshape([-1]); // [n]
    let (logprobs, entropy) = chunked(
        &context,
        &targets,
        model.lm_head(),
        with_entropy,
        chunk_tokens.max(1),
    );
    let mask = attention_mask.to_kind(Kind::Bool);
    let mask = mask
        .narrow(1, 0, seq_len - 1)
        .logical_and(&mask.narrow(1, 1, seq_len - 1));
    let shape = [b_sz, seq_len - 1];
    let fill = |t: Tensor| t.reshape(shape).masked_fill(&mask.logical_not(), 0.0);
    TokenStats {
        logprobs: fill(logprobs),
        entropy: entropy.map(fill),
        mask,
    }
}

/// `context` `[n, h]`, `targets` `[n]`, `weight` `[vocab, h]` → (`[n]` log-probs, `[n]` entropies).
fn chunked(
    context: &Tensor,
    targets: &Tensor,
    weight: &Tensor,
    with_entropy: bool,
    chunk: i64,
) -> (Tensor, Option<Tensor>) {
    let n = context.size()[0];
    let mut logprobs = Vec::new();
    let mut entropies = Vec::new();
    for start in (0..n).step_by(chunk as usize) {
        let len = chunk.min(n - start);
        let logits = context.narrow(0, start, len).matmul(&weight.tr()); // [c, vocab]
        let logp = logits.log_softmax(-1, Kind::Float);
        logprobs.push(
            logp.gather(-1, &targets.narrow(0, start, len).unsqueeze(-1), false)
                .squeeze_dim(-1),
        );
        if with_entropy {
            entropies.push(-(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float));
        }
    }
    let cat = |v: Vec<Tensor>| {
        if v.is_empty() {
            Tensor::zeros([0], (Kind::Float, context.device()))
        } else {
            Tensor::cat(&v, 0)
        }
    };
    (cat(logprobs), with_entropy.then(|| cat(entropies)))
}
