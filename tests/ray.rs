//! `placement.mode = "ray"` end to end: a Ray head started here on 127.0.0.1 (as a cluster's
//! would be) places `configs/ray.toml`'s roles (two rollout workers, the reward server and a
//! second learner rank) as actors, and the run trains like the same config in one process;
//! once `rl train` has exited no role process is left. Without `placement.ray_address` the run
//! starts a private Ray instance of its own, and a Python without `ray` is refused with the fix.
//! A rollout worker killed mid-run is restarted by Ray (its actor), and every step completes. A
//! controller killed with SIGKILL leaves neither roles nor Ray behind, and `--resume` finishes.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{assert_trained_alike, repo, rl, spawn_train, stderr, tiny_chat_model};

/// One Ray test at a time: `ray stop` at the end of one would stop the other's instance.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The venv's `ray` command line.
fn ray_cli() -> PathBuf {
    let ray = rl_test_support::python().with_file_name("ray");
    assert!(
        ray.exists(),
        "no ray in the venv ({}): scripts/torch-env.sh installs scripts/requirements.txt",
        ray.display()
    );
    ray
}

/// A Ray head on 127.0.0.1 with 2 CPUs and no authentication, stopped when dropped.
struct Head {
    address: String,
}

impl Head {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new(ray_cli())
            .args(["start", "--head", "--node-ip-address", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--num-cpus", "2"])
            .args(["--include-dashboard=false", "--disable-usage-stats"])
            .env("RAY_USAGE_STATS_ENABLED", "0")
            // Ray 2.60 otherwise swaps the loopback address for the machine's routable one,
            // and turns on token authentication (a client reaching it by address then needs
            // RAY_AUTH_MODE=token).
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .env("RAY_AUTH_MODE", "disabled")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ray start --head failed: {}",
            stderr(&out)
        );
        Self {
            address: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Head {
    fn drop(&mut self) {
        let _ = Command::new(ray_cli()).args(["stop", "--force"]).output();
    }
}

/// `--set` arguments: the short form of a config on the tiny `model`, then `extra`.
fn sets(model: &Path, extra: &[&str]) -> Vec<String> {
    let base = [
        format!("model.path=\"{}\"", model.display()),
        "run.steps=2".into(),
        "eval.tasks=4".into(),
        "eval.every=0".into(),
        "logging.every=1".into(),
        "algorithm.entropy_coef=0.01".into(),
    ];
    base.into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .flat_map(|s| ["--set".to_owned(), s])
        .collect()
}

/// `rl train configs/ray.toml --run-dir RUN` with `sets`.
fn run_train(cwd: &Path, run: &Path, sets: &[String]) -> std::process::Output {
    let config = repo().join("configs/ray.toml");
    let mut args = vec![
        "train".to_owned(),
        config.display().to_string(),
        "--run-dir".into(),
        run.display().to_string(),
    ];
    args.extend(sets.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    rl(cwd, &args)
}

/// [`run_train`], which must succeed; its stderr.
fn train(cwd: &Path, run: &Path, sets: &[String]) -> String {
    let out = run_train(cwd, run, sets);
    assert!(out.status.success(), "{}: {}", run.display(), stderr(&out));
    stderr(&out)
}

/// The update metrics of each step of `run`.
fn updates(run: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("actor/pg_loss").is_some())
        .collect()
}

/// Processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let pid: u32 = path.file_name()?.to_str()?.parse().ok()?;
            let cmdline = fs::read(path.join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(text)
                .then_some(pid)
        })
        .collect()
}

#[test]
fn ray_places_the_roles_and_the_run_trains_like_one_process() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_chat_model(&tmp.path().join("tiny"));
    let python = rl_test_support::python();
    let head = Head::start();
    let placed = tmp.path().join("ray");
    let log = train(
        tmp.path(),
        &placed,
        &sets(
            &model,
            &[
                &format!("placement.ray_address=\"{}\"", head.address),
                "placement.ray_cpus=0.5",
                &format!("placement.ray_python=\"{}\"", python.display()),
            ],
        ),
    );
    for role in [
        "rollout worker 0",
        "rollout worker 1",
        "reward server",
        "learner rank 1",
    ] {
        assert!(
            log.contains(&format!("Ray placed the {role} on node 127.0.0.1")),
            "{role}:\n{log}"
        );
    }
    let spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(placed.join("ray-spec.json")).unwrap()).unwrap();
    assert_eq!(spec["address"], head.address.as_str());
    assert!(
        spec["roles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cpus"] == 0.5),
        "placement.ray_cpus reaches every actor: {spec}"
    );
    // Every role stops with the run: none of their command lines (which name the tiny model)
    // is left.
    let start = Instant::now();
    let model_dir = model.display().to_string();
    while !processes_mentioning(&model_dir).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "role processes left 30 s after rl train exited: {:?}",
            processes_mentioning(&model_dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(head);

    let together = tmp.path().join("local");
    train(
        tmp.path(),
        &together,
        &sets(
            &model,
            &["placement.mode=\"local\"", "placement.learners=1"],
        ),
    );
    let placed = updates(&placed);
    assert_eq!(placed.len(), 2);
    assert_trained_alike(&placed, &updates(&together), "on Ray");
}

