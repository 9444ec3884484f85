//! The `rl` binary as a user runs it: the default training config end to end, and one clear,
//! non-zero, panic-free error for every kind of bad input. Error messages are compared whole
//! against snapshots (`tests/snapshots/cli__*.snap`, insta): review a deliberate change with
//! `cargo insta review`, or rerun with `INSTA_UPDATE=always` and read the diff.

mod common;

use std::path::Path;

use common::{read_events, repo, rl, stderr, stdout};

/// Asserts `rl args` fails with exit code `code` and stderr equal to the snapshot `name`
/// (`tests/snapshots/cli__NAME.snap`), this checkout's path written `[REPO]`.
fn fails_as(cwd: &Path, args: &[&str], code: i32, name: &str) {
    let err = fails(cwd, args, code, &[]);
    let repo = repo().display().to_string();
    let command = format!("rl {}", args.join(" ")).replace(&repo, "[REPO]");
    insta::assert_snapshot!(name, err.replace(&repo, "[REPO]"), &command);
}

/// Asserts `rl args` fails with exit code `code` and a message containing every `needle`.
fn fails(cwd: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = rl(cwd, args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "rl {args:?} should exit {code}; stderr:\n{err}"
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "rl {args:?}: stderr lacks {needle:?}:\n{err}"
        );
    }
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "rl {args:?} panicked:\n{err}"
    );
    err
}

fn default_config() -> String {
    repo().join("configs/grpo.toml").display().to_string()
}

/// `--set` arguments that run the default config for `steps` steps on a tiny random model (made
/// in `dir`), so that the CLI's behaviour is tested in seconds.
fn tiny(dir: &std::path::Path, steps: u64) -> Vec<String> {
    let model = common::tiny_chat_model(&dir.join("tiny-model"));
    [
        format!("model.path=\"{}\"", model.display()),
        format!("run.steps={steps}"),
        "eval.tasks=2".into(),
        "eval.every=0".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

/// `rl` with `args` then `extra`.
fn rl_with(cwd: &std::path::Path, args: &[&str], extra: &[String]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    rl(cwd, &all)
}

#[test]
fn train_on_the_default_config_fills_a_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tiny(tmp.path(), 1);
    let out = rl_with(
        tmp.path(),
        &["train", &default_config(), "--set", "run.seed=7"],
        &small,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("grpo-20"), "{name}");

    // The resolved config: overrides applied, algorithm defaults filled, loadable again.
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        saved.contains("seed = 7") && saved.contains("advantage = \"group_norm\""),
        "{saved}"
    );
    assert!(saved.contains(&format!("name = \"{name}\"")), "{saved}");
    let again = rl(
        tmp.path(),
        &[
            "train",
            &run.join("config.toml").display().to_string(),
            "--run-dir",
            "other",
        ],
    );
    assert!(
        again.status.success(),
        "the saved config must load: {}",
        stderr(&again)
    );

    let events = read_events(run);
    let config_text = events["texts"]["config"][0][1].as_str().unwrap();
    assert!(config_text.contains("[algorithm]"), "{config_text}");
    assert!(events["scalars"]["eval/accuracy"][0][1].as_f64().unwrap() >= 0.0);
    assert!(events["scalars"]["reward/mean"][0][1].as_f64().is_some());
    let jsonl = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(jsonl.contains("\"timing_s/update\""), "{jsonl}");
    assert!(run.join("policy/model.safetensors").is_file());
    let summary = stdout(&out);
    assert!(summary.contains("finished after step 1/1"), "{summary}");
    assert!(summary.contains("rl eval "), "{summary}");
}

#[test]
fn json_mode_prints_a_machine_readable_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rl_with(
        tmp.path(),
        &["--json", "train", &default_config(), "--run-dir", "r"],
        &tiny(tmp.path(), 1),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("stdout is one JSON object");
    assert_eq!(summary["run_dir"], "r");
    assert_eq!(summary["status"], "finished");
    assert_eq!(summary["steps_done"], 1);
    assert!(
        summary["eval_accuracy_last"].as_f64().is_some(),
        "{summary}"
    );
    assert!(
        summary["phase_seconds"]["update"].as_f64().is_some(),
        "{summary}"
    );
    for line in stderr(&out).lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
    }
}

#[test]
fn quiet_mode_prints_nothing_on_success() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rl_with(
        tmp.path(),
        &["--quiet", "train", &default_config(), "--run-dir", "r"],
        &tiny(tmp.path(), 1),
    );
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    assert!(!stderr(&out).contains("INFO"), "{}", stderr(&out));
}

