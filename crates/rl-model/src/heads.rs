//! Scalar heads on a transformer backbone: the critic (a value per token, for GAE) and the reward
//! model (one score per sequence). Weights follow HF `*ForSequenceClassification` with one label,
//! so both load and export as transformers expects:
//! - causal LMs: backbone plus `score.weight` `[1, hidden]`, no bias, the reward read at the last
//!   real token;
//! - encoders (BERT): `bert.*` plus its pooler (dense + tanh on `[CLS]`), then
//!   `classifier.weight` `[1, hidden]` and `classifier.bias` `[1]`.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn, nn::VarStore};

use crate::{
    Backbone, ModelError,
    arch::{ArchConfig, bert::Pooler},
    hf::{self, LoadedModel, arch_error},
};

/// How the scalar is read off the backbone's hidden states.
#[derive(Debug)]
pub enum ScalarHead {
    /// Causal LMs: `score.weight` `[1, hidden]` at every token; the reward at the last real one.
    Score(Tensor),
    /// Encoders: `classifier.weight` `[1, hidden]` and `classifier.bias` `[1]` on the pooled
    /// `[CLS]` token (`bert.pooler`).
    Classifier {
        /// `bert.pooler`.
        pooler: Pooler,
        /// `classifier.weight` `[1, hidden]`.
        weight: Tensor,
        /// `classifier.bias` `[1]`.
        bias: Tensor,
    },
}

/// A backbone with a scalar head.
pub struct ScalarModel {
    /// The transformer stack.
    pub backbone: Box<dyn Backbone>,
    /// The head.
    pub head: ScalarHead,
    /// Its variables.
    pub vs: VarStore,
    /// Architecture config.
    pub config: ArchConfig,
    /// `config.json` (for export).
    pub config_json: serde_json::Value,
    /// Where the backbone came from.
    pub source: PathBuf,
}

