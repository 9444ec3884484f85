//! Resolving what the user names as a model — an HF directory, a `.gguf` file or a built-in name —
//! and loading it.

use std::path::Path;

use tch::{Device, Kind};

use crate::{ModelError, hf};

/// Loads the model `name` — an HF directory or a `.gguf` file — onto `device` in precision `kind`.
pub fn load(name: &str, device: Device, kind: Kind) -> Result<hf::LoadedModel, ModelError> {
    let path = Path::new(name);
    if path.is_dir() {
        return hf::load_dir(path, device, kind);
    }
    if path.is_file() && path.extension().is_some_and(|e| e == "gguf") {
        return crate::gguf_model::load_gguf(path, device, kind);
    }
    if !path.exists() {
        return Err(ModelError::NotFound {
            name: name.to_owned(),
        });
    }
    Err(ModelError::NotAModel {
        path: path.to_owned(),
    })
}