#[test]
fn without_an_address_the_run_starts_a_private_ray_and_a_python_without_ray_is_refused() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_chat_model(&tmp.path().join("tiny"));
    let python = rl_test_support::python();
    let run = tmp.path().join("private");
    let log = train(
        tmp.path(),
        &run,
        &sets(
            &model,
            &[
                "placement.learners=1",
                "placement.rollout_workers=1",
                &format!("placement.ray_python=\"{}\"", python.display()),
            ],
        ),
    );
    assert!(
        log.contains("Ray placed the rollout worker 0 on node 127.0.0.1"),
        "{log}"
    );
    assert_eq!(updates(&run).len(), 2);

    // The system Python has no ray.
    let no_ray = sets(&model, &["placement.ray_python=\"/usr/bin/python3\""]);
    let out = run_train(tmp.path(), &tmp.path().join("no-ray"), &no_ray);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ray is not installed") && err.contains("pip install"),
        "{err}"
    );
}

#[test]
fn a_rollout_worker_killed_on_ray_is_restarted_with_its_actor() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_chat_model(&tmp.path().join("tiny"));
    let python = rl_test_support::python();
    let run = tmp.path().join("run");
    let config = repo().join("configs/ray.toml");
    let args = sets(
        &model,
        &[
            "run.steps=4",
            "placement.learners=1",
            &format!("placement.ray_python=\"{}\"", python.display()),
        ],
    );
    let mut child = spawn_train(tmp.path(), &config, &run, &args);
    let stepped = |step: u64| {
        fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| {
            t.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .is_ok_and(|v| v["step"] == step && v.get("rollout/samples").is_some())
            })
        })
    };
    let start = Instant::now();
    while !stepped(1) {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no step within 240 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "rl train exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let model_dir = model.display().to_string();
    let worker = processes_mentioning(&model_dir)
        .into_iter()
        .find(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("rollout-worker"))
        })
        .expect("a rollout worker Ray started");
    let killed = Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("was restarted at"), "{log}");
    let lines = updates_or_steps(&run);
    assert_eq!(lines.len(), 4, "every step ran: {lines:?}");
    for line in &lines {
        assert_eq!(line["rollout/dropped"].as_f64(), Some(0.0), "{line}");
    }
    assert!(
        lines[3]["rollout/restarts"].as_f64() >= Some(1.0),
        "{}",
        lines[3]
    );
}

/// The step lines of `run` (each has `rollout/samples`).
fn updates_or_steps(run: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["step"].as_u64() > Some(0) && l.get("rollout/samples").is_some())
        .collect()
}

/// Processes of a Ray instance (its GCS and raylets) still running on this machine.
fn ray_processes() -> Vec<u32> {
    ["gcs_server", "raylet"]
        .iter()
        .flat_map(|name| processes_mentioning(&format!("/ray/core/src/ray/{name}")))
        .collect()
}

#[test]
fn a_killed_controller_leaves_no_role_or_ray_behind_and_resumes() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_chat_model(&tmp.path().join("tiny"));
    let python = rl_test_support::python();
    let run = tmp.path().join("run");
    let args = sets(
        &model,
        &[
            "run.steps=3",
            "checkpoint.every=1",
            "placement.learners=1",
            "placement.rollout_workers=1",
            &format!("placement.ray_python=\"{}\"", python.display()),
        ],
    );
    let mut child = spawn_train(tmp.path(), &repo().join("configs/ray.toml"), &run, &args);
    let start = Instant::now();
    while !run.join("checkpoints/step-1").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no checkpoint within 240 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "rl train exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!ray_processes().is_empty(), "a private Ray instance runs");
    child.kill().unwrap();
    child.wait().unwrap();
    let model_dir = model.display().to_string();
    let start = Instant::now();
    while !processes_mentioning(&model_dir).is_empty() || !ray_processes().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "30 s after rl train was killed: roles {:?}, Ray {:?}",
            processes_mentioning(&model_dir),
            ray_processes()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut resume = args.clone();
    resume.push("--resume".into());
    let log = train(tmp.path(), &run, &resume);
    assert!(log.contains("resuming after step"), "{log}");
    assert_eq!(updates_or_steps(&run).last().unwrap()["step"], 3);
}
