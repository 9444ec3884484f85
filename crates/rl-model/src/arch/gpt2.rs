//! GPT-2 (Radford et al. 2019): learned absolute positions, pre-LayerNorm blocks, fused q/k/v in
//! HF's `Conv1D` layout (weights `[in, out]`), tanh-GELU MLP, output head tied to the embedding.

use serde::Deserialize;

use crate::{
    kv_cache::{CacheShape, CachedPass, KvCache},
    mask::{AttnMask, attention},
};
use tch::{
    Tensor,
    nn::{self, Module},
};

/// HF `config.json` of a GPT-2 model.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Learned positions (maximum sequence length).
    pub n_positions: i64,
    /// Model width.
    pub n_embd: i64,
    /// Blocks.
    pub n_layer: i64,
    /// Heads.
    pub n_head: i64,
    /// MLP width; default `4 * n_embd`.
    pub n_inner: Option<i64>,
    /// LayerNorm ε.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Only `gelu_new` (tanh approximation) and `gelu` are implemented.
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_act() -> String {
    "gelu_new".into()
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.n_head <= 0 || self.n_embd % self.n_head != 0 {
            return Err(format!(
                "n_embd = {} must be a multiple of n_head = {}",
                self.n_embd, self.n_head
            ));
        }
        match self.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu" => Ok(()),
            other => Err(format!(
                "activation_function {other:?} is not supported (gelu_new, gelu)"
            )),
        }
    }

    fn approximate(&self) -> &'static str {
        if self.activation_function == "gelu" {
            "none"
        } else {
            "tanh"
        }
    }
}

/// HF's `Conv1D`: a linear layer storing its weight as `[in, out]`.
#[derive(Debug)]
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    fn new(p: nn::Path, in_dim: i64, out_dim: i64) -> Self {
        Self {
            weight: p.var(
                "weight",
                &[in_dim, out_dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            bias: p.var("bias", &[out_dim], nn::Init::Const(0.0)),
        }
    }
}

impl Module for Conv1D {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.matmul(&self.weight) + &self.bias
    }
}

fn layer_norm(p: nn::Path, size: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![size],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

#[derive(Debug)]
struct Block {
    ln_1: nn::LayerNorm,
    c_attn: Conv1D,
    attn_proj: Conv1D,
    ln_2: nn::LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
    n_head: i64,
    approximate: &'static str,
}

impl Block {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        let (e, inner) = (cfg.n_embd, cfg.n_inner.unwrap_or(4 * cfg.n_embd));
        Self {
            ln_1: layer_norm(&p / "ln_1", e, cfg.layer_norm_epsilon),
            c_attn: Conv1D::new(&p / "attn" / "c_attn", e, 3 * e),
            attn_proj: Conv1D::new(&p / "attn" / "c_proj", e, e),
            ln_2: layer_norm(&p / "ln_2", e, cfg.layer_norm_epsilon),
            c_fc: Conv1D::new(&p / "mlp" / "c_fc", e, inner),
            mlp_proj: Conv1D::new(&p / "mlp" / "c_proj", inner, e),
            n_head: cfg.n_head,
            approximate: cfg.approximate(),
        }
    }

    /// `xs` `[b, t, e]` → `[b, t, e]`; `attend` maps `q, k, v` to the attention output.
    fn forward(
        &self,
        xs: &Tensor,
        attend: impl FnOnce(&Tensor, &Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        let (b_sz, q_len, e) = xs.size3().unwrap_or((0, 0, 0));
        let head_dim = e / self.n_head;
        let qkv = self.c_attn.forward(&self.ln_1.forward(xs)).split(e, -1);
        let heads = |t: &Tensor| t.view([b_sz, q_len, self.n_head, head_dim]).transpose(1, 2);
        let ys = attend(&heads(&qkv[0]), &heads(&qkv[1]), &heads(&qkv[2]));
        let xs = xs
            + self
                .attn_proj
                .forward(&ys.transpose(1, 2).reshape([b_sz, q_len, e]));
        let hidden = self
            .c_fc
            .forward(&self.ln_2.forward(&xs))
            .gelu(self.approximate);
        &xs + self.mlp_proj.forward(&hidden)
    }
}

/// The GPT-2 stack without an output head (HF `GPT2Model`, weights under `transformer.`).
#[derive(Debug)]
pub struct Gpt2Model {
    wte: nn::Embedding,
    wpe: nn::Embedding,
    h: Vec<Block>,
    ln_f: nn::LayerNorm,
}

impl Gpt2Model {
    /// Creates the variables under `p` (HF: the `transformer` path).
    pub fn new(p: &nn::Path, cfg: &Config) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Self {
            wte: nn::embedding(p / "wte", cfg.vocab_size, cfg.n_embd, Default::default()),
            wpe: nn::embedding(p / "wpe", cfg.n_positions, cfg.n_embd, Default::default()),
            h: (0..cfg.n_layer)
                .map(|i| Block::new(p / "h" / i, cfg))
                .collect(),
            ln_f: layer_norm(p / "ln_f", cfg.n_embd, cfg.layer_norm_epsilon),
        })
    }
}

