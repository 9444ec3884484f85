//! GGUF → tch: builds the HF-layout model a GGUF file describes (Llama family and Qwen2) and fills
//! it with the file's tensors dequantised to f32. llama.cpp's converter permutes the rows of the
//! Llama q/k projections into its interleaved RoPE layout; they are permuted back here.

use std::path::Path;

use rl_gguf::{GgufError, GgufFile};
use serde_json::json;
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::{ModelError, arch::ArchConfig, hf::LoadedModel};

impl From<GgufError> for ModelError {
    fn from(e: GgufError) -> Self {
        ModelError::Gguf(e)
    }
}

/// Loads the GGUF file `path` onto `device` in precision `kind`.
pub fn load_gguf(path: &Path, device: Device, kind: Kind) -> Result<LoadedModel, ModelError> {
    let gguf = GgufFile::open(path)?;
    let config_json = hf_config(&gguf)?;
    let config = ArchConfig::from_json(config_json.clone()).map_err(|e| ModelError::Config {
        path: path.to_owned(),
        message: format!("{e:?}"),
    })?;
    let mut vs = VarStore::new(device);
    let model = config.build(&vs.root()).map_err(|e| ModelError::Config {
        path: path.to_owned(),
        message: format!("{e:?}"),
    })?;
    let arch = gguf.metadata().get_str("general.architecture")?.to_owned();
    // hf_config only describes Llama-family models.
    let ArchConfig::Llama(llama) = &config else {
        let message = "GGUF files are read as Llama-family models only".into();
        return Err(ModelError::Config {
            path: path.to_owned(),
            message,
        });
    };
    let (heads, kv_heads) = (llama.num_attention_heads, llama.kv_heads());
    let mut variables: Vec<_> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| -> Result<(), ModelError> {
        for (name, mut var) in variables {
            let gguf_name = gguf_name(&name).ok_or_else(|| ModelError::MissingTensor {
                name: name.clone(),
                path: path.to_owned(),
                arch: arch.clone(),
            })?;
            let (data, shape) = gguf.tensor_f32(&gguf_name)?;
            let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            if shape != var.size() {
                return Err(ModelError::Shape {
                    name: gguf_name,
                    path: path.to_owned(),
                    expected: var.size(),
                    found: shape,
                });
            }
            let mut t = Tensor::f_from_slice(&data)?.f_reshape(&shape)?;
            if arch == "llama" && gguf_name.ends_with("attn_q.weight") {
                t = unpermute(&t, heads);
            } else if arch == "llama" && gguf_name.ends_with("attn_k.weight") {
                t = unpermute(&t, kv_heads);
            }
            var.f_copy_(&t)?;
        }
        Ok(())
    })?;
    vs.set_kind(kind);
    Ok(LoadedModel {
        model,
        vs,
        config,
        config_json,
        source: path.to_owned(),
    })
}

/// Undoes llama.cpp's `permute`: rows `[heads, d/2, 2, in]` (pairs interleaved) back to HF's
/// `[heads, 2, d/2, in]` (halves). `w` `[heads * d, in]`.
fn unpermute(w: &Tensor, heads: i64) -> Tensor {
    let (rows, cols) = (w.size()[0], w.size()[1]);
    w.reshape([heads, rows / heads / 2, 2, cols])
        .transpose(1, 2)
        .reshape([rows, cols])
}

/// The GGUF tensor holding HF variable `name`; `None` for names no GGUF Llama has.
fn gguf_name(name: &str) -> Option<String> {
    if name == "lm_head.weight" {
        return Some("output.weight".into());
    }
    let rest = name.strip_prefix("model.")?;
    let fixed = match rest {
        "embed_tokens.weight" => Some("token_embd.weight"),
        "norm.weight" => Some("output_norm.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.into());
    }
    let rest = rest.strip_prefix("layers.")?;
    let (layer, leaf) = rest.split_once('.')?;
    let (module, param) = leaf.rsplit_once('.')?;
    let gguf = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf}.{param}"))
}

/// The HF `config.json` equivalent of the GGUF metadata (also what `rl convert` writes).
fn hf_config(gguf: &GgufFile) -> Result<serde_json::Value, ModelError> {
    let md = gguf.metadata();
    let arch = md.get_str("general.architecture")?;
    let (model_type, architectures) = match arch {
        "llama" => ("llama", "LlamaForCausalLM"),
        "qwen2" => ("qwen2", "Qwen2ForCausalLM"),
        other => {
            return Err(ModelError::Unsupported {
                model_type: format!("{other} (GGUF)"),
            });
        }
    };
    if gguf.tensors().iter().any(|t| t.name == "rope_freqs.weight") {
        let message = "per-frequency RoPE factors (rope_freqs, Llama-3.1 long context) are not supported from GGUF; \
                       load the HF checkpoint instead"
            .into();
        return Err(ModelError::Config {
            path: gguf.path().to_owned(),
            message,
        });
    }
    let key = |k: &str| format!("{arch}.{k}");
    let vocab = match md.get_u32(&key("vocab_size")) {
        Ok(v) => v as usize,
        Err(_) => md.get_str_array("tokenizer.ggml.tokens")?.len(),
    };
    let heads = md.get_u32(&key("attention.head_count"))?;
    let tied = !gguf.tensors().iter().any(|t| t.name == "output.weight");
    let mut config = json!({
        "architectures": [architectures],
        "model_type": model_type,
        "vocab_size": vocab,
        "hidden_size": md.get_u32(&key("embedding_length"))?,
        "intermediate_size": md.get_u32(&key("feed_forward_length"))?,
        "num_hidden_layers": md.get_u32(&key("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": md.get_u32(&key("attention.head_count_kv")).unwrap_or(heads),
        "rms_norm_eps": md.get_f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
        "rope_theta": md.get_f32(&key("rope.freq_base")).map(f64::from).unwrap_or(10_000.0),
        "max_position_embeddings": md.get_u32(&key("context_length")).unwrap_or(2048),
        "tie_word_embeddings": tied,
    });
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
    ] {
        if let Ok(id) = md.get_u32(gguf_key) {
            config[hf_key] = id.into();
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_llama_weight_name() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
            (
                "model.layers.3.self_attn.q_proj.weight",
                "blk.3.attn_q.weight",
            ),
            ("model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"),
            (
                "model.layers.12.mlp.down_proj.weight",
                "blk.12.ffn_down.weight",
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "blk.0.ffn_norm.weight",
            ),
        ];
        for (hf, gguf) in cases {
            assert_eq!(gguf_name(hf).as_deref(), Some(gguf), "{hf}");
        }
        assert_eq!(gguf_name("model.layers.0.rotary.inv_freq"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let (heads, d, cols) = (3, 4, 2);
        let hf =
            Tensor::arange(heads * d * cols, (Kind::Float, Device::Cpu)).reshape([heads * d, cols]);
        // llama.cpp: reshape(heads, 2, d/2, cols).swapaxes(1, 2)
        let gguf = hf
            .reshape([heads, 2, d / 2, cols])
            .transpose(1, 2)
            .reshape([heads * d, cols]);
        assert!(unpermute(&gguf, heads).equal(&hf));
    }
}
