//! The Llama family (Llama 2/3, SmolLM2, Mistral with its sliding window; Qwen2 via q/k/v bias):
//! pre-norm decoder blocks of grouped-query attention with RoPE and a SwiGLU MLP, RMSNorm, tied
//! or separate output head. Weight paths mirror HF checkpoint names.

use serde::Deserialize;
use tch::{
    Kind, Tensor,
    nn::{self, Module},
};

use crate::{
    kv_cache::{CacheShape, CachedPass, KvCache},
    mask::{AttnMask, attention},
    rope::{self, RopeParams},
};

/// HF `config.json` of a Llama-family model.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Decoder blocks.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads (GQA); default: `num_attention_heads`.
    pub num_key_value_heads: Option<i64>,
    /// Per-head width; default: `hidden_size / num_attention_heads`.
    pub head_dim: Option<i64>,
    /// RMSNorm ε.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// transformers ≤ 4: RoPE base.
    pub rope_theta: Option<f64>,
    /// transformers ≤ 4: RoPE scaling.
    pub rope_scaling: Option<RopeParams>,
    /// transformers ≥ 5: RoPE base and scaling together.
    pub rope_parameters: Option<RopeParams>,
    /// Output head shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2 always; Llama when set).
    #[serde(default)]
    pub attention_bias: bool,
    /// Bias on MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Mistral: each token attends to at most this many tokens (itself included); none = all.
    #[serde(default)]
    pub sliding_window: Option<i64>,
}

fn default_eps() -> f64 {
    1e-6
}

impl Config {
    /// Key/value heads.
    pub fn kv_heads(&self) -> i64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head width.
    pub fn head_dim(&self) -> i64 {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// The RoPE parameters, whichever way the config spells them.
    pub fn rope(&self) -> RopeParams {
        let mut params = self
            .rope_parameters
            .clone()
            .or_else(|| self.rope_scaling.clone())
            .unwrap_or(RopeParams {
                rope_theta: 10_000.0,
                rope_type: "default".into(),
                factor: None,
                low_freq_factor: None,
                high_freq_factor: None,
                original_max_position_embeddings: None,
            });
        if self.rope_parameters.is_none() {
            params.rope_theta = self.rope_theta.unwrap_or(10_000.0);
        }
        params
    }

    /// Checks what serde cannot: divisibility of heads and widths.
    pub fn validate(&self) -> Result<(), String> {
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads <= 0 || kv <= 0 || heads % kv != 0 {
            return Err(format!(
                "num_attention_heads = {heads} must be a positive multiple of num_key_value_heads = {kv}"
            ));
        }
        if let Some(w) = self.sliding_window.filter(|&w| w < 1) {
            return Err(format!("sliding_window = {w} must be at least 1"));
        }
        if self.head_dim() % 2 != 0 {
            return Err(format!(
                "head_dim = {} must be even for RoPE",
                self.head_dim()
            ));
        }
        self.rope().inv_freq(self.head_dim() as usize).map(|_| ())
    }
}

#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(p: nn::Path, size: i64, eps: f64) -> Self {
        Self {
            weight: p.var("weight", &[size], nn::Init::Const(1.0)),
            eps,
        }
    }
}

impl Module for RmsNorm {
    /// `[.., size]` → same; statistics in f32 whatever the compute dtype.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        let x = xs.to_kind(Kind::Float);
        let x = &x * (x.square().mean_dim(-1, true, Kind::Float) + self.eps).rsqrt();
        &self.weight * x.to_kind(kind)
    }
}

fn linear(p: nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> nn::Linear {
    nn::linear(
        p,
        in_dim,
        out_dim,
        nn::LinearConfig {
            bias,
            ..Default::default()
        },
    )
}

#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        let (h, d) = (cfg.hidden_size, cfg.head_dim());
        let bias = cfg.attention_bias;
        Self {
            q_proj: linear(&p / "q_proj", h, cfg.num_attention_heads * d, bias),
            k_proj: linear(&p / "k_proj", h, cfg.kv_heads() * d, bias),
            v_proj: linear(&p / "v_proj", h, cfg.kv_heads() * d, bias),
            o_proj: linear(&p / "o_proj", cfg.num_attention_heads * d, h, false),
            heads: cfg.num_attention_heads,
            kv_heads: cfg.kv_heads(),
            head_dim: d,
        }
    }

    /// `xs` `[b, t, hidden]` → `[b, t, hidden]`; `attend` maps `q, k, v` (after RoPE) to the
    /// attention output (plain masked attention, or through a [`KvCache`] layer).
    fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        attend: impl FnOnce(&Tensor, &Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        let (b_sz, q_len) = (xs.size()[0], xs.size()[1]);
        let heads = |t: Tensor, n: i64| t.view([b_sz, q_len, n, self.head_dim]).transpose(1, 2);
        let q = rope::apply(&heads(self.q_proj.forward(xs), self.heads), cos, sin);
        let k = rope::apply(&heads(self.k_proj.forward(xs), self.kv_heads), cos, sin);
        let v = heads(self.v_proj.forward(xs), self.kv_heads);
        let ys = attend(&q, &k, &v);
        self.o_proj.forward(
            &ys.transpose(1, 2)
                .reshape([b_sz, q_len, self.heads * self.head_dim]),
        )
    }
}

#[derive(Debug)]
struct Mlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl Mlp {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        let (h, i, bias) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        Self {
            gate_proj: linear(&p / "gate_proj", h, i, bias),
            up_proj: linear(&p / "up_proj", h, i, bias),
            down_proj: linear(&p / "down_proj", i, h, bias),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(xs).silu() * self.up_proj.forward(xs)))
    }
}

