//! The supported architectures, one file each, chosen by `model_type` in HF `config.json`.

pub mod gpt2;
pub mod llama;
pub mod qwen2;

use tch::nn;

use crate::{Backbone, CausalLm};

/// `model_type` values we implement.
pub const SUPPORTED: &[&str] = &["gpt2", "llama", "mistral", "qwen2"];

/// A parsed architecture config.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per loaded model; boxing would only add noise
pub enum ArchConfig {
    /// Llama, Mistral, SmolLM2 (and Qwen2, with q/k/v bias).
    Llama(llama::Config),
    /// GPT-2.
    Gpt2(gpt2::Config),
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
            "" => return Err(ArchError::Invalid("no \"model_type\" field".into())),
            _ => return Err(ArchError::Unsupported(model_type)),
        };
        match &config {
            Self::Llama(cfg) => cfg.validate(),
            Self::Gpt2(cfg) => cfg.validate(),
        }
        .map_err(ArchError::Invalid)?;
        Ok(config)
    }

    /// Short architecture name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Llama(_) => "llama",
            Self::Gpt2(_) => "gpt2",
        }
    }

    /// Creates the causal LM's variables under `p` (HF `*ForCausalLM` names).
    pub fn build(&self, p: &nn::Path) -> Result<Box<dyn CausalLm>, ArchError> {
        Ok(match self {
            Self::Llama(cfg) => Box::new(llama::Llama::new(p, cfg).map_err(ArchError::Invalid)?),
            Self::Gpt2(cfg) => Box::new(gpt2::Gpt2::new(p, cfg).map_err(ArchError::Invalid)?),
        })
    }

    /// Creates the backbone alone (no output head) under `p`, at the path HF's
    /// `*ForSequenceClassification` models keep it (`model.` or `transformer.`).
    pub fn build_backbone(&self, p: &nn::Path) -> Result<Box<dyn Backbone>, ArchError> {
        Ok(match self {
            Self::Llama(cfg) => {
                Box::new(llama::LlamaModel::new(&(p / "model"), cfg).map_err(ArchError::Invalid)?)
            }
            Self::Gpt2(cfg) => Box::new(
                gpt2::Gpt2Model::new(&(p / "transformer"), cfg).map_err(ArchError::Invalid)?,
            ),
        })
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> i64 {
        match self {
            Self::Llama(cfg) => cfg.hidden_size,
            Self::Gpt2(cfg) => cfg.n_embd,
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
}
