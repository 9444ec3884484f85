//! Reward models end to end: `rl train` with `run.trainer = "reward_model"` fine-tunes
//! all-MiniLM-L6-v2 with a fresh head on preference pairs (helpful answers preferred over
//! refusals) until it ranks held-out pairs correctly, writes the metrics and an HF reward-model
//! directory; `rl reward-server` then serves that model (`reward.kind = "model"`) and scores a
//! helpful answer above a refusal. Bad reward-model inputs are refused with the key to fix.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Served, minilm_dir, rl, stderr, stdout};
use rl_core::{RewardFn, Scoring, Task};
use rl_reward::remote::{ClientOptions, RemoteScorer};

const REFUSALS: [&str; 4] = [
    "I cannot help with that.",
    "Ask someone else.",
    "No.",
    "I do not want to answer this question.",
];

/// `n` pairs: "What is a + b?" — the sum in a sentence preferred over a refusal.
fn write_pairs(path: &std::path::Path, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let (a, b) = (i * 7 % 97, i * 13 % 89);
            serde_json::json!({
                "prompt": format!("What is {a} + {b}?"),
                "chosen": format!("{a} + {b} = {}. The answer is {}.", a + b, a + b),
                "rejected": REFUSALS[i % REFUSALS.len()],
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    let pairs = dir.join("pairs.jsonl");
    write_pairs(&pairs, 240);
    let config = dir.join("rm.toml");
    let text = format!(
        r#"
[run]
trainer = "reward_model"
steps = 12
seed = 3

[model]
path = "{model}"

[preference]
path = "{pairs}"
batch_size = 16
micro_batch_size = 8
max_length = 64
eval_fraction = 0.2

[learner]
lr = 1e-4
warmup_steps = 2
lr_schedule = "constant"

[placement]
learner_device = "cpu"
reward_device = "cpu"
"#,
        model = minilm_dir().display(),
        pairs = pairs.display(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn rl_train_fits_a_minilm_reward_model_that_rl_reward_server_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let run_dir = tmp.path().join("runs/rm");
    let out = rl(
        tmp.path(),
        &[
            "train",
            config.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["status"], "done");
    let accuracy = summary["eval"]["accuracy"].as_f64().unwrap();
    let (loss0, loss) = (
        summary["eval_before"]["loss"].as_f64().unwrap(),
        summary["eval"]["loss"].as_f64().unwrap(),
    );
    assert!(accuracy >= 0.95, "held-out accuracy {accuracy}");
    assert!(loss < loss0, "held-out loss {loss0} -> {loss}");

    let model = run_dir.join("reward_model");
    let model_config = std::fs::read_to_string(model.join("config.json")).unwrap();
    assert!(model_config.contains("BertForSequenceClassification"));
    assert!(model.join("tokenizer.json").is_file());
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |key: &str| lines.iter().filter(|l| !l[key].is_null()).count();
    assert_eq!(has("train/loss"), 12, "{metrics}");
    assert_eq!(has("eval/accuracy"), 2, "before and after: {metrics}");

    // Serve it and score through the gRPC client: a helpful answer beats a refusal.
    let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
    command
        .args(["reward-server", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--set", "reward.kind=\"model\""])
        .arg("--set")
        .arg(format!("reward.model=\"{}\"", model.display()))
        .env_remove("RL_REWARD_TOKEN");
    let server = Served::start(command, tmp.path().join("server.log"));
    let options = ClientOptions::default();
    let scorer = RemoteScorer::new(&server.addr, options).unwrap();
    let task = Task::single_turn("q", "What is 40 + 2?", Some("42".into()));
    let replies = ["40 + 2 = 42. The answer is 42.", "I cannot help with that."];
    let batch: Vec<Scoring<'_>> = replies
        .iter()
        .map(|r| Scoring {
            task: &task,
            response: r,
        })
        .collect();
    let scores = scorer.score(&batch).unwrap();
    assert!(scores[0].reward > scores[1].reward, "{scores:?}");
    assert!(scores[0].parts.contains_key("model"), "{scores:?}");
    server.stop();
}

#[test]
fn bad_reward_model_inputs_name_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let config = config.to_str().unwrap();
    let minilm = minilm_dir().display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "train",
                config,
                "--set",
                "preference.path=\"missing.jsonl\"",
            ],
            "cannot read preference.path",
        ),
        (
            &["train", config, "--set", "preference.micro_batch_size=5"],
            "preference.micro_batch_size",
        ),
        (
            &[
                "reward-server",
                "--config",
                config,
                "--set",
                "reward.kind=\"model\"",
                "--set",
                &format!("reward.model=\"{minilm}\""),
            ],
            "is not a reward model",
        ),
    ];
    for (args, needle) in cases {
        let out = rl(tmp.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !tmp.path().join("runs").exists(),
        "nothing is written for bad input"
    );
}
