//! `rl convert` end to end: what it writes loads in transformers and gives the same log-probs.

mod common;

use std::path::Path;

use common::{python, repo, rl, stderr};

/// Loads the export `out` in transformers (tests/support/check_hf_export.py) against the stored
/// `reference` and returns its verdict: `max_abs_err`, and for references holding texts,
/// `tokenizer_ids_equal`, `chat_equal` and `eos_token`.
fn transformers_verdict(out: &Path, reference: &Path) -> serde_json::Value {
    let check = std::process::Command::new(python())
        .arg(repo().join("tests/support/check_hf_export.py"))
        .arg(out)
        .arg(reference)
        .output()
        .expect("run python");
    assert!(
        check.status.success(),
        "transformers could not load {}: {}",
        out.display(),
        stderr(&check)
    );
    serde_json::from_slice(&check.stdout).expect("JSON verdict")
}

#[test]
fn converted_models_load_in_transformers_with_the_same_logprobs() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "tiny-llama",
        "tiny-llama3-rope",
        "tiny-qwen2",
        "tiny-mistral",
        "tiny-gpt2",
    ] {
        let src = repo()
            .join("crates/rl-model/tests/fixtures/models")
            .join(name);
        let out = tmp.path().join(name);
        let run = rl(
            tmp.path(),
            &["convert", src.to_str().unwrap(), out.to_str().unwrap()],
        );
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        let result = transformers_verdict(&out, &src.join("reference.json"));
        let err = result["max_abs_err"].as_f64().unwrap();
        assert!(
            err < 1e-4,
            "{name}: exported model differs from the source by {err:e}"
        );
    }
}

#[test]
fn smollm2_from_gguf_converts_to_an_hf_directory_transformers_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = common::smollm2_gguf();
    let out = tmp.path().join("smollm2");
    let run = rl(
        tmp.path(),
        &[
            "convert",
            gguf.to_str().unwrap(),
            out.to_str().unwrap(),
            "--dtype",
            "f32",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let reference = repo().join("crates/rl-model/tests/fixtures/smollm2/reference.json");
    let result = transformers_verdict(&out, &reference);
    let err = result["max_abs_err"].as_f64().unwrap();
    assert!(
        err < 1e-3,
        "exported SmolLM2 differs from transformers' GGUF reading by {err:e}"
    );
    assert_eq!(
        result["tokenizer_ids_equal"], true,
        "exported tokenizer: {result}"
    );
    assert_eq!(
        result["chat_equal"], true,
        "exported chat template: {result}"
    );
    assert_eq!(result["eos_token"], "<|im_end|>", "{result}");
}

#[test]
fn the_builtin_name_resolves_to_the_fetched_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = rl(
        tmp.path(),
        &[
            "--json",
            "convert",
            "smollm2-135m-instruct",
            "out",
            "--dtype",
            "bf16",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["parameters"], 134_515_008, "SmolLM2-135M");
    let empty_cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rl"))
        .args(["convert", "smollm2-135m-instruct", "out2"])
        .current_dir(tmp.path())
        .env("RL_CACHE", empty_cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not downloaded") && stderr(&out).contains("fetch-model.sh"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn convert_never_overwrites_and_names_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = repo().join("crates/rl-model/tests/fixtures/models/tiny-llama");
    std::fs::create_dir(tmp.path().join("full")).unwrap();
    std::fs::write(tmp.path().join("full/keep.txt"), "mine").unwrap();
    let run = rl(tmp.path(), &["convert", src.to_str().unwrap(), "full"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("is not empty"), "{}", stderr(&run));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("full/keep.txt")).unwrap(),
        "mine"
    );
    let run = rl(tmp.path(), &["convert", "no-such-model", "out"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("no model \"no-such-model\""),
        "{}",
        stderr(&run)
    );
}
