//! Export to an HF model directory — `model.safetensors`, `config.json`, and the tokenizer and
//! chat-template files of the source — that `transformers.AutoModelForCausalLM.from_pretrained`
//! loads. Trained-policy checkpoints use the same format, and so do reward models
//! ([`crate::heads::ScalarModel::save_dir`]).

use std::path::Path;

use tch::{Kind, Tensor, nn::VarStore};

use crate::{ModelError, hf::LoadedModel, tokenizer::Tokenizer};

/// Files copied from the source directory when present.
pub const SIDE_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "vocab.txt",
];

/// Writes `model` into `out` (created; must be absent or empty), weights in `kind`.
pub fn save_hf_dir(model: &LoadedModel, out: &Path, kind: Kind) -> Result<(), ModelError> {
    write_hf_dir(&model.vs, &model.config_json, &model.source, out, kind)
}

/// Writes the variables of `vs` as `out/model.safetensors` in `kind`, `config_json` (its dtype
/// set to `kind`) as `out/config.json`, and the tokenizer of `source` (an HF directory's
/// [`SIDE_FILES`], or a GGUF's metadata). `out` is created and must be absent or empty.
pub fn write_hf_dir(
    vs: &VarStore,
    config_json: &serde_json::Value,
    source: &Path,
    out: &Path,
    kind: Kind,
) -> Result<(), ModelError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ModelError::Io { path, source }
    };
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(ModelError::OutputNotEmpty {
            path: out.to_owned(),
        });
    }
    std::fs::create_dir_all(out).map_err(io(out))?;

    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            (
                name,
                t.detach()
                    .to_device(tch::Device::Cpu)
                    .to_kind(kind)
                    .contiguous(),
            )
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let weights = out.join("model.safetensors");
    Tensor::write_safetensors(&named, &weights)?;

    let mut config = config_json.clone();
    if let Some(obj) = config.as_object_mut() {
        let dtype = match kind {
            Kind::BFloat16 => "bfloat16",
            Kind::Half => "float16",
            _ => "float32",
        };
        obj.insert("dtype".into(), dtype.into());
        obj.insert("torch_dtype".into(), dtype.into());
    }
    let config_path = out.join("config.json");
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    std::fs::write(&config_path, text + "\n").map_err(io(&config_path))?;

    if source.extension().is_some_and(|e| e == "gguf") {
        write_gguf_tokenizer(source, out)?;
    }
    for name in SIDE_FILES {
        let src = source.join(name);
        if src.is_file() {
            std::fs::copy(&src, out.join(name)).map_err(io(&src))?;
        }
    }
    Ok(())
}

/// Writes the tokenizer of a GGUF source as HF files: `tokenizer.json`, `tokenizer_config.json`
/// (special tokens, chat template) and `generation_config.json` (stop ids).
fn write_gguf_tokenizer(gguf: &Path, out: &Path) -> Result<(), ModelError> {
    let tok = Tokenizer::from_gguf_file(gguf)?;
    let path = out.join("tokenizer.json");
    tok.inner().save(&path, false).map_err(|e| ModelError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let specials = tok.special_tokens();
    let mut config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": specials.bos, "eos_token": specials.eos, "pad_token": specials.pad, "unk_token": specials.unk,
        "add_bos_token": specials.add_bos,
        "clean_up_tokenization_spaces": false,
    });
    if let Ok(template) = tok.chat_template() {
        config["chat_template"] = template.source().into();
    }
    let generation = serde_json::json!({
        "bos_token_id": tok.bos_id(), "eos_token_id": tok.eos_ids(), "pad_token_id": tok.pad_id(),
    });
    for (name, json) in [
        ("tokenizer_config.json", config),
        ("generation_config.json", generation),
    ] {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
        std::fs::write(&path, text).map_err(|source| ModelError::Io { path, source })?;
    }
    Ok(())
}
