//! Per-token log-probabilities and entropies of a padded batch — the quantity every policy-gradient
//! loss, KL penalty and reference model needs — computed in chunks of tokens so that the full
//! `[batch, seq, vocab]` f32 log-softmax never exists at once.
//!
//! Scores are taken under the sampling temperature: `log_softmax(logits / T)`, the distribution
//! the rollout sampler draws from and whose log-probs it reports (`rl_rollout::sampler`), so the
//! learner's ratio to the rollout log-probs starts at 1 and a reference model is compared on the
//! same footing. `T ≤ 0` (greedy sampling) scores at `T = 1`, as the sampler does for greedy rows.

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
    /// `[b, t-1]` f32 entropy of the tempered next-token distribution at each position; 0 where
    /// masked.
    pub entropy: Option<Tensor>,
    /// `[b, t-1]` bool: both the context token `i` and the target `i+1` are real tokens.
    pub mask: Tensor,
}

/// Runs `model` over `input_ids` `[b, t]` (i64) with `attention_mask` `[b, t]` (1 = token) and
/// scores every next token under `log_softmax(logits / temperature)` (`temperature ≤ 0` means
/// 1; see the module docs). Differentiable: use under `no_grad` for inference.
pub fn token_logprobs(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    temperature: f64,
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
        temperature,
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

/// `logits` `[.., vocab]` → f32 `log_softmax(logits / temperature)`, `temperature ≤ 0` or 1
/// leaving the logits undivided. Divides exactly as the rollout sampler does — f32 logits by an
/// f32 temperature held in a tensor on their device — so that identical logits give
/// bit-identical log-probs (CUDA turns division by a host scalar into multiplication by its
/// reciprocal, which rounds differently).
fn tempered_log_softmax(logits: &Tensor, temperature: f64) -> Tensor {
    if temperature <= 0.0 || temperature == 1.0 {
        return logits.log_softmax(-1, Kind::Float);
    }
    let t = Tensor::from_slice(&[temperature as f32]).to_device(logits.device());
    (logits.to_kind(Kind::Float) / t).log_softmax(-1, Kind::Float)
}

/// One chunk: `context` `[c, h]`, `targets` `[c]`, `weight` `[vocab, h]` → (`[c]` log-probs,
/// `[c]` entropies), through a `[c, vocab]` f32 log-softmax at `temperature`.
fn chunk_stats(
    context: &Tensor,
    targets: &Tensor,
    weight: &Tensor,
    temperature: f64,
    with_entropy: bool,
) -> (Tensor, Option<Tensor>) {
    let logp = tempered_log_softmax(&context.matmul(&weight.tr()), temperature); // [c, vocab]
    let logprobs = logp
        .gather(-1, &targets.unsqueeze(-1), false)
        .squeeze_dim(-1);
    let entropy =
        with_entropy.then(|| -(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float));
    (logprobs, entropy)
}

/// `context` `[n, h]`, `targets` `[n]`, `weight` `[vocab, h]` → (`[n]` log-probs, `[n]` entropies).
fn chunked(
    context: &Tensor,
    targets: &Tensor,
    weight: &Tensor,
    temperature: f64,
    with_entropy: bool,
    chunk: i64,
) -> (Tensor, Option<Tensor>) {
    let n = context.size()[0];
    let mut logprobs = Vec::new();
    let mut entropies = Vec::new();
    for start in (0..n).step_by(chunk as usize) {
        let len = chunk.min(n - start);
        let (lp, ent) = chunk_stats(
            &context.narrow(0, start, len),
            &targets.narrow(0, start, len),
            weight,
            temperature,
            with_entropy,
        );
        logprobs.push(lp);
        entropies.extend(ent);
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

/// The training pass with a memory-lean backward: scores the batch like [`token_logprobs`] (at
/// `temperature`, the recomputed logits in the backward too), hands
/// the stats to `loss` (their `logprobs`/`entropy` are leaves to differentiate), and
/// backpropagates the returned scalar into the model's variables. The output projection's backward
/// runs chunk by chunk, recomputing each chunk's logits, so at most one `[chunk, vocab]` block
/// exists at a time — in the backward pass too, where plain autograd would keep every chunk's f32
/// log-softmax alive. Gradients accumulate into the variables; returns the loss value (detached)
/// and the stats.
pub fn backward_token_loss(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    temperature: f64,
    with_entropy: bool,
    chunk_tokens: i64,
    loss: impl FnOnce(&TokenStats) -> Tensor,
) -> (Tensor, TokenStats) {
    let chunk = chunk_tokens.max(1);
    let (b_sz, seq_len) = (input_ids.size()[0], input_ids.size()[1]);
    let hidden = model.hidden_states(input_ids, attention_mask); // [b, t, h], through the backbone
    let h = hidden.size()[2];
    let context = hidden.narrow(1, 0, seq_len - 1).reshape([-1, h]); // [n, h]
    let leaf = context.detach().set_requires_grad(true);
    let targets = input_ids.narrow(1, 1, seq_len - 1).reshape([-1]); // [n]
    let weight = model.lm_head();
    let (lp, ent) =
        tch::no_grad(|| chunked(&leaf, &targets, weight, temperature, with_entropy, chunk));

    let mask = attention_mask.to_kind(Kind::Bool);
    let mask = mask
        .narrow(1, 0, seq_len - 1)
        .logical_and(&mask.narrow(1, 1, seq_len - 1)); // [b, t-1]
    let pad = mask.logical_not();
    let as_leaf = |t: Tensor| {
        t.reshape([b_sz, seq_len - 1])
            .masked_fill(&pad, 0.0)
            .set_requires_grad(true)
    };
    let stats = TokenStats {
        logprobs: as_leaf(lp),
        entropy: ent.map(as_leaf),
        mask: mask.shallow_clone(),
    };
    let value = loss(&stats);
    value.backward();
    // d loss / d stats, zero at pads (as masked_fill's gradient would be), flattened to [n].
    let upstream = |t: &Tensor| {
        let g = t.grad();
        g.defined().then(|| g.masked_fill(&pad, 0.0).reshape([-1]))
    };
    let g_logprobs = upstream(&stats.logprobs);
    let g_entropy = stats.entropy.as_ref().and_then(upstream);

    let n = leaf.size()[0];
    if g_logprobs.is_some() || g_entropy.is_some() {
        for start in (0..n).step_by(chunk as usize) {
            let len = chunk.min(n - start);
            let needs_entropy = g_entropy.is_some();
            let (lp, ent) = chunk_stats(
                &leaf.narrow(0, start, len),
                &targets.narrow(0, start, len),
                weight,
                temperature,
                needs_entropy,
            );
            // Σ upstream · stat over the chunk: its gradient is the chunk's share of the loss's.
            let mut terms = Vec::with_capacity(2);
            if let Some(g) = &g_logprobs {
                terms.push((lp * g.narrow(0, start, len)).sum(Kind::Float));
            }
            if let (Some(g), Some(ent)) = (&g_entropy, ent) {
                terms.push((ent * g.narrow(0, start, len)).sum(Kind::Float));
            }
            Tensor::stack(&terms, 0).sum(Kind::Float).backward(); // into `leaf` and the head
        }
        let g_context = leaf.grad();
        if g_context.defined() {
            (context * g_context).sum(Kind::Float).backward(); // once through the backbone
        }
    }
    let detach = |t: &Tensor| t.detach();
    let stats = TokenStats {
        logprobs: detach(&stats.logprobs),
        entropy: stats.entropy.as_ref().map(detach),
        mask: stats.mask,
    };
    (value.detach(), stats)
}
