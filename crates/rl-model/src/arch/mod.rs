//! The supported architectures, one file each, chosen by `model_type` in HF `config.json`:
//! causal LMs (policies, and the backbones of critics and reward models) and encoders (reward-model
//! backbones only).

pub mod bert;
pub mod gpt2;
pub mod llama;
pub mod qwen2;

use tch::nn;

use crate::{Backbone, CausalLm};

/// `model_type` values we implement.
pub const SUPPORTED: &[&str] = &["bert", "gpt2", "llama", "mistral", "qwen2"];

/// A parsed architecture config.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per loaded model; boxing would only add noise
pub enum ArchConfig {
    /// Llama, Mistral, SmolLM2 (and Qwen2, with q/k/v bias).
    Llama(llama::Config),
    /// GPT-2.
    Gpt2(gpt2::Config),
    /// BERT-style encoders (all-MiniLM-L6-v2): reward-model backbones, not policies.
    Bert(bert::Config),
}

impl ArchConfig {
    /// Parses `config.json` contents; the error is a message for [`crate::ModelError::Config`].
    pub fn from_json(json: serde_json::Value) -> Result<Self, ArchError> {
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let invalid = |e: serde_json::Error| ArchError::Invalid(e.to_string());
        let config = match model_type.as_str() {
            "mistral" => Self::Llama(serde_json::from_value(json).map_err(invalid)?),
            "llama" => {
                let cfg: llama::Config = serde_json::from_value(json).map_err(invalid)?;
                Self::Llama(llama::Config {
                    sliding_window: None,
                    ..cfg
                })
            }
            "qwen2" => Self::Llama(qwen2::config(json).map_err(ArchError::Invalid)?),
            "gpt2" => Self::Gpt2(serde_json::from_value(json).map_err(invalid)?),
            "bert" => Self::Bert(serde_json::from_value(json).map_err(invalid)?),
            "" => return Err(ArchError::Invalid("no \"model_type\" field".into())),
            _ => return Err(ArchError::Unsupported(model_type)),
        };
        match &config {
            Self::Llama(cfg) => cfg.validate(),
            Self::Gpt2(cfg) => cfg.validate(),
            Self::Bert(cfg) => cfg.validate(),
        }
        .map_err(ArchError::Invalid)?;
        Ok(config)
    }

    /// Short architecture name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Llama(_) => "llama",
            Self::Gpt2(_) => "gpt2",
            Self::Bert(_) => "bert",
        }
    }

    /// Whether this is a bidirectional encoder (a reward-model backbone that cannot be a policy).
    pub fn is_encoder(&self) -> bool {
        matches!(self, Self::Bert(_))
    }

    /// HF's class for this architecture with a one-label scalar head
    /// (`LlamaForSequenceClassification`, `BertForSequenceClassification`, ...).
    pub fn sequence_classification_class(&self, model_type: &str) -> &'static str {
        match (self, model_type) {
            (Self::Bert(_), _) => "BertForSequenceClassification",
            (Self::Gpt2(_), _) => "GPT2ForSequenceClassification",
            (Self::Llama(_), "mistral") => "MistralForSequenceClassification",
            (Self::Llama(_), "qwen2") => "Qwen2ForSequenceClassification",
            (Self::Llama(_), _) => "LlamaForSequenceClassification",
        }
    }

    /// Creates the causal LM's variables under `p` (HF `*ForCausalLM` names). An encoder is
    /// refused with [`ArchError::EncoderOnly`].
    pub fn build(&self, p: &nn::Path) -> Result<Box<dyn CausalLm>, ArchError> {
        Ok(match self {
            Self::Llama(cfg) => Box::new(llama::Llama::new(p, cfg).map_err(ArchError::Invalid)?),
            Self::Gpt2(cfg) => Box::new(gpt2::Gpt2::new(p, cfg).map_err(ArchError::Invalid)?),
            Self::Bert(_) => return Err(ArchError::EncoderOnly(self.name())),
        })
    }

    /// Creates the backbone alone (no output head) under `p`, at the path HF's
    /// `*ForSequenceClassification` models keep it (`model.`, `transformer.` or `bert.`).
    pub fn build_backbone(&self, p: &nn::Path) -> Result<Box<dyn Backbone>, ArchError> {
        Ok(match self {
            Self::Llama(cfg) => {
                Box::new(llama::LlamaModel::new(&(p / "model"), cfg).map_err(ArchError::Invalid)?)
            }
            Self::Gpt2(cfg) => Box::new(
                gpt2::Gpt2Model::new(&(p / "transformer"), cfg).map_err(ArchError::Invalid)?,
            ),
            Self::Bert(cfg) => {
                Box::new(bert::BertModel::new(&(p / "bert"), cfg).map_err(ArchError::Invalid)?)
            }
        })
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> i64 {
        match self {
            Self::Llama(cfg) => cfg.hidden_size,
            Self::Gpt2(cfg) => cfg.n_embd,
            Self::Bert(cfg) => cfg.hidden_size,
        }
    }
}

/// Why a config does not describe a model we can build.
#[derive(Debug)]
pub enum ArchError {
    /// Unknown `model_type`.
    Unsupported(String),
    /// Malformed or inconsistent fields.
    Invalid(String),
    /// An encoder (named) asked to be a causal LM.
    EncoderOnly(&'static str),
}
