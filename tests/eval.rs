//! `rl eval` end to end: SmolLM2 answers held-out arithmetic tasks greedily and k times; the
//! summary and the per-sample JSONL hold what users read, reruns never overwrite a previous
//! file, and a config that cannot be evaluated is refused with the key to fix.

#![allow(clippy::unwrap_used)]

mod common;

use common::{repo, rl, smollm2_gguf, stderr, stdout};

#[test]
fn held_out_tasks_are_scored_greedily_and_for_pass_at_k() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = smollm2_gguf();
    let config = repo().join("configs/grpo.toml");
    let args = [
        "eval",
        config.to_str().unwrap(),
        "--model",
        gguf.to_str().unwrap(),
        "-n",
        "6",
        "-k",
        "2",
        "--set",
        "rollout.max_new_tokens=8",
        "--quiet",
    ];
    let out = rl(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["env"], "arithmetic");
    assert_eq!(summary["tasks"], 6);
    let greedy = summary["greedy_accuracy"].as_f64().unwrap();
    let pass = summary["pass@2"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&greedy) && (0.0..=1.0).contains(&pass));

    let file = dir.path().join("runs/eval-arithmetic.jsonl");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let right = lines
        .iter()
        .filter(|l| l["greedy"]["correct"] == true)
        .count();
    assert_eq!(right as f64 / 6.0, greedy, "the summary counts the lines");
    for line in &lines {
        assert!(line["prompt"].as_str().unwrap().starts_with("What is "));
        assert!(line["answer"].as_str().unwrap().parse::<i64>().is_ok());
        assert_eq!(line["samples"].as_array().unwrap().len(), 2);
    }

    let again = rl(dir.path(), &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        dir.path().join("runs/eval-arithmetic-2.jsonl").exists(),
        "a rerun writes a new file"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        6,
        "the first is kept"
    );
}

#[test]
fn a_config_that_cannot_be_evaluated_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("configs/grpo.toml");
    let out = rl(
        dir.path(),
        &[
            "eval",
            config.to_str().unwrap(),
            "--set",
            "env.name=\"jsonl\"",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("env.path"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn a_multi_turn_environment_runs_by_name_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = smollm2_gguf();
    let out = rl(
        dir.path(),
        &[
            "eval",
            "--env",
            "calculator",
            "--model",
            gguf.to_str().unwrap(),
            "-n",
            "3",
            "-k",
            "3",
            "--set",
            "rollout.max_new_tokens=12",
            "--set",
            "env.max_turns=2",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["env"], "calculator");
    let file = dir.path().join("runs/eval-calculator.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 3);
    for line in text.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(line["prompt"].as_str().unwrap().contains("<calc>"));
        let episodes = std::iter::once(&line["greedy"]).chain(line["samples"].as_array().unwrap());
        for e in episodes {
            // With env.max_turns = 2, an episode is one reply, or a tool call, the tool's
            // answer and a final reply.
            if let Some(turns) = e.get("turns") {
                let turns = turns.as_array().unwrap();
                assert_eq!(turns.len(), 2, "{turns:?}");
                assert_eq!(turns[0]["role"], "assistant");
                assert!(turns[0]["content"].as_str().unwrap().contains("<calc>"));
                assert_eq!(turns[1]["role"], "tool");
                let tool = turns[1]["content"].as_str().unwrap();
                assert!(
                    tool.starts_with("<result>") || tool.starts_with("<error>"),
                    "{tool}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_environment_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = rl(dir.path(), &["eval", "--env", "chess"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("env.name"), "{}", stderr(&out));
    assert!(stderr(&out).contains("calculator"), "{}", stderr(&out));
}
