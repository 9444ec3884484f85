//! The supported architectures, one file each, chosen by `model_type` in HF `config.json`.

pub mod llama;
pub mod qwen2;

use tch::nn;

use crate::CausalLm;

/// `model_type` values we implement.
pub const SUPPORTED: &[&str] = &["llama", "mistral", "qwen2"];

/// A parsed architecture config.
#[derive(Debug, Clone)]
pub enum ArchConfig {
    /// Llama, Mistral, SmolLM2 (and Qwen2, with q/k/v bias).
    Llama(llama::Config),
}

impl ArchConfig {
    /// Parses `config.json` contents; the error is a message for [`crate::ModelError::Config`].
    pub fn from_json(json: serde_json::Value) -> Result<Self, ArchError> {
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let parsed = match model_type.as_str() {
            "llama" | "mistral" => serde_json::from_value(json),
            "qwen2" => qwen2::config(json),
            "" => return Err(ArchError::Invalid("no \"model_type\" field".into())),
            _ => return Err(ArchError::Unsupported(model_type)),
        };
        let cfg = parsed.map_err(|e| ArchError::Invalid(e.to_string()))?;
        cfg.validate().map_err(ArchError::Invalid)?;
        Ok(Self::Llama(cfg))
    }

    /// Creates the model's variables under `p`.
    pub fn build(&self, p: &nn::Path) -> Result<Box<dyn CausalLm>, ArchError> {
        match self {
            Self::Llama(cfg) => Ok(Box::new(
                llama::Llama::new(p, cfg).map_err(ArchError::Invalid)?,
            )),
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
