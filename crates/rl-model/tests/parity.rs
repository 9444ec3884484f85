//! Per-token log-probs and entropies of tiny random checkpoints against transformers' values
//! (stored by scripts/parity/make_tiny_models.py; f32, CPU).

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::path::{Path, PathBuf};

mod common;

use common::{read_json, tensor};
use rl_model::{hf, token_logprobs};
use tch::{Device, Kind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// Largest |ours - transformers| over the positions transformers marks valid.
fn check(name: &str, chunk: i64) {
    let dir = fixture(name);
    let reference = read_json(&dir.join("reference.json"));
    let loaded = hf::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
    let ids = tensor(&reference, "input_ids", Kind::Int64);
    let mask = tensor(&reference, "attention_mask", Kind::Int64);
    let stats =
        tch::no_grad(|| token_logprobs(loaded.model.as_ref(), &ids, &mask, 1.0, true, chunk));
    let valid = tensor(&reference, "valid", Kind::Bool);
    assert!(
        stats.mask.equal(&valid),
        "{name}: our validity mask differs from transformers'"
    );
    for (key, ours) in [
        ("logprobs", &stats.logprobs),
        ("entropy", stats.entropy.as_ref().unwrap()),
    ] {
        let theirs = tensor(&reference, key, Kind::Float);
        let err = (ours - &theirs).abs().max().double_value(&[]);
        assert!(
            err < 1e-4,
            "{name}: {key} differ from transformers by up to {err:e}"
        );
        assert!(
            theirs.abs().sum(Kind::Float).double_value(&[]) > 1.0,
            "{name}: reference {key} is degenerate"
        );
    }
    // Row 0 has no padding: scored alone it takes the plain-causal attention path.
    let (row, row_mask) = (ids.narrow(0, 0, 1), mask.narrow(0, 0, 1));
    assert_eq!(
        row_mask.min().int64_value(&[]),
        1,
        "{name}: row 0 should be unpadded"
    );
    let alone =
        tch::no_grad(|| token_logprobs(loaded.model.as_ref(), &row, &row_mask, 1.0, false, chunk));
    let theirs = tensor(&reference, "logprobs", Kind::Float).narrow(0, 0, 1);
    let err = (alone.logprobs - theirs).abs().max().double_value(&[]);
    assert!(
        err < 1e-4,
        "{name}: unpadded row differs from transformers by up to {err:e}"
    );
}

#[test]
fn tiny_llama_matches_transformers() {
    check("tiny-llama", 4096);
}

#[test]
fn tiny_llama_with_llama3_rope_and_tied_head_matches_transformers() {
    check("tiny-llama3-rope", 4096);
}

#[test]
fn tiny_qwen2_matches_transformers() {
    check("tiny-qwen2", 4096);
}

#[test]
fn chunking_does_not_change_the_result() {
    check("tiny-llama", 7); // chunks that do not divide the 117 scored tokens
}

#[test]
fn tiny_gpt2_matches_transformers() {
    check("tiny-gpt2", 4096);
}

#[test]
fn tiny_mistral_with_a_sliding_window_matches_transformers() {
    check("tiny-mistral", 4096); // window 8 over 40-token rows
}
