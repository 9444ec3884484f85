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

/// How a training pass scores a batch.
#[derive(Debug, Clone, Copy)]
pub struct TrainingPass<'a> {
    /// `[b, t-1]` bool or 0/1: the positions the loss reads (the response tokens). Only they get
    /// logits; the others get log-prob 0. None = every position whose context and target are
    /// real tokens.
    pub scored: Option<&'a Tensor>,
    /// Sampling temperature the log-probs are taken at (see the module docs).
    pub temperature: f64,
    /// Also compute the entropy of each scored position.
    pub with_entropy: bool,
    /// Positions per chunk of the output projection ([`DEFAULT_CHUNK_TOKENS`]).
    pub chunk_tokens: i64,
    /// Run each prefix that rows share (a group's prompt) through the backbone once
    /// ([`crate::packing`]); same outputs and gradients. Applies to right-padded batches of models
    /// without a sliding window; others take the per-row pass.
    pub shared_prefix: bool,
}

impl Default for TrainingPass<'_> {
    fn default() -> Self {
        Self {
            scored: None,
            temperature: 1.0,
            with_entropy: false,
            chunk_tokens: DEFAULT_CHUNK_TOKENS,
            shared_prefix: false,
        }
    }
}

/// The training pass with a memory-lean backward: scores the positions `pass` names like
/// [`token_logprobs`] (at `pass.temperature`, the recomputed logits in the backward too), hands
/// the stats to `loss` (their `logprobs`/`entropy` are leaves to differentiate), and
/// backpropagates the returned scalar into the model's variables. The output projection runs on
/// the scored positions only, chunk by chunk, and its backward recomputes each chunk's logits,
/// so at most one `[chunk, vocab]` block exists at a time — in the backward pass too, where plain
/// autograd would keep every chunk's f32 log-softmax alive. When the scored positions fit one
/// chunk, its graph is kept instead and nothing is recomputed. Gradients accumulate into the
/// variables; returns the loss value (detached) and the stats, whose `mask` is the scored
/// positions.
pub fn backward_token_loss(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    pass: &TrainingPass<'_>,
    loss: impl FnOnce(&TokenStats) -> Tensor,
) -> (Tensor, TokenStats) {
    let chunk = pass.chunk_tokens.max(1);
    let (b_sz, seq_len) = (input_ids.size()[0], input_ids.size()[1]);
    let device = input_ids.device();
    let real = attention_mask.to_kind(Kind::Bool);
    let mut mask = real
        .narrow(1, 0, seq_len - 1)
        .logical_and(&real.narrow(1, 1, seq_len - 1)); // [b, t-1]
    if let Some(scored) = pass.scored {
        mask = mask.logical_and(&scored.to_kind(Kind::Bool));
    }
    let flat = mask.reshape([-1]).nonzero().squeeze_dim(1); // [n] indices into [b * (t-1)]
    let context = contexts(
        model,
        input_ids,
        attention_mask,
        &mask,
        &flat,
        pass.shared_prefix,
    ); // [n, h]
    let leaf = context.detach().set_requires_grad(true);
    let targets = input_ids
        .narrow(1, 1, seq_len - 1)
        .reshape([-1])
        .index_select(0, &flat); // [n]
    let weight = model.lm_head();
    let temperature = pass.temperature;
    let n = leaf.size()[0];
    // One chunk: keep its graph for the backward instead of recomputing its logits.
    let kept =
        (n <= chunk).then(|| chunk_stats(&leaf, &targets, weight, temperature, pass.with_entropy));
    let (lp, ent) = match &kept {
        Some((lp, ent)) => (lp.detach(), ent.as_ref().map(Tensor::detach)),
        None => tch::no_grad(|| {
            chunked(
                &leaf,
                &targets,
                weight,
                temperature,
                pass.with_entropy,
                chunk,
            )
        }),
    };

    let spread = |values: Tensor| {
        Tensor::zeros([b_sz * (seq_len - 1)], (Kind::Float, device))
            .index_copy(0, &flat, &values.to_kind(Kind::Float))
            .reshape([b_sz, seq_len - 1])
            .set_requires_grad(true)
    };
    let stats = TokenStats {
        logprobs: spread(lp),
        entropy: ent.map(spread),
        mask: mask.shallow_clone(),
    };
    let value = loss(&stats);
    value.backward();
    // d loss / d stats at the scored positions, [n].
    let upstream = |t: &Tensor| {
        let g = t.grad();
        g.defined().then(|| g.reshape([-1]).index_select(0, &flat))
    };
    let g_logprobs = upstream(&stats.logprobs);
    let g_entropy = stats.entropy.as_ref().and_then(upstream);

    if g_logprobs.is_some() || g_entropy.is_some() {
        let mut kept = kept;
        for start in (0..n).step_by(chunk as usize) {
            let len = chunk.min(n - start);
            let needs_entropy = g_entropy.is_some();
            let (lp, ent) = kept.take().unwrap_or_else(|| {
                chunk_stats(
                    &leaf.narrow(0, start, len),
                    &targets.narrow(0, start, len),
                    weight,
                    temperature,
                    needs_entropy,
                )
            });
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

/// The hidden states `[n, h]` that predict the tokens at the scored positions `flat` (row-major
/// indices into `[b, t-1]`, where `mask` is true), differentiable: through the packed
/// shared-prefix pass when asked and it saves work, else the per-row pass.
fn contexts(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    mask: &Tensor,
    flat: &Tensor,
    shared_prefix: bool,
) -> Tensor {
    if shared_prefix
        && model.sliding_window().is_none()
        && let Some(context) = packed_contexts(model, input_ids, attention_mask, mask)
    {
        return context;
    }
    let seq_len = input_ids.size()[1];
    let hidden = model.hidden_states(input_ids, attention_mask); // [b, t, h]
    let h = hidden.size()[2];
    hidden
        .narrow(1, 0, seq_len - 1)
        .reshape([-1, h])
        .index_select(0, flat)
}

/// [`contexts`] through [`packing`](crate::packing): None when the batch is not right-padded or
/// no two rows share a prefix. A row's prefix is everything before its first scored target.
fn packed_contexts(
    model: &dyn CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    mask: &Tensor,
) -> Option<Tensor> {
    use crate::packing::{Packed, Sequence, plan};
    let host = |t: &Tensor| {
        Vec::<Vec<i64>>::try_from(t.to_kind(Kind::Int64).to_device(tch::Device::Cpu)).ok()
    };
    let (ids, attention, scored) = (host(input_ids)?, host(attention_mask)?, host(mask)?);
    let mut sequences = Vec::with_capacity(ids.len());
    for ((tokens, real), scored) in ids.iter().zip(&attention).zip(&scored) {
        let len = real.iter().take_while(|&&a| a == 1).count();
        if real[len..].iter().any(|&a| a != 0) {
            return None; // left padding or holes: positions would not restart where packing puts them
        }
        let prefix = scored.iter().position(|&s| s != 0).map_or(len, |c| c + 1);
        sequences.push(Sequence {
            tokens: &tokens[..len],
            prefix,
        });
    }
    let plan = plan(&sequences);
    if !plan.shares() {
        return None;
    }
    let device = input_ids.device();
    let packed = Packed::new(&plan, device);
    let hidden = model.hidden_states_masked(&packed.input_ids, &packed.positions, &packed.mask); // [g, w, h]
    let h = hidden.size()[2];
    let index: Vec<i64> = plan
        .placement
        .iter()
        .zip(&scored)
        .flat_map(|((row, columns), scored)| {
            let base = *row as i64 * packed.width;
            scored
                .iter()
                .enumerate()
                .filter(|(_, s)| **s != 0)
                .map(move |(c, _)| base + columns[c] as i64)
        })
        .collect();
    let index = Tensor::from_slice(&index).to_device(device);
    Some(hidden.reshape([-1, h]).index_select(0, &index))
}
