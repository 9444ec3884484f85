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
