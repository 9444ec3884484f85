//! Loading HF model directories: `config.json` plus one or many (`model.safetensors.index.json`)
//! memory-mapped safetensors files, copied tensor by tensor into a tch `VarStore`.

use std::{
    collections::BTreeSet,
    fs::File,
    path::{Path, PathBuf},
};

use memmap2::Mmap;
use safetensors::SafeTensors;
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::{
    CausalLm, ModelError,
    arch::{ArchConfig, ArchError},
};

/// A model with its weights, ready to run.
pub struct LoadedModel {
    /// The network.
    pub model: Box<dyn CausalLm>,
    /// Its variables (the handle for training, export and weight sync).
    pub vs: VarStore,
    /// The parsed architecture config.
    pub config: ArchConfig,
    /// `config.json` as read (every field kept, for export).
    pub config_json: serde_json::Value,
    /// Where it was loaded from (tokenizer and template files are found there).
    pub source: PathBuf,
}

/// Loads the HF model directory `dir` onto `device` in precision `kind`.
pub fn load_dir(dir: &Path, device: Device, kind: Kind) -> Result<LoadedModel, ModelError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
        path: config_path.clone(),
        source,
    })?;
    let bad = |message: String| ModelError::Config {
        path: config_path.clone(),
        message,
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let config = ArchConfig::from_json(json.clone()).map_err(|e| match e {
        ArchError::Unsupported(model_type) => ModelError::Unsupported { model_type },
        ArchError::Invalid(message) => bad(message),
    })?;
    let mut vs = VarStore::new(device);
    let model = config
        .build(&vs.root())
        .map_err(|e| bad(format!("{e:?}")))?;
    let files = weight_files(dir)?;
    let maps = files
        .iter()
        .map(|path| {
            let file = File::open(path).map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY: the file is only read; a concurrent writer could change the bytes we copy,
            // never memory safety of our own data, since every view is copied into a tensor.
            #[allow(unsafe_code)]
            let map = unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })?;
            Ok((path.clone(), map))
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    let parsed = maps
        .iter()
        .map(|(path, map)| {
            SafeTensors::deserialize(map)
                .map(|st| (path, st))
                .map_err(|e| ModelError::Weights {
                    path: path.clone(),
                    message: format!("{e:?}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let arch = config.name();
    tch::no_grad(|| -> Result<(), ModelError> {
        let variables: std::collections::BTreeMap<_, _> = vs.variables().into_iter().collect(); // deterministic errors
        for (name, mut var) in variables {
            let (path, view) = parsed
                .iter()
                .find_map(|(path, st)| st.tensor(&name).ok().map(|v| (*path, v)))
                .ok_or_else(|| ModelError::MissingTensor {
                    name: name.clone(),
                    path: dir.to_owned(),
                    arch: arch.into(),
                })?;
            let found: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if found != var.size() {
                return Err(ModelError::Shape {
                    name,
                    path: path.clone(),
                    expected: var.size(),
                    found,
                });
            }
            let src_kind = match view.dtype() {
                safetensors::Dtype::F32 => Kind::Float,
                safetensors::Dtype::F16 => Kind::Half,
                safetensors::Dtype::BF16 => Kind::BFloat16,
                other => {
                    let message =
                        format!("tensor {name:?} has dtype {other:?}; expected F32, F16 or BF16");
                    return Err(ModelError::Weights {
                        path: path.clone(),
                        message,
                    });
                }
            };
            let src = Tensor::f_from_data_size(view.data(), &found, src_kind)?;
            var.f_copy_(&src)?;
        }
        Ok(())
    })?;
    vs.set_kind(kind);
    Ok(LoadedModel {
        model,
        vs,
        config,
        config_json: json,
        source: dir.to_owned(),
    })
}

/// The safetensors files of `dir`: those the index names, else `model.safetensors`, else every
/// `*.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Weights {
                path: index.clone(),
                message: e.to_string(),
            })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Weights {
                path: index.clone(),
                message: "no \"weight_map\" object".into(),
            })?;
        let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        return Ok(names.into_iter().map(|n| dir.join(n)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ModelError::Io {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ModelError::NotAModel {
            path: dir.to_owned(),
        });
    }
    Ok(files)
}
