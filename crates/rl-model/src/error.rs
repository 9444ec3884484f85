//! Errors of loading and running models: each names the file or tensor at fault and the fix.

use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `config.json` is malformed or lacks a field.
    #[error("model config {} is not valid: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The architecture is not one we implement.
    #[error("model type {model_type:?} is not supported; supported: {}", crate::arch::SUPPORTED.join(", "))]
    Unsupported {
        /// `model_type` from the config.
        model_type: String,
    },
    /// An encoder (BERT) where a causal LM (a policy) is needed.
    #[error(
        "{} holds a {arch} model: {arch} is an encoder; it can only be a reward model backbone, not a policy",
        path.display()
    )]
    EncoderOnly {
        /// The model directory.
        path: PathBuf,
        /// Its architecture.
        arch: String,
    },
    /// Nothing by that name.
    #[error(
        "no model {name:?}: expected a built-in name (smollm2-135m-instruct), an HF model directory or a .gguf file"
    )]
    NotFound {
        /// What was asked for.
        name: String,
    },
    /// A built-in model that has not been downloaded yet.
    #[error("built-in model {name:?} is not downloaded (expected at {}); run scripts/fetch-model.sh for SmolLM2 or scripts/fetch-minilm.sh for all-MiniLM-L6-v2 (`make test` fetches both)", path.display())]
    NotFetched {
        /// The name.
        name: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// The path is neither a model directory nor a model file.
    #[error("{} is not a model: expected an HF directory (config.json + *.safetensors) or a .gguf file", path.display())]
    NotAModel {
        /// The path.
        path: PathBuf,
    },
    /// A weights file is malformed.
    #[error("weights file {} is not valid safetensors: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("checkpoint {} has no tensor {name:?}; is it a {arch} checkpoint?", path.display())]
    MissingTensor {
        /// Tensor name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// The architecture expecting it.
        arch: String,
    },
    /// A tensor has another shape than the config implies.
    #[error("tensor {name:?} in {} has shape {found:?}, but config.json implies {expected:?}", path.display())]
    Shape {
        /// Tensor name.
        name: String,
        /// Where it is.
        path: PathBuf,
        /// Shape from the config.
        expected: Vec<i64>,
        /// Shape in the file.
        found: Vec<i64>,
    },
    /// Export would overwrite something.
    #[error("output directory {} is not empty; choose a new directory so nothing is overwritten", path.display())]
    OutputNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A GGUF file could not be read.
    #[error(transparent)]
    Gguf(rl_gguf::GgufError),
    /// The model's tokenizer could not be loaded or used.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// libtorch raised an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
