//! `rl reward-server` as its own process: started on a free port with a token over the
//! arithmetic environment's rule-based reward, scored through [`RemoteScorer`] (equal to the
//! in-process scorer, big batches split) and through a Python client generated from the proto
//! at test time (tests/python/reward_client.py: scores, a deadline, bad requests, the server
//! still healthy after them), stopped with SIGTERM; and the configs it cannot serve refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Served, python, repo, rl, stderr};
use rl_core::{Config, RewardFn, Scoring, Task};
use rl_reward::remote::{ClientOptions, RemoteScorer};

const TOKEN: &str = "test-reward-secret-91c2";

fn config_path() -> String {
    repo().join("configs/grpo.toml").display().to_string()
}

/// `rl reward-server` over the arithmetic config, a token from a file, small limits.
fn start_server(dir: &std::path::Path) -> Served {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
    command
        .args([
            "reward-server",
            "--config",
            &config_path(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--token-file")
        .arg(&token_file)
        .args([
            "--max-batch",
            "64",
            "--max-item-kib",
            "4",
            "--max-concurrency",
            "2",
            "--max-message-mib",
            "1",
        ])
        .env_remove("RL_REWARD_TOKEN");
    let server = Served::start(command, dir.join("server.log"));
    let line = &server.line;
    assert!(
        line.contains("scorer rule")
            && line.contains("max batch 64")
            && line.contains("token required"),
        "{line}"
    );
    server
}

#[test]
fn a_reward_server_process_scores_for_rust_and_python_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(tmp.path());

    // (a) RemoteScorer equals the in-process rule scorer, over a batch bigger than the cap.
    let config = Config::load(std::path::Path::new(&config_path()), &[]).unwrap();
    let local = rl_envs::rule_reward(&config.env, &config.reward).unwrap();
    let tasks: Vec<Task> = (0..150)
        .map(|i| {
            Task::single_turn(
                format!("{i}"),
                format!("What is {i} + 2?"),
                Some((i + 2).to_string()),
            )
        })
        .collect();
    let replies: Vec<String> = (0..150)
        .map(|i| match i % 3 {
            0 => format!("{}", i + 2),
            1 => format!("The answer is {}", i + 3),
            _ => String::new(),
        })
        .collect();
    let batch: Vec<Scoring<'_>> = tasks
        .iter()
        .zip(&replies)
        .map(|(task, response)| Scoring { task, response })
        .collect();
    let options = ClientOptions {
        token: Some(TOKEN.into()),
        attempts: 2,
        ..ClientOptions::default()
    };
    let remote = RemoteScorer::new(&server.addr, options).unwrap();
    let got = remote.score(&batch).unwrap();
    assert_eq!(got, local.score(&batch).unwrap());
    assert_eq!(got.iter().filter(|s| s.reward == 1.0).count(), 50);
    let no_token = RemoteScorer::new(&server.addr, ClientOptions::default()).unwrap();
    let err = no_token.score(&batch[..1]).unwrap_err().to_string();
    assert!(
        err.contains("Unauthenticated") && err.contains("1 attempt"),
        "{err}"
    );

    // (b) A Python client generated from the proto.
    let out = Command::new(python())
        .arg(repo().join("tests/python/reward_client.py"))
        .args(["--addr", &server.addr, "--token", TOKEN, "--proto-dir"])
        .arg(repo().join("crates/rl-proto/proto"))
        .arg("--out")
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"all_checks_passed\": true"),
        "python client failed ({}):\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["rewards"], serde_json::json!([1.0, 0.0, 0.0]));
    assert_eq!(report["deadline"], "DEADLINE_EXCEEDED");
    for (case, code) in [
        ("not_utf8", "INVALID_ARGUMENT"),
        ("garbage", "INVALID_ARGUMENT"),
        ("over_message_cap", "RESOURCE_EXHAUSTED"),
    ] {
        let got = report[case].as_str().unwrap();
        assert!(got.starts_with(code), "{case}: {got}");
    }

    // Still serving after all that.
    assert_eq!(remote.health().unwrap().scorer, "rule");
    server.stop();
}

#[test]
fn configs_and_settings_it_cannot_serve_are_refused_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_path();
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "--set",
                "reward.kind=\"model\"",
                "--set",
                "reward.model=\"x\"",
            ],
            "reward.model: no model \"x\"",
        ),
        (
            &[
                "--set",
                "reward.kind=\"remote\"",
                "--set",
                "reward.url=\"http://127.0.0.1:1\"",
            ],
            "does not forward",
        ),
        (
            &["--token-file", "no/such/file"],
            "--token-file no/such/file: cannot read it",
        ),
        (&["--listen", "256.0.0.1:1"], "give HOST:PORT"),
        (
            &["--max-request-s", "0"],
            "--max-request-s 0: give a number of seconds from 0.001 to 86400",
        ),
        (
            &["--max-request-s", "1e300"],
            "--max-request-s 1e300: give a number of seconds from 0.001 to 86400",
        ),
        (
            &["--shutdown-grace-s", "7200"],
            "--shutdown-grace-s 7200: give a number of seconds from 0 to 3600",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["reward-server", "--config", &cfg];
        args.extend_from_slice(extra);
        let out = rl(tmp.path(), &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
