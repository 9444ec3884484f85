//! `rl train` end to end, as a user runs it, on a tiny random model with SmolLM2's tokenizer:
//! every shipped config trains for two steps in its short form; a run stopped and resumed ends
//! bit-identical to one run straight through; SIGINT saves a checkpoint and exits cleanly; a
//! reward server that is not there stops the run with an error that names it.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{repo, rl, stderr, stdout, tiny_chat_model};

/// The tiny model, made once per test in `dir`.
fn tiny(dir: &Path) -> PathBuf {
    tiny_chat_model(&dir.join("tiny"))
}

/// `--set` arguments that shrink a config to its short form on the tiny model.
fn short(model: &Path, steps: u64) -> Vec<String> {
    [
        format!("model.path=\"{}\"", model.display()),
        format!("run.steps={steps}"),
        "eval.tasks=4".into(),
        "eval.every=2".into(),
        "logging.samples_every=1".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

/// `rl train CONFIG --run-dir RUN` plus `extra`, in `cwd`.
fn train(cwd: &Path, config: &Path, run: &Path, extra: &[String]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "train".into(),
        config.display().to_string(),
        "--run-dir".into(),
        run.display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    rl(cwd, &args)
}

/// The lines of `metrics.jsonl`, parsed.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn every_shipped_policy_config_trains_in_its_short_form() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    for name in ["grpo", "ppo", "dapo", "rloo", "reinforce_pp", "calculator"] {
        let config = repo().join(format!("configs/{name}.toml"));
        let run = dir.path().join(name);
        let out = train(dir.path(), &config, &run, &short(&model, 2));
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            stderr(&out),
            stdout(&out)
        );
        let lines = metrics(&run);
        let at = |step: u64, key: &str| {
            lines
                .iter()
                .find(|l| l["step"] == step && l.get(key).is_some())
                .unwrap_or_else(|| panic!("{name}: no {key} at step {step} in {lines:?}"))[key]
                .clone()
        };
        for key in [
            "reward/mean",
            "timing_s/gen",
            "timing_s/update",
            "rollout/policy_version",
        ] {
            at(2, key);
        }
        at(0, "eval/accuracy");
        at(2, "eval/accuracy");
        assert_eq!(
            at(2, "rollout/policy_version"),
            1.0,
            "{name}: step 2 samples version 1"
        );
        assert!(run.join("policy/model.safetensors").is_file(), "{name}");
        assert!(run.join("policy/tokenizer.json").is_file(), "{name}");
        assert!(
            run.join("checkpoints/step-2/trainer.json").is_file(),
            "{name}"
        );
        let summary = stdout(&out);
        assert!(summary.contains("time per phase: "), "{name}: {summary}");
    }
}

/// The lines of a run's metrics without the keys that measure time.
fn untimed(run: &Path) -> Vec<serde_json::Value> {
    metrics(run)
        .into_iter()
        .map(|mut l| {
            if let Some(o) = l.as_object_mut() {
                o.retain(|k, _| {
                    !(k.starts_with("timing_s/") || k.starts_with("perf/") || k == "time")
                });
            }
            l
        })
        .collect()
}

#[test]
fn a_run_stopped_and_resumed_ends_as_one_run_straight_through() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let config = repo().join("configs/grpo.toml");
    let mut args = short(&model, 4);
    args.extend(["--set".into(), "checkpoint.every=2".into()]);
    let straight = dir.path().join("straight");
    let out = train(dir.path(), &config, &straight, &args);
    assert!(out.status.success(), "{}", stderr(&out));

    let resumed = dir.path().join("resumed");
    let out = train(dir.path(), &config, &resumed, &short(&model, 2));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut more = args.clone();
    more.push("--resume".into());
    let out = train(dir.path(), &config, &resumed, &more);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming after step 2"),
        "{}",
        stderr(&out)
    );

    let weights = |run: &Path| fs::read(run.join("policy/model.safetensors")).unwrap();
    assert!(
        weights(&straight) == weights(&resumed),
        "the final weights differ"
    );
    assert_eq!(untimed(&straight), untimed(&resumed));
}

#[test]
fn sigint_saves_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_rl"))
        .arg("train")
        .arg(repo().join("configs/grpo.toml"))
        .arg("--run-dir")
        .arg(&run)
        .args(short(&model, 1000))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !metrics_have_step(&run, 1) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no step after 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // kill(1) sends the signal as Ctrl-C would.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--resume"), "{text}");
    let steps: Vec<u64> = fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0] >= 1 && steps[0] < 1000);
}

fn metrics_have_step(run: &Path, step: u64) -> bool {
    fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|text| {
        text.lines()
            .any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["step"] == step))
    })
}

#[test]
fn a_reward_server_that_is_not_there_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let run = dir.path().join("run");
    let mut args = short(&model, 2);
    for set in [
        "reward.kind=\"remote\"",
        "reward.url=\"http://127.0.0.1:9\"",
        "reward.attempts=1",
        "reward.timeout_s=2",
    ] {
        args.extend(["--set".into(), set.into()]);
    }
    let out = train(dir.path(), &repo().join("configs/grpo.toml"), &run, &args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("reward"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
