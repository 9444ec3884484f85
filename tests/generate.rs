//! `rl generate` end to end on SmolLM2-135M-Instruct: JSONL out in prompt order with the fields
//! users rely on, chat prompts and `messages` lines, seeded reruns that repeat, and bad input
//! (a bad line, an empty prompt, a bad option) explained without losing the good output.

#![allow(clippy::unwrap_used)]

mod common;

use common::{rl, smollm2_gguf, stderr, stdout};
use serde_json::Value;

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_chat_prompt_is_answered_as_jsonl() {
    let gguf = smollm2_gguf();
    let out = rl(
        &common::repo(),
        &[
            "generate",
            "--model",
            gguf.to_str().unwrap(),
            "--chat",
            "--prompt",
            "What is 17 + 25? Answer with just the number.",
            "--max-new-tokens",
            "12",
            "--logprobs",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = lines(&stdout(&out));
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row["prompt"],
        "What is 17 + 25? Answer with just the number."
    );
    assert!(row["completion"].as_str().unwrap().contains("32"), "{row}");
    assert_eq!(row["finish_reason"], "length");
    assert_eq!(row["completion_tokens"], 12);
    assert_eq!(row["token_ids"].as_array().unwrap().len(), 12);
    assert_eq!(row["logprobs"].as_array().unwrap().len(), 12);
    assert!(
        row["prompt_tokens"].as_u64().unwrap() > 20,
        "chat template applied: {row}"
    );
}

#[test]
fn a_jsonl_file_gives_n_seeded_samples_per_prompt_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        concat!(
            "{\"id\": \"a\", \"prompt\": \"Once upon a time\"}\n",
            "\n",
            "{\"id\": 7, \"messages\": [{\"role\": \"user\", \"content\": \"Name a colour.\"}]}\n",
        ),
    )
    .unwrap();
    let gguf = smollm2_gguf();
    let run = |out: &str| {
        let out_path = dir.path().join(out);
        let o = rl(
            dir.path(),
            &[
                "generate",
                "--model",
                gguf.to_str().unwrap(),
                "--file",
                "prompts.jsonl",
                "-n",
                "3",
                "--temperature",
                "1.0",
                "--top-p",
                "0.9",
                "--seed",
                "11",
                "--max-new-tokens",
                "10",
                "--stop",
                "\n\n",
                "--out",
                out_path.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("tokens/s"),
            "summary on stderr: {}",
            stderr(&o)
        );
        lines(&std::fs::read_to_string(out_path).unwrap())
    };
    let first = run("a.jsonl");
    let order: Vec<(u64, u64)> = first
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["sample"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    assert_eq!(first[0]["id"], "a");
    assert_eq!(first[3]["id"], 7);
    assert!(
        first
            .iter()
            .all(|r| !r["completion"].as_str().unwrap().contains("\n\n"))
    );
    let texts: Vec<&Value> = first.iter().map(|r| &r["token_ids"]).collect();
    assert!(
        texts[0] != texts[1] || texts[1] != texts[2],
        "samples differ"
    );
    let again = run("b.jsonl");
    assert_eq!(first, again, "same seed, same output");
}

#[test]
fn bad_input_is_explained_and_good_prompts_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = smollm2_gguf();
    let model = gguf.to_str().unwrap();

    std::fs::write(
        dir.path().join("broken.jsonl"),
        "{\"prompt\": \"hi\"}\n{\"text\": 3}\n",
    )
    .unwrap();
    let out = rl(
        dir.path(),
        &["generate", "--model", model, "--file", "broken.jsonl"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("broken.jsonl line 2: expected an object with a string \"prompt\""),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        dir.path().join("empty.jsonl"),
        "{\"prompt\": \"\"}\n{\"prompt\": \"Hello\"}\n",
    )
    .unwrap();
    let out = rl(
        dir.path(),
        &[
            "generate",
            "--model",
            model,
            "--file",
            "empty.jsonl",
            "--max-new-tokens",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("1 of 2 prompt(s) were refused"),
        "{}",
        stderr(&out)
    );
    let rows = lines(&stdout(&out));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap()
            .contains("the prompt is empty")
    );
    assert_eq!(rows[1]["completion_tokens"], 4);

    let out = rl(
        dir.path(),
        &[
            "generate", "--model", model, "--prompt", "x", "--top-p", "1.5",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("top_p = 1.5: must be in (0, 1]"),
        "{}",
        stderr(&out)
    );
    let out = rl(
        dir.path(),
        &[
            "generate",
            "--model",
            model,
            "--prompt",
            "x",
            "--max-new-tokens",
            "5000",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("exceeds the context"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn an_absurd_max_batch_is_a_usage_error_not_a_panic() {
    let gguf = smollm2_gguf();
    let model = gguf.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for max_batch in ["1000000000000", "65537", "0"] {
        let out = rl(
            dir.path(),
            &[
                "generate",
                "--model",
                model,
                "--prompt",
                "x",
                "--max-batch",
                max_batch,
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let want = format!("for '--max-batch <MAX_BATCH>': {max_batch} is not in 1..=65536");
        assert!(err.contains(&want), "{err:?} lacks {want:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