impl ScalarModel {
    /// A model of `config` on `device` with fresh f32 variables, the head initialised as its
    /// trainers do; `source` is where its weights (will) come from.
    fn build(
        config: ArchConfig,
        config_json: serde_json::Value,
        source: PathBuf,
        device: Device,
    ) -> Result<Self, ModelError> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let backbone = config
            .build_backbone(&root)
            .map_err(|e| arch_error(&source, e))?;
        let h = config.hidden_size();
        let head = match &config {
            ArchConfig::Bert(cfg) => {
                let p = &root / "classifier";
                let init = nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02, // transformers' `initializer_range`
                };
                ScalarHead::Classifier {
                    pooler: Pooler::new(&(&root / "bert" / "pooler"), cfg),
                    weight: p.var("weight", &[1, h], init),
                    bias: p.var("bias", &[1], nn::Init::Const(0.0)),
                }
            }
            _ => {
                let stdev = 1.0 / (h as f64 + 1.0); // OpenRLHF's value-head init
                let init = nn::Init::Randn { mean: 0.0, stdev };
                ScalarHead::Score((&root / "score").var("weight", &[1, h], init))
            }
        };
        Ok(Self {
            backbone,
            head,
            vs,
            config,
            config_json,
            source,
        })
    }

    /// A randomly initialised model (f32) of the architecture in `config_json` (an HF
    /// `config.json`), for tests and speed work where no checkpoint of that shape is at hand.
    pub fn from_config(config_json: serde_json::Value, device: Device) -> Result<Self, ModelError> {
        let source = PathBuf::from("config.json");
        let config =
            ArchConfig::from_json(config_json.clone()).map_err(|e| arch_error(&source, e))?;
        Self::build(config, config_json, source, device)
    }

    /// A new critic or reward model initialised from `policy`'s backbone, with a fresh head.
    pub fn from_policy(policy: &LoadedModel, device: Device) -> Result<Self, ModelError> {
        let (config, json) = (policy.config.clone(), policy.config_json.clone());
        let model = Self::build(config, json, policy.source.clone(), device)?; // f32: heads train in f32
        let source = policy.vs.variables();
        tch::no_grad(|| -> Result<(), ModelError> {
            for (name, mut var) in model.vs.variables() {
                if let Some(src) = source.get(&name) {
                    var.f_copy_(src)?;
                }
            }
            Ok(())
        })?;
        Ok(model)
    }

    /// A new reward model (f32) on the pretrained backbone in the HF directory `dir` — an
    /// encoder such as all-MiniLM-L6-v2 (a bare `BertModel` checkpoint: its pooler is kept), or a
    /// causal LM whose output head is dropped — with a fresh head.
    pub fn from_backbone_dir(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (config, config_json) = hf::read_config(dir)?;
        let model = Self::build(config, config_json, dir.to_owned(), device)?;
        let fresh = |name: &str| name.starts_with("score.") || name.starts_with("classifier.");
        let load = |strip_bert: bool| {
            hf::load_weights_mapped(&model.vs, dir, model.config.name(), |name| {
                let bare = name.strip_prefix("bert.").filter(|_| strip_bert);
                (!fresh(name)).then(|| bare.unwrap_or(name).to_owned())
            })
        };
        // transformers saves a bare encoder (`BertModel`) without the `bert.` prefix its
        // sequence classifier has; either loads, and a miss names the bare tensor.
        match load(model.config.is_encoder()) {
            Err(e @ ModelError::MissingTensor { .. }) if model.config.is_encoder() => {
                load(false).map_err(|_| e)?
            }
            other => other?,
        }
        Ok(model)
    }

    /// Whether the HF directory `dir` holds a reward model: its `config.json` names a
    /// `*ForSequenceClassification` architecture (rather than a bare backbone or a causal LM).
    pub fn is_reward_model_dir(dir: &Path) -> Result<bool, ModelError> {
        let (_, json) = hf::read_config(dir)?;
        Ok(json["architectures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .any(|a| a.ends_with("ForSequenceClassification")))
    }

    /// Loads an HF sequence-classification directory (one label) onto `device` in `kind`.
    pub fn load_dir(dir: &Path, device: Device, kind: Kind) -> Result<Self, ModelError> {
        let (config, config_json) = hf::read_config(dir)?;
        let mut model = Self::build(config, config_json, dir.to_owned(), device)?;
        hf::load_weights(&model.vs, dir, model.config.name())?;
        model.vs.set_kind(kind);
        Ok(model)
    }

    /// Writes an HF sequence-classification directory (one label) into `out` (created; must be
    /// absent or empty): `model.safetensors` in `kind`, `config.json` naming the HF class
    /// (`BertForSequenceClassification`, `LlamaForSequenceClassification`, ...), and the source's
    /// tokenizer files. [`load_dir`](Self::load_dir) and transformers'
    /// `AutoModelForSequenceClassification` both load it.
    pub fn save_dir(&self, out: &Path, kind: Kind) -> Result<(), ModelError> {
        let mut config = self.config_json.clone();
        let model_type = config["model_type"].as_str().unwrap_or_default().to_owned();
        let class = self.config.sequence_classification_class(&model_type);
        if let Some(obj) = config.as_object_mut() {
            obj.insert("architectures".into(), serde_json::json!([class]));
            obj.insert("id2label".into(), serde_json::json!({"0": "LABEL_0"}));
            obj.insert("label2id".into(), serde_json::json!({"LABEL_0": 0}));
            obj.remove("num_labels");
        }
        crate::export::write_hf_dir(&self.vs, &config, &self.source, out, kind)
    }

    /// Whether the backbone is a bidirectional encoder: then only [`rewards`](Self::rewards)
    /// is meaningful, since every position's value would see the tokens after it.
    pub fn is_encoder(&self) -> bool {
        self.config.is_encoder()
    }

    /// Per-position scalars `[b, t]` f32 (0 at pads): critic values for causal backbones. For an
    /// encoder, the head applied to every position as if it were `[CLS]` (not a critic).
    pub fn values(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let hidden = self.backbone.hidden_states(input_ids, attention_mask); // [b, t, h]
        let values = match &self.head {
            ScalarHead::Score(score) => hidden.matmul(&score.tr()),
            ScalarHead::Classifier {
                pooler,
                weight,
                bias,
            } => pooler.forward_all(&hidden).matmul(&weight.tr()) + bias,
        }
        .squeeze_dim(-1)
        .to_kind(Kind::Float); // [b, t]
        values.masked_fill(&attention_mask.to_kind(Kind::Bool).logical_not(), 0.0)
    }

    /// Reward-model scores `[b]` f32, differentiable: for causal backbones read at each row's
    /// last real token (left or right padding), for encoders from the pooled first token
    /// (`[CLS]`; rows right-padded).
    pub fn rewards(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        match &self.head {
            ScalarHead::Score(_) => {
                let t = attention_mask.size()[1];
                let index = Tensor::arange(t, (Kind::Int64, attention_mask.device()));
                let last = (attention_mask.to_kind(Kind::Int64) * index).argmax(-1, true); // [b, 1]
                self.values(input_ids, attention_mask)
                    .gather(1, &last, false)
                    .squeeze_dim(1)
            }
            ScalarHead::Classifier {
                pooler,
                weight,
                bias,
            } => {
                let hidden = self.backbone.hidden_states(input_ids, attention_mask);
                (pooler.forward(&hidden).matmul(&weight.tr()) + bias)
                    .squeeze_dim(-1)
                    .to_kind(Kind::Float)
            }
        }
    }
}
