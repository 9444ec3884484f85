//! BERT (Devlin et al. 2018, <https://arxiv.org/abs/1810.04805>): a bidirectional encoder —
//! word + absolute position + token-type embeddings, post-LayerNorm layers, GELU MLP — and its
//! pooler (dense + tanh on the `[CLS]` token). Weight names follow HF `BertModel`
//! (`embeddings.*`, `encoder.layer.N.*`, `pooler.dense.*`). An encoder is a reward-model
//! backbone, never a policy: it has no causal mask and no output head.

use serde::Deserialize;
use tch::{
    Kind, Tensor,
    nn::{self, Module},
};

/// HF `config.json` of a BERT model (`model_type: "bert"`).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// Encoder layers.
    pub num_hidden_layers: i64,
    /// Attention heads.
    pub num_attention_heads: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Learned positions (maximum sequence length).
    pub max_position_embeddings: i64,
    /// Token types (segments); we always use type 0.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: i64,
    /// LayerNorm ε.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// `gelu` (erf) or its tanh approximations `gelu_new` / `gelu_pytorch_tanh`.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Only `absolute` positions are implemented.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> i64 {
    2
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

fn default_position_type() -> String {
    "absolute".into()
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads <= 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size = {} must be a multiple of num_attention_heads = {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.type_vocab_size < 1 {
            return Err("type_vocab_size must be at least 1".into());
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (absolute)",
                self.position_embedding_type
            ));
        }
        match self.hidden_act.as_str() {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" => Ok(()),
            other => Err(format!(
                "hidden_act {other:?} is not supported (gelu, gelu_new)"
            )),
        }
    }

    fn approximate(&self) -> &'static str {
        if self.hidden_act == "gelu" {
            "none"
        } else {
            "tanh"
        }
    }
}

fn layer_norm(p: nn::Path, size: i64, eps: f64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps,
        ..Default::default()
    };
    nn::layer_norm(p, vec![size], config)
}

#[derive(Debug)]
struct Embeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

impl Embeddings {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        let h = cfg.hidden_size;
        let embedding = |name: &str, n: i64| nn::embedding(&p / name, n, h, Default::default());
        Self {
            word_embeddings: embedding("word_embeddings", cfg.vocab_size),
            position_embeddings: embedding("position_embeddings", cfg.max_position_embeddings),
            token_type_embeddings: embedding("token_type_embeddings", cfg.type_vocab_size),
            layer_norm: layer_norm(&p / "LayerNorm", h, cfg.layer_norm_eps),
        }
    }

    /// `input_ids` `[b, t]` → `[b, t, h]`. Positions count from the first column, as HF's BERT
    /// does (its tokenizers pad on the right); every token has type 0.
    fn forward(&self, input_ids: &Tensor) -> Tensor {
        let t = input_ids.size()[1];
        let positions = Tensor::arange(t, (Kind::Int64, input_ids.device()));
        let type0 = self.token_type_embeddings.ws.get(0);
        let xs = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(&positions)
            + type0;
        self.layer_norm.forward(&xs)
    }
}

#[derive(Debug)]
struct Layer {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    attn_out: nn::Linear,
    attn_norm: nn::LayerNorm,
    intermediate: nn::Linear,
    output: nn::Linear,
    output_norm: nn::LayerNorm,
    n_head: i64,
    approximate: &'static str,
}

