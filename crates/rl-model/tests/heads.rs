//! Scalar heads against transformers' `LlamaForSequenceClassification` (one label): per-token
//! values and the reward at each row's last real token, on right- and left-padded rows.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::path::Path;

mod common;

use common::{read_json, rows, tensor, transformers};
use rl_model::heads::ScalarModel;
use tch::{Device, Kind, Tensor};

#[test]
fn values_and_rewards_match_transformers_sequence_classification() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama-rm");
    let reference = read_json(&dir.join("reference.json"));
    let model = ScalarModel::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
    let ids = tensor(&reference, "input_ids", Kind::Int64);
    let mask = tensor(&reference, "attention_mask", Kind::Int64);
    let (values, rewards) =
        tch::no_grad(|| (model.values(&ids, &mask), model.rewards(&ids, &mask)));
    let err = (values - tensor(&reference, "values", Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-4, "values differ by {err:e}");
    let err = (rewards - tensor(&reference, "rewards", Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-4, "rewards differ by {err:e}");
}

#[test]
fn a_critic_from_a_policy_shares_its_backbone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama");
    let policy = rl_model::hf::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
    let critic = ScalarModel::from_policy(&policy, Device::Cpu).unwrap();
    let ids = Tensor::from_slice(&[5i64, 9, 17, 3]).reshape([1, 4]);
    let mask = Tensor::ones([1, 4], (Kind::Int64, Device::Cpu));
    let (ours, theirs) = tch::no_grad(|| {
        (
            critic.backbone.hidden_states(&ids, &mask),
            policy.model.hidden_states(&ids, &mask),
        )
    });
    assert!(
        ours.allclose(&theirs, 1e-6, 1e-6, false),
        "backbone copied from the policy"
    );
    assert_eq!(critic.values(&ids, &mask).size(), [1, 4]);
    let names = critic.vs.variables();
    assert!(names.contains_key("score.weight") && !names.contains_key("lm_head.weight"));
}

#[test]
fn a_saved_decoder_reward_model_reloads_exactly_and_loads_in_transformers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama-rm");
    let reference = read_json(&dir.join("reference.json"));
    let model = ScalarModel::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rm");
    model.save_dir(&out, Kind::Float).unwrap();
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        config["architectures"],
        serde_json::json!(["LlamaForSequenceClassification"])
    );
    let reloaded = ScalarModel::load_dir(&out, Device::Cpu, Kind::Float).unwrap();
    let ids = tensor(&reference, "input_ids", Kind::Int64);
    let mask = tensor(&reference, "attention_mask", Kind::Int64);
    let (ours, again) =
        tch::no_grad(|| (model.rewards(&ids, &mask), reloaded.rewards(&ids, &mask)));
    assert!(ours.equal(&again), "reloaded rewards differ");
    let theirs = transformers(
        "scores",
        &out,
        &serde_json::json!({"input_ids": rows(&ids), "attention_mask": rows(&mask)}),
    );
    assert_eq!(theirs["class"], "LlamaForSequenceClassification");
    let theirs: Vec<f64> = serde_json::from_value(theirs["scores"].clone()).unwrap();
    let err = (ours - Tensor::from_slice(&theirs).to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-4, "transformers scores the export {err:e} apart");
}

#[test]
fn a_missing_head_tensor_is_named() {
    // A causal-LM checkpoint is not a reward model: its score head is absent.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama");
    let err = match ScalarModel::load_dir(&dir, Device::Cpu, Kind::Float) {
        Ok(_) => panic!("a causal LM loaded as a reward model"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("no tensor \"score.weight\""), "{err}");
}

fn tiny_bert() -> serde_json::Value {
    serde_json::json!({"model_type": "bert", "vocab_size": 64, "hidden_size": 16,
        "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "max_position_embeddings": 32})
}

#[test]
fn a_bert_reward_model_starts_from_a_bare_or_a_classifier_checkpoint() {
    tch::manual_seed(1);
    let rm = ScalarModel::from_config(tiny_bert(), Device::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // A bare `BertModel` checkpoint: unprefixed names, no classifier.
    let bare_dir = tmp.path().join("bare");
    std::fs::create_dir(&bare_dir).unwrap();
    std::fs::write(bare_dir.join("config.json"), tiny_bert().to_string()).unwrap();
    let bare: Vec<(String, Tensor)> = rm
        .vs
        .variables()
        .into_iter()
        .filter_map(|(n, t)| Some((n.strip_prefix("bert.")?.to_owned(), t)))
        .collect();
    Tensor::write_safetensors(&bare, bare_dir.join("model.safetensors")).unwrap();
    let classifier_dir = tmp.path().join("rm");
    rm.save_dir(&classifier_dir, Kind::Float).unwrap();

    let ids = Tensor::from_slice(&[2i64, 9, 17, 3, 0, 0]).reshape([2, 3]);
    let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 0, 0]).reshape([2, 3]);
    let want = tch::no_grad(|| rm.backbone.hidden_states(&ids, &mask));
    for dir in [&bare_dir, &classifier_dir] {
        let fresh = ScalarModel::from_backbone_dir(dir, Device::Cpu).unwrap();
        let got = tch::no_grad(|| fresh.backbone.hidden_states(&ids, &mask));
        assert!(got.equal(&want), "{}: backbone not loaded", dir.display());
        assert!(got.isfinite().all().int64_value(&[]) == 1);
    }

    // A checkpoint lacking a tensor is named by the bare name a BertModel would have.
    let missing: Vec<_> = bare
        .into_iter()
        .filter(|(n, _)| n != "encoder.layer.1.output.dense.weight")
        .collect();
    Tensor::write_safetensors(&missing, bare_dir.join("model.safetensors")).unwrap();
    let err = match ScalarModel::from_backbone_dir(&bare_dir, Device::Cpu) {
        Ok(_) => panic!("a checkpoint without a layer loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("no tensor \"encoder.layer.1.output.dense.weight\""),
        "{err}"
    );
}
