//! What every `rl` server does alike, checked on both (`rl rollout-worker` over a tiny model,
//! `rl reward-server` over the arithmetic rule reward), as a hostile or careless user would
//! try it: a token variable that is set but blank, or named but unset, is refused (never "no
//! token"); listening beyond loopback without a token warns; a client holding a connection
//! open cannot keep a stopping server alive past its grace period; a second signal stops it
//! at once.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    net::TcpStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{Served, exit_within, repo, tiny_word_model};

/// The two servers: (what it calls itself, its default token variable, `rl` and its
/// arguments up to the token and listen flags).
fn servers(model: &Path) -> [(&'static str, &'static str, Command); 2] {
    let mut rollout = Command::new(env!("CARGO_BIN_EXE_rl"));
    rollout
        .args([
            "rollout-worker",
            "--device",
            "cpu",
            "--max-batch",
            "2",
            "--model",
        ])
        .arg(model);
    let mut reward = Command::new(env!("CARGO_BIN_EXE_rl"));
    reward
        .args(["reward-server", "--config"])
        .arg(repo().join("configs/grpo.toml"));
    for command in [&mut rollout, &mut reward] {
        command
            .env_remove("RL_ROLLOUT_TOKEN")
            .env_remove("RL_REWARD_TOKEN");
    }
    [
        ("rollout worker", "RL_ROLLOUT_TOKEN", rollout),
        ("reward server", "RL_REWARD_TOKEN", reward),
    ]
}

#[test]
fn blank_or_missing_token_variables_are_refused_by_every_server() {
    let (_tmp, model) = tiny_word_model();
    for blank in ["", "  "] {
        for (role, var, mut command) in servers(&model) {
            command.args(["--listen", "127.0.0.1:0"]).env(var, blank);
            let got = exit_within(command, Duration::from_secs(30));
            let Some((code, err)) = got else {
                panic!("{role}: {var}={blank:?} served without a token");
            };
            assert_eq!(code, Some(2), "{role}: {err}");
            assert!(
                err.contains(&format!("{var} is set but empty")),
                "{role}: {err}"
            );
        }
    }
    for (role, _, mut command) in servers(&model) {
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--token-env",
                "RL_TEST_BLANK_SECRET",
            ])
            .env("RL_TEST_BLANK_SECRET", "");
        let (code, err) = exit_within(command, Duration::from_secs(30)).unwrap();
        assert_eq!(code, Some(2), "{role}: {err}");
        assert!(
            err.contains("RL_TEST_BLANK_SECRET is set but empty"),
            "{role}: {err}"
        );
    }
    for (role, _, mut command) in servers(&model) {
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "RL_TEST_NO_SUCH_SECRET",
        ]);
        let (code, err) = exit_within(command, Duration::from_secs(30)).unwrap();
        assert_eq!(code, Some(2), "{role}: {err}");
        assert!(
            err.contains("RL_TEST_NO_SUCH_SECRET is unset"),
            "{role}: {err}"
        );
    }
}

#[test]
fn every_server_warns_when_it_listens_beyond_loopback_without_a_token() {
    let (tmp, model) = tiny_word_model();
    for (role, _, mut command) in servers(&model) {
        command.args(["--listen", "0.0.0.0:0"]);
        let server = Served::start(command, tmp.path().join("server.log"));
        let log = server.stderr();
        server.stop();
        assert!(
            log.contains("without a token: anyone who reaches this port can use the")
                && log.contains(role),
            "{role}: {log}"
        );
    }
}

/// Starts each server with a grace of `grace_s` seconds and a client holding a TCP connection
/// open, sends `signals` SIGTERMs 300 ms apart, and returns how it exited and how long after
/// the first signal.
fn stop_with_a_held_connection(
    grace_s: &str,
    signals: usize,
) -> Vec<(&'static str, Option<i32>, Duration)> {
    let (tmp, model) = tiny_word_model();
    servers(&model)
        .into_iter()
        .map(|(role, _, mut command)| {
            command.args(["--listen", "127.0.0.1:0", "--shutdown-grace-s", grace_s]);
            let mut server = Served::start(command, tmp.path().join("server.log"));
            let _held = TcpStream::connect(&server.addr).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let start = Instant::now();
            for i in 0..signals {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
                server.terminate();
            }
            let code = server
                .exited_within(Duration::from_secs(30))
                .unwrap_or_else(|log| panic!("{role}: still running 30 s after SIGTERM:\n{log}"));
            (role, code, start.elapsed())
        })
        .collect()
}

#[test]
fn a_client_holding_a_connection_cannot_keep_a_stopping_server_alive() {
    for (role, code, took) in stop_with_a_held_connection("1", 1) {
        assert_eq!(code, Some(0), "{role}");
        assert!(took < Duration::from_secs(10), "{role}: took {took:?}");
    }
}

#[test]
fn a_second_signal_stops_a_server_at_once() {
    for (role, code, took) in stop_with_a_held_connection("600", 2) {
        assert_eq!(code, Some(130), "{role}");
        assert!(took < Duration::from_secs(10), "{role}: took {took:?}");
    }
}