#[test]
fn resume_continues_a_run_and_a_new_run_never_overwrites_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = default_config();
    let small = tiny(tmp.path(), 1);
    assert!(
        rl_with(tmp.path(), &["train", &cfg, "--run-dir", "r"], &small)
            .status
            .success()
    );
    fails(
        tmp.path(),
        &["train", &cfg, "--run-dir", "r"],
        2,
        &["not empty", "--resume"],
    );
    let mut more = small.clone();
    more.extend(["--set".into(), "run.steps=2".into()]);
    let resumed = rl_with(
        tmp.path(),
        &["train", &cfg, "--run-dir", "r", "--resume"],
        &more,
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("kept as"), "{}", stderr(&resumed));
    let kept = std::fs::read_to_string(tmp.path().join("r/config.1.toml")).unwrap();
    assert!(
        kept.contains("steps = 1"),
        "the first config is kept: {kept}"
    );
    let events = read_events(&tmp.path().join("r"));
    assert_eq!(
        events["texts"]["config"].as_array().unwrap().len(),
        2,
        "both sessions logged"
    );
    fails(
        tmp.path(),
        &["train", &cfg, "--resume"],
        2,
        &["--resume needs to know which run"],
    );
    fails(
        tmp.path(),
        &["train", &cfg, "--run-dir", "none", "--resume"],
        2,
        &["nothing to resume"],
    );
}

#[test]
fn bad_config_files_get_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(tmp.path().join(name), text).unwrap();
        name.to_owned()
    };
    let dir = tmp.path();
    fails_as(dir, &["train", "missing.toml"], 2, "missing_file");
    let syntax = write("syntax.toml", "[rollout]\nmax_new_tokens = \n");
    fails_as(dir, &["train", &syntax], 2, "toml_syntax");
    let unknown = write("unknown.toml", "[learner]\nlearning_rate = 1e-6\n");
    fails_as(dir, &["train", &unknown], 2, "unknown_key");
    let wrong = write("wrong.toml", "[rollout]\nmax_new_tokens = \"many\"\n");
    fails_as(dir, &["train", &wrong], 2, "wrong_type");
    let range = write("range.toml", "[algorithm]\nclip_ratio = -1\n");
    fails_as(dir, &["train", &range], 2, "out_of_range");
    let config = default_config();
    fails_as(
        dir,
        &["train", &config, "--set", "learner.lr=2"],
        2,
        "override_out_of_range",
    );
    fails_as(
        dir,
        &["train", &config, "--set", "nope"],
        2,
        "override_malformed",
    );
    assert!(
        !tmp.path().join("runs").exists(),
        "failed runs leave no run directory behind"
    );
}

#[test]
fn an_unwritable_run_directory_is_named_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("file"), "").unwrap();
    let args = ["train", &default_config(), "--run-dir", "file/run"];
    fails_as(tmp.path(), &args, 2, "unwritable_run_dir");
}

#[test]
fn what_this_machine_lacks_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["placement.learner_device=cuda:7"], "no_learner_gpu"),
        (&["placement.rollout_device=cuda:7"], "no_rollout_gpu"),
        (&["model.path=no/such/model"], "no_model"),
        (
            &[
                "placement.mode=\"processes\"",
                "placement.learners=2",
                "placement.backend=\"nccl\"",
                "placement.learner_device=\"cpu\"",
            ],
            "nccl_for_cpu_learners",
        ),
    ];
    for (sets, name) in cases {
        let config = default_config();
        let mut args = vec!["train", &config, "--run-dir", "r"];
        for set in sets {
            args.extend(["--set", set]);
        }
        fails_as(tmp.path(), &args, 2, name);
        assert!(
            !tmp.path().join("r").exists(),
            "--set {sets:?} left a run directory"
        );
    }
}

#[test]
fn doctor_reports_libtorch_and_passes_its_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rl(tmp.path(), &["--json", "doctor"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["libtorch"]["version"]
            .as_str()
            .unwrap()
            .split('+')
            .next(),
        Some("2.11.0")
    );
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["device"] == "cpu" && c["name"] == "bf16 matmul" && c["ok"] == true)
    );
    assert!(
        checks
            .iter()
            .any(|c| c["name"].as_str().unwrap().starts_with("SDPA"))
    );
}

#[test]
fn the_reference_config_holds_exactly_the_defaults() {
    let path = repo().join("configs/reference.toml");
    let reference = rl_core::Config::load(&path, &[]).unwrap();
    let mut defaults = rl_core::Config::default();
    defaults.resolve();
    assert_eq!(reference, defaults);
}

#[test]
fn every_shipped_config_is_valid() {
    for entry in std::fs::read_dir(repo().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue; // configs/data holds their data files
        }
        rl_core::Config::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn a_torch_venv_that_cannot_be_made_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(repo().join("scripts/with-torch.sh"))
        .arg("true")
        .env("RL_CACHE", tmp.path())
        .env("RL_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("'/nonexistent/python3' not found") && err.contains("RL_PYTHON"),
        "{err}"
    );
    assert!(
        err.contains("the libtorch venv could not be created") && err.contains("RL_CACHE"),
        "{err}"
    );
}
