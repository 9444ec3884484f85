//! Resolving what the user names as a model — a built-in name, an HF directory or a `.gguf` file —
//! and loading it.

use std::path::{Path, PathBuf};

use tch::{Device, Kind};

use crate::{ModelError, hf, tokenizer::Tokenizer};

/// Built-in models: name → file or folder in the model cache (`scripts/fetch-model.sh` and
/// `scripts/fetch-minilm.sh` put them there).
pub const BUILTIN: &[(&str, &str)] = &[
    ("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("all-minilm-l6-v2", "all-MiniLM-L6-v2"),
];

/// The model cache: `$RL_CACHE/models`, default `~/.cache/rl/models`.
pub fn cache_dir() -> PathBuf {
    let root = std::env::var_os("RL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/rl")
        });
    root.join("models")
}

/// The file or directory `name` refers to: a built-in name's cached file, else the path itself.
pub fn resolve(name: &str) -> Result<PathBuf, ModelError> {
    if let Some((_, file)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        let path = cache_dir().join(file);
        return if path.exists() {
            Ok(path)
        } else {
            Err(ModelError::NotFetched {
                name: name.to_owned(),
                path,
            })
        };
    }
    let path = Path::new(name);
    if path.exists() {
        Ok(path.to_owned())
    } else {
        Err(ModelError::NotFound {
            name: name.to_owned(),
        })
    }
}

/// Loads the model `name` — built-in name, HF directory or `.gguf` file — onto `device` in `kind`.
pub fn load(name: &str, device: Device, kind: Kind) -> Result<hf::LoadedModel, ModelError> {
    let path = resolve(name)?;
    if path.is_dir() {
        return hf::load_dir(&path, device, kind);
    }
    if path.extension().is_some_and(|e| e == "gguf") {
        return crate::gguf::load_gguf(&path, device, kind);
    }
    Err(ModelError::NotAModel { path })
}

/// The tokenizer (with chat template) of the model `name`: `tokenizer.json` and its configs from
/// an HF directory, or the metadata of a `.gguf` file.
pub fn load_tokenizer(name: &str) -> Result<Tokenizer, ModelError> {
    let path = resolve(name)?;
    if path.is_dir() {
        Ok(Tokenizer::from_dir(&path)?)
    } else {
        Ok(Tokenizer::from_gguf_file(&path)?)
    }
}
