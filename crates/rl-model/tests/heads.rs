//! Scalar heads against transformers' `LlamaForSequenceClassification` (one label): per-token
//! values and the reward at each row's last real token, on right- and left-padded rows.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::path::Path;

mod common;

use common::{read_json, tensor};
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