impl crate::Backbone for Gpt2Model {
    fn hidden_states(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let positions = crate::mask::positions(attention_mask);
        let mask = AttnMask::new(attention_mask, None);
        self.hidden_states_at(input_ids, &positions, &mask)
    }
}

impl Gpt2Model {
    /// Hidden states `[b, t, e]` of `input_ids` `[b, t]` at `positions` `[b, t]` under `mask`.
    fn hidden_states_at(&self, input_ids: &Tensor, positions: &Tensor, mask: &AttnMask) -> Tensor {
        let xs =
            self.wte.forward(input_ids) + self.wpe.forward(positions).to_kind(self.wte.ws.kind());
        let xs = self.h.iter().fold(xs, |xs, block| {
            block.forward(&xs, |q, k, v| attention(q, k, v, mask))
        });
        self.ln_f.forward(&xs)
    }

    /// Hidden states `[b, t, e]` of `input_ids` `[b, t]` at `positions` `[b, t]`, keys and
    /// values going through `cache` as `pass` says.
    pub fn hidden_states_cached(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        pass: &CachedPass,
        cache: &mut KvCache,
    ) -> Tensor {
        let xs =
            self.wte.forward(input_ids) + self.wpe.forward(positions).to_kind(self.wte.ws.kind());
        let xs = self
            .h
            .iter()
            .zip(cache.layers_mut())
            .fold(xs, |xs, (block, kv)| {
                block.forward(&xs, |q, k, v| pass.attend(q, k, v, kv))
            });
        self.ln_f.forward(&xs)
    }
}

/// A GPT-2 causal LM (HF `GPT2LMHeadModel`): the head is the token embedding.
#[derive(Debug)]
pub struct Gpt2 {
    transformer: Gpt2Model,
}

impl Gpt2 {
    /// Creates the variables under `p` (HF names: `transformer.*`).
    pub fn new(p: &nn::Path, cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            transformer: Gpt2Model::new(&(p / "transformer"), cfg)?,
        })
    }
}

impl crate::Backbone for Gpt2 {
    fn hidden_states(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        self.transformer.hidden_states(input_ids, attention_mask)
    }
}

impl crate::CausalLm for Gpt2 {
    fn lm_head(&self) -> &Tensor {
        &self.transformer.wte.ws
    }

    fn cache_shape(&self) -> CacheShape {
        let block = &self.transformer.h[0];
        CacheShape {
            layers: self.transformer.h.len() as i64,
            kv_heads: block.n_head,
            head_dim: self.transformer.wte.ws.size()[1] / block.n_head,
        }
    }

    fn hidden_states_masked(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
    ) -> Tensor {
        let mask = AttnMask::Explicit(mask.shallow_clone());
        self.transformer
            .hidden_states_at(input_ids, positions, &mask)
    }

    fn hidden_states_cached(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        pass: &CachedPass,
        cache: &mut KvCache,
    ) -> Tensor {
        self.transformer
            .hidden_states_cached(input_ids, positions, pass, cache)
    }
}