impl Layer {
    fn new(p: nn::Path, cfg: &Config) -> Self {
        let (h, inner, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let linear = |p: nn::Path, i: i64, o: i64| nn::linear(p, i, o, Default::default());
        let (attn, out) = (&p / "attention", &p / "output");
        Self {
            query: linear(&attn / "self" / "query", h, h),
            key: linear(&attn / "self" / "key", h, h),
            value: linear(&attn / "self" / "value", h, h),
            attn_out: linear(&attn / "output" / "dense", h, h),
            attn_norm: layer_norm(&attn / "output" / "LayerNorm", h, eps),
            intermediate: linear(&p / "intermediate" / "dense", h, inner),
            output: linear(&out / "dense", inner, h),
            output_norm: layer_norm(&out / "LayerNorm", h, eps),
            n_head: cfg.num_attention_heads,
            approximate: cfg.approximate(),
        }
    }

    /// `xs` `[b, t, h]` → `[b, t, h]`; `mask` `[b, 1, 1, t]` bool (true = key may be attended).
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let (b_sz, q_len, h) = xs.size3().unwrap_or((0, 0, 0));
        let head_dim = h / self.n_head;
        let heads = |l: &nn::Linear| {
            l.forward(xs)
                .view([b_sz, q_len, self.n_head, head_dim])
                .transpose(1, 2)
        };
        let (q, k, v) = (heads(&self.query), heads(&self.key), heads(&self.value));
        let ys = Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([b_sz, q_len, h]);
        let xs = self.attn_norm.forward(&(self.attn_out.forward(&ys) + xs));
        let hidden = self.intermediate.forward(&xs).gelu(self.approximate);
        self.output_norm
            .forward(&(self.output.forward(&hidden) + xs))
    }
}

/// `[b, t]` padding mask (1 = token) → `[b, 1, 1, t]` bool: every query attends every real key.
/// A row without any token attends to all of its keys, so its outputs stay finite. `None` when
/// nothing is padded (SDPA's unmasked kernels).
fn key_mask(attention_mask: &Tensor) -> Option<Tensor> {
    if attention_mask.numel() == 0 || attention_mask.min().int64_value(&[]) == 1 {
        return None;
    }
    let keys = attention_mask.to_kind(Kind::Bool); // [b, t]
    let empty = keys.any_dim(-1, true).logical_not(); // [b, 1]
    Some(keys.logical_or(&empty).unsqueeze(1).unsqueeze(1))
}

/// The BERT encoder without pooler (HF `BertModel`'s `last_hidden_state`).
#[derive(Debug)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl BertModel {
    /// Creates the variables under `p` (HF: the model root, or `bert` inside
    /// `BertForSequenceClassification`).
    pub fn new(p: &nn::Path, cfg: &Config) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Self {
            embeddings: Embeddings::new(p / "embeddings", cfg),
            layers: (0..cfg.num_hidden_layers)
                .map(|i| Layer::new(p / "encoder" / "layer" / i, cfg))
                .collect(),
        })
    }
}

impl crate::Backbone for BertModel {
    /// Bidirectional: every real token sees every other; rows are expected right-padded
    /// (positions count from column 0). Pad positions hold meaningless values.
    fn hidden_states(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let mask = key_mask(attention_mask);
        let xs = self.embeddings.forward(input_ids);
        self.layers
            .iter()
            .fold(xs, |xs, layer| layer.forward(&xs, mask.as_ref()))
    }
}

/// BERT's pooler: `tanh(dense(h[:, 0]))`, the `[CLS]` token's summary (HF `BertPooler`).
#[derive(Debug)]
pub struct Pooler {
    dense: nn::Linear,
}

impl Pooler {
    /// Creates `dense.weight` `[h, h]` and `dense.bias` `[h]` under `p` (HF: `pooler`).
    pub fn new(p: &nn::Path, cfg: &Config) -> Self {
        let h = cfg.hidden_size;
        Self {
            dense: nn::linear(p / "dense", h, h, Default::default()),
        }
    }

    /// Hidden states `[b, t, h]` → pooled `[b, h]` (first column, i.e. `[CLS]`).
    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        self.dense.forward(&hidden.select(1, 0)).tanh()
    }

    /// Per-position pooling `[b, t, h]` → `[b, t, h]`: what [`forward`](Self::forward) gives
    /// for each token as if it stood first.
    pub fn forward_all(&self, hidden: &Tensor) -> Tensor {
        self.dense.forward(hidden).tanh()
    }
}
