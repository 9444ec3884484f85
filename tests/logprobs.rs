//! `rl logprobs` end to end on SmolLM2-135M-Instruct: the per-token numbers transformers gives.

mod common;

use common::{repo, rl, smollm2_gguf, stderr};

#[test]
fn logprobs_of_smollm2_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo().join("crates/rl-model/tests/fixtures/smollm2/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let text = reference["texts"][0].as_str().unwrap();
    let gguf = smollm2_gguf();
    for model in ["smollm2-135m-instruct", gguf.to_str().unwrap()] {
        let out = rl(
            tmp.path(),
            &[
                "logprobs", "--model", model, "--text", text, "--device", "cpu",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tokens = got["tokens"].as_array().unwrap();
        let want_ids: Vec<u64> = reference["input_ids"][0]
            .as_array()
            .unwrap()
            .iter()
            .zip(reference["attention_mask"][0].as_array().unwrap())
            .filter(|(_, m)| m.as_u64() == Some(1))
            .map(|(id, _)| id.as_u64().unwrap())
            .collect();
        let ids: Vec<u64> = tokens.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, want_ids, "token ids");
        assert!(
            tokens[0]["logprob"].is_null(),
            "the first token has no context"
        );
        for (i, t) in tokens.iter().enumerate().skip(1) {
            let want = reference["logprobs"][0][i - 1].as_f64().unwrap();
            let ours = t["logprob"].as_f64().unwrap();
            assert!(
                (ours - want).abs() < 1e-3,
                "token {i}: {ours} vs transformers {want}"
            );
        }
        let text_back: String = tokens.iter().map(|t| t["text"].as_str().unwrap()).collect();
        assert_eq!(text_back, text);
    }
}

#[test]
fn chat_mode_scores_the_rendered_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rl(
        tmp.path(),
        &[
            "logprobs",
            "--model",
            "smollm2-135m-instruct",
            "--chat",
            "--text",
            "Hi!",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text: String = got["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(
        text.starts_with("<|im_start|>system\n")
            && text.ends_with("<|im_start|>user\nHi!<|im_end|>\n"),
        "{text}"
    );
}

#[test]
fn bad_logprobs_input_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["logprobs", "--model", "smollm2-135m-instruct"],
            "--text TEXT or --file FILE",
        ),
        (
            &[
                "logprobs",
                "--model",
                "smollm2-135m-instruct",
                "--text",
                "x",
            ],
            "needs at least 2",
        ),
        (
            &["logprobs", "--model", "nope", "--text", "hello there"],
            "no model \"nope\"",
        ),
        (
            &[
                "logprobs",
                "--model",
                "smollm2-135m-instruct",
                "--text",
                "a b",
                "--device",
                "gpu",
            ],
            "--device",
        ),
    ];
    for (args, needle) in cases {
        let out = rl(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
}
