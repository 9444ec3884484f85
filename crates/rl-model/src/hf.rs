//! Loading HF model directories: `config.json` plus one or many (`model.safetensors.index.json`)
//! memory-mapped safetensors files, copied tensor by tensor into a tch `VarStore`.

use std::{
    collections::{BTreeMap, BTreeSet},
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

/// A causal LM with its weights, ready to run.
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

impl LoadedModel {
    /// A freshly initialised model of the HF config `config_json` on `device` in `kind`, for
    /// tests and benchmarks (seed it with `tch::manual_seed`). The weights are what the
    /// architecture starts from before a checkpoint is copied in: an untied output head is 0.
    pub fn random(
        config_json: serde_json::Value,
        device: Device,
        kind: Kind,
    ) -> Result<Self, ArchError> {
        let config = ArchConfig::from_json(config_json.clone())?;
        let mut vs = VarStore::new(device);
        let model = config.build(&vs.root())?;
        vs.set_kind(kind);
        Ok(Self {
            model,
            vs,
            config,
            config_json,
            source: "random".into(),
        })
    }
}

/// Loads the HF causal-LM directory `dir` onto `device` in precision `kind`.
pub fn load_dir(dir: &Path, device: Device, kind: Kind) -> Result<LoadedModel, ModelError> {
    let (config, config_json) = read_config(dir)?;
    let mut vs = VarStore::new(device);
    let model = config.build(&vs.root()).map_err(|e| arch_error(dir, e))?;
    load_weights(&vs, dir, config.name())?;
    vs.set_kind(kind);
    Ok(LoadedModel {
        model,
        vs,
        config,
        config_json,
        source: dir.to_owned(),
    })
}

/// Reads and checks `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<(ArchConfig, serde_json::Value), ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let config = ArchConfig::from_json(json.clone()).map_err(|e| arch_error(dir, e))?;
    Ok((config, json))
}

pub(crate) fn arch_error(dir: &Path, e: ArchError) -> ModelError {
    match e {
        ArchError::EncoderOnly(arch) => ModelError::EncoderOnly {
            path: dir.to_owned(),
            arch: arch.into(),
        },
        ArchError::Unsupported(model_type) => ModelError::Unsupported { model_type },
        ArchError::Invalid(message) => ModelError::Config {
            path: dir.join("config.json"),
            message,
        },
    }
}

/// Fills every variable of `vs` from the safetensors files of `dir`, checking names and shapes.
/// Tensors the model does not use (e.g. rotary buffers) are ignored.
pub fn load_weights(vs: &VarStore, dir: &Path, arch: &str) -> Result<(), ModelError> {
    load_weights_mapped(vs, dir, arch, |name| Some(name.to_owned()))
}

/// [`load_weights`] where variable `v` is read from the checkpoint tensor `checkpoint_name(v)`,
/// and left as it is when that is `None` (e.g. a fresh head on a pretrained backbone, or a
/// `bert.`-prefixed variable read from a bare `BertModel` checkpoint).
pub fn load_weights_mapped(
    vs: &VarStore,
    dir: &Path,
    arch: &str,
    checkpoint_name: impl Fn(&str) -> Option<String>,
) -> Result<(), ModelError> {
    let files = weight_files(dir)?;
    let maps = files
        .iter()
        .map(|path| map_file(path).map(|m| (path, m)))
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = maps
        .iter()
        .map(|(path, map)| {
            SafeTensors::deserialize(map)
                .map(|st| (*path, st))
                .map_err(|e| ModelError::Weights {
                    path: path.to_path_buf(),
                    message: format!("{e:?}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let variables: BTreeMap<_, _> = vs.variables().into_iter().collect(); // sorted: deterministic errors
    tch::no_grad(|| {
        for (var_name, mut var) in variables {
            let Some(name) = checkpoint_name(&var_name) else {
                continue;
            };
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
            var.f_copy_(&Tensor::f_from_data_size(view.data(), &found, src_kind)?)?;
        }
        Ok(())
    })
}

fn map_file(path: &Path) -> Result<Mmap, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the map is only read, and every view is copied into a tensor before the map is
    // dropped; a concurrent writer could change the bytes copied, never our memory safety.
    #[allow(unsafe_code)]
    unsafe { Mmap::map(&file) }.map_err(io)
}

/// The safetensors files of `dir`: those the index names, else `model.safetensors`, else every
/// `*.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let bad = |message: String| ModelError::Weights {
            path: index.clone(),
            message,
        };
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
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