#[derive(Debug)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        Self {
            input_layernorm: RmsNorm::new(
                &p / "input_layernorm",
                cfg.hidden_size,
                cfg.rms_norm_eps,
            ),
            self_attn: Attention::new(&p / "self_attn", cfg),
            post_attention_layernorm: RmsNorm::new(
                &p / "post_attention_layernorm",
                cfg.hidden_size,
                cfg.rms_norm_eps,
            ),
            mlp: Mlp::new(&p / "mlp", cfg),
        }
    }

    fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        attend: impl FnOnce(&Tensor, &Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        let xs = xs
            + self
                .self_attn
                .forward(&self.input_layernorm.forward(xs), cos, sin, attend);
        &xs + self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&xs))
    }
}

/// The decoder stack without an output head (HF `LlamaModel`, weights under `model.`).
#[derive(Debug)]
pub struct LlamaModel {
    embed_tokens: nn::Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    inv_freq: Tensor,
    sliding_window: Option<i64>,
}

impl LlamaModel {
    /// Creates the variables under `p` (HF: the `model` path); `cfg` must pass [`Config::validate`].
    pub fn new(p: &nn::Path, cfg: &Config) -> Result<Self, String> {
        cfg.validate()?;
        let embed_tokens = nn::embedding(
            p / "embed_tokens",
            cfg.vocab_size,
            cfg.hidden_size,
            Default::default(),
        );
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::new(p / "layers" / i, cfg))
            .collect();
        let norm = RmsNorm::new(p / "norm", cfg.hidden_size, cfg.rms_norm_eps);
        let inv_freq = cfg.rope().inv_freq(cfg.head_dim() as usize)?;
        let inv_freq = Tensor::from_slice(&inv_freq)
            .to_kind(Kind::Float)
            .to_device(p.device());
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            inv_freq,
            sliding_window: cfg.sliding_window,
        })
    }
}

impl crate::Backbone for LlamaModel {
    fn hidden_states(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let positions = crate::mask::positions(attention_mask);
        let mask = AttnMask::new(attention_mask, self.sliding_window);
        self.hidden_states_at(input_ids, &positions, &mask)
    }
}

impl LlamaModel {
    /// Hidden states `[b, t, hidden]` of `input_ids` `[b, t]` at `positions` `[b, t]` under `mask`.
    fn hidden_states_at(&self, input_ids: &Tensor, positions: &Tensor, mask: &AttnMask) -> Tensor {
        let xs = self.embed_tokens.forward(input_ids);
        let (cos, sin) = rope::tables(&self.inv_freq, positions, xs.kind());
        let xs = self.layers.iter().fold(xs, |xs, layer| {
            layer.forward(&xs, &cos, &sin, |q, k, v| attention(q, k, v, mask))
        });
        self.norm.forward(&xs)
    }

    /// Hidden states `[b, t, hidden]` of `input_ids` `[b, t]` at `positions` `[b, t]`, keys and
    /// values going through `cache` as `pass` says.
    pub fn hidden_states_cached(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        pass: &CachedPass,
        cache: &mut KvCache,
    ) -> Tensor {
        let xs = self.embed_tokens.forward(input_ids);
        let (cos, sin) = rope::tables(&self.inv_freq, positions, xs.kind());
        let xs = self
            .layers
            .iter()
            .zip(cache.layers_mut())
            .fold(xs, |xs, (layer, kv)| {
                layer.forward(&xs, &cos, &sin, |q, k, v| pass.attend(q, k, v, kv))
            });
        self.norm.forward(&xs)
    }

    fn cache_shape(&self) -> CacheShape {
        let attn = &self.layers[0].self_attn;
        CacheShape {
            layers: self.layers.len() as i64,
            kv_heads: attn.kv_heads,
            head_dim: attn.head_dim,
        }
    }
}

/// A Llama-family causal LM (HF `LlamaForCausalLM`: `model.*` and `lm_head.weight`).
#[derive(Debug)]
pub struct Llama {
    model: LlamaModel,
    lm_head: Tensor,
}

impl Llama {
    /// Creates the variables under `p`; the head shares the embedding when the config ties them.
    pub fn new(p: &nn::Path, cfg: &Config) -> Result<Self, String> {
        let model = LlamaModel::new(&(p / "model"), cfg)?;
        let lm_head = if cfg.tie_word_embeddings {
            model.embed_tokens.ws.shallow_clone()
        } else {
            (p / "lm_head").var(
                "weight",
                &[cfg.vocab_size, cfg.hidden_size],
                nn::Init::Const(0.0),
            )
        };
        Ok(Self { model, lm_head })
    }
}

impl crate::Backbone for Llama {
    fn hidden_states(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        self.model.hidden_states(input_ids, attention_mask)
    }
}

impl crate::CausalLm for Llama {
    fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    fn cache_shape(&self) -> CacheShape {
        self.model.cache_shape()
    }

    fn sliding_window(&self) -> Option<i64> {
        self.model.sliding_window
    }

    fn hidden_states_masked(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
    ) -> Tensor {
        let mask = AttnMask::Explicit(mask.shallow_clone());
        self.model.hidden_states_at(input_ids, positions, &mask)
    }

    fn hidden_states_cached(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        pass: &CachedPass,
        cache: &mut KvCache,
    ) -> Tensor {
        self.model
            .hidden_states_cached(input_ids, positions, pass, cache)
    }
}
