//! Broken model directories get errors that name the file or tensor at fault.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::path::Path;

use rl_model::{ModelError, hf};
use tch::{Device, Kind, Tensor};

fn tiny_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama");
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> String {
    match hf::load_dir(dir, Device::Cpu, Kind::Float) {
        Ok(_) => panic!("{} should not load", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(path, json.to_string()).unwrap();
}

#[test]
fn a_directory_without_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("cannot read") && msg.contains("config.json"),
        "{msg}"
    );
}

#[test]
fn an_unsupported_architecture_lists_the_supported_ones() {
    let dir = tiny_copy();
    edit_config(dir.path(), |c| c["model_type"] = "mamba".into());
    let msg = load_err(dir.path());
    assert!(
        msg.contains("\"mamba\" is not supported") && msg.contains("llama, mistral, qwen2"),
        "{msg}"
    );
}

#[test]
fn inconsistent_heads_are_explained() {
    let dir = tiny_copy();
    edit_config(dir.path(), |c| c["num_key_value_heads"] = 3.into());
    let msg = load_err(dir.path());
    assert!(
        msg.contains(
            "num_attention_heads = 4 must be a positive multiple of num_key_value_heads = 3"
        ),
        "{msg}"
    );
}

#[test]
fn a_shape_mismatch_names_the_tensor_and_both_shapes() {
    let dir = tiny_copy();
    edit_config(dir.path(), |c| c["intermediate_size"] = 80.into());
    let msg = load_err(dir.path());
    assert!(
        msg.contains("layers.0.mlp.down_proj.weight")
            && msg.contains("[64, 96]")
            && msg.contains("[64, 80]"),
        "{msg}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tiny_copy();
    let path = dir.path().join("model.safetensors");
    let tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != "model.norm.weight")
        .collect();
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("no tensor \"model.norm.weight\""), "{msg}");
}

#[test]
fn a_corrupt_weights_file_is_named() {
    let dir = tiny_copy();
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = hf::load_dir(dir.path(), Device::Cpu, Kind::Float)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Weights { .. }), "{err}");
}

/// A checkpoint split over two shards with `model.safetensors.index.json` loads to the same model.
#[test]
fn sharded_checkpoints_load_through_their_index() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let tensors = Tensor::read_safetensors(src.join("model.safetensors")).unwrap();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        Tensor::write_safetensors(part, dir.path().join(file)).unwrap();
        for (name, _) in part {
            weight_map.insert(name.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let sharded = hf::load_dir(dir.path(), Device::Cpu, Kind::Float).unwrap();
    let whole = hf::load_dir(&src, Device::Cpu, Kind::Float).unwrap();
    let ids = Tensor::from_slice(&[3i64, 14, 15, 92, 65]).reshape([1, 5]);
    let mask = ids.ones_like();
    let (a, b) = tch::no_grad(|| {
        (
            sharded.model.hidden_states(&ids, &mask),
            whole.model.hidden_states(&ids, &mask),
        )
    });
    assert!(a.equal(&b), "sharded and single-file loads differ");
}

#[test]
fn a_bert_directory_is_refused_as_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"model_type": "bert", "vocab_size": 64, "hidden_size": 16,
        "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "max_position_embeddings": 32});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("bert is an encoder; it can only be a reward model backbone"),
        "{msg}"
    );
    edit_config(dir.path(), |c| c["hidden_act"] = "relu".into());
    let msg = load_err(dir.path());
    assert!(
        msg.contains("hidden_act \"relu\" is not supported"),
        "{msg}"
    );
}
