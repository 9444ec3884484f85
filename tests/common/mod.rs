//! Helpers shared by the end-to-end tests: the `rl` binary, the project's Python venv, fixtures.

#![allow(dead_code)] // each test binary uses a different subset

#[allow(unused_imports)] // each test binary uses a different subset
pub use rl_test_support::{minilm_dir, python, smollm2_gguf, smollm2_tokenizer_dir};
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Runs `rl` with `args` in `cwd`.
pub fn rl(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1") // a panic would print a backtrace; tests assert there is none
        .output()
        .expect("run rl")
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a TensorBoard log directory with TensorBoard's own `EventAccumulator`.
pub fn read_events(logdir: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("tests/support/read_events.py"))
        .arg(logdir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "EventAccumulator failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from read_events.py")
}

/// A server subcommand of `rl` running as a child process (`rl rollout-worker`,
/// `rl reward-server`): started, its ready line read, and stopped with SIGTERM. Killed if the
/// test ends without stopping it.
pub struct Served {
    child: std::process::Child,
    /// The ready line it printed (`listening on ADDR (...)`).
    pub line: String,
    /// The address it listens on.
    pub addr: String,
    log: PathBuf,
}

impl Served {
    /// Runs `command` with stdout piped and stderr into `log`; waits up to 120 s for the ready
    /// line.
    pub fn start(mut command: Command, log: PathBuf) -> Self {
        use std::io::BufRead;

        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the server log"))
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut served = Self {
            child,
            line: String::new(),
            addr: String::new(),
            log,
        };
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_default();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next());
        let Some(addr) = addr else {
            panic!("no ready line (got {line:?}); stderr:\n{}", served.stderr());
        };
        served.addr = addr.to_owned();
        served.line = line;
        served
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and returns at once.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    /// Waits up to `within` for it to exit: its exit code (`None` for a signal), or `Err` with
    /// its log when it is still running.
    pub fn exited_within(&mut self, within: std::time::Duration) -> Result<Option<i32>, String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return Ok(status.code());
            }
            if std::time::Instant::now() > deadline {
                return Err(self.stderr());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit.
    pub fn stop(mut self) {
        self.terminate();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                assert!(
                    status.success(),
                    "exit {status}; stderr:\n{}",
                    self.stderr()
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running 30 s after SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny random Llama (one layer, hidden size 16) with SmolLM2's tokenizer and chat template,
/// written as an HF folder at `out`: every config runs on it in seconds.
pub fn tiny_chat_model(out: &Path) -> PathBuf {
    use rl_model::arch::ArchConfig;
    let json = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152,
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512,
        "tie_word_embeddings": true, "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
    });
    let config = ArchConfig::from_json(json.clone()).expect("tiny config");
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _model = config.build(&vs.root()).expect("tiny model");
    rl_model::export::write_hf_dir(&vs, &json, &smollm2_tokenizer_dir(), out, tch::Kind::Float)
        .expect("write the tiny model");
    out.to_owned()
}

/// The tiny Llama fixture with a word-level tokenizer (`t0` … `t127`) beside it, in `model/`
/// of a temporary directory: a model directory `rl` loads like any HF one.
pub fn tiny_word_model() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).expect("create model/");
    let fixture = repo().join("crates/rl-model/tests/fixtures/models/tiny-llama");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("copy the fixture");
    }
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..128).map(|i| (format!("t{i}"), i.into())).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("write tokenizer");
    (tmp, dir)
}

/// Runs `command` (stdout discarded, stderr captured) and waits up to `within` for it to exit:
/// its exit code and stderr, or `None` (after killing it) when it was still running. For
/// commands that must refuse to start: a regression then fails the test instead of hanging it.
pub fn exit_within(
    mut command: Command,
    within: std::time::Duration,
) -> Option<(Option<i32>, String)> {
    let mut child = command
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rl");
    let deadline = std::time::Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rl") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut err);
    }
    status.map(|s| (s.code(), err))
}

/// Asserts that two runs' update lines (`metrics.jsonl`, one per step) trained alike: the same
/// mean reward each step (the same samples and scores), and loss, gradient norm and entropy
/// within 1e-5 (relative). `how` names the first run in messages.
pub fn assert_trained_alike(a: &[serde_json::Value], b: &[serde_json::Value], how: &str) {
    assert_eq!(a.len(), b.len(), "as many updates {how} as in one process");
    for (a, b) in a.iter().zip(b) {
        assert_eq!(
            a["reward/mean"], b["reward/mean"],
            "the same samples and scores"
        );
        for key in ["actor/pg_loss", "actor/grad_norm", "actor/entropy"] {
            let value = |line: &serde_json::Value| line[key].as_f64().expect("a number");
            let (x, y) = (value(a), value(b));
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "{key}: {x} {how}, {y} in one process"
            );
        }
    }
}

/// Starts `rl train CONFIG --run-dir RUN ARGS` in `cwd` in the background, its stdout dropped
/// and its stderr piped (for `wait_with_output`).
pub fn spawn_train(cwd: &Path, config: &Path, run: &Path, args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_rl"))
        .arg("train")
        .arg(config)
        .arg("--run-dir")
        .arg(run)
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rl train")
}
