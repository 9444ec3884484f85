//! `placement.mode = "processes"`: `rl train` starts its rollout workers and its reward server as
//! `rl rollout-worker` and `rl reward-server` processes on this machine (loopback, port 0),
//! waits for each ready line, and points the run's config at them, so the trainer drives them
//! exactly as it drives servers a scheduler started. Each watches `rl train` and stops when it
//! is gone; `rl train` stops them when it exits. (Learner ranks: [`super::learners`].)

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use rl_core::{Config, config::RewardKind};

use crate::cli::TrainArgs;

/// How long a role may take to load and print its ready line.
const READY: Duration = Duration::from_secs(600);

/// The variable naming the `rl train` that started a process, which it watches.
pub const PARENT: &str = "RL_PARENT_PID";

/// Processes this `rl train` started, each with what it is; dropping it stops those still
/// running.
#[derive(Default)]
pub struct Started(Vec<(String, Child)>);

impl Started {
    /// Adds `child`, the role `what`, to those stopped on drop.
    pub fn push(&mut self, what: String, child: Child) {
        self.0.push((what, child));
    }

    /// Those that have exited, each as "ROLE (pid N) exited with STATUS".
    pub fn exited(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .filter_map(|(what, child)| {
                let status = child.try_wait().ok()??;
                Some(format!(
                    "the {what} (pid {}) exited with {status}",
                    child.id()
                ))
            })
            .collect()
    }

    /// Waits for each to end (the learner ranks, after rank 0 told them the run is over); an
    /// error names each that failed.
    pub fn wait(mut self) -> anyhow::Result<()> {
        let failed: Vec<String> = self
            .0
            .drain(..)
            .filter_map(|(what, mut child)| match child.wait() {
                Ok(status) if status.success() => None,
                Ok(status) => Some(format!("the {what} exited with {status}")),
                Err(e) => Some(format!("the {what}: {e}")),
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("{}", failed.join("; "))
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the rollout workers and (for a rule or model reward) the reward server, and rewrites
/// `config` to reach them: `placement.rollout_servers`, `reward.kind = "remote"`, `reward.url`.
pub fn start_servers(args: &TrainArgs, config: &mut Config) -> anyhow::Result<Started> {
    let mut started = Started::default();
    let exe = std::env::current_exe().context("cannot find the rl executable")?;
    let p = &config.placement;
    let mut servers = Vec::new();
    for i in 0..p.rollout_workers {
        let mut command = Command::new(&exe);
        command
            .args(["rollout-worker", "--listen", "127.0.0.1:0", "--model"])
            .arg(&config.model.path)
            .args(["--device", &p.rollout_device.to_string()])
            .args(["--dtype", config.model.dtype.as_str()])
            .args(["--max-batch", &config.rollout.max_batch.to_string()]);
        if config.rollout.max_seq_len > 0 {
            command.args(["--max-seq-len", &config.rollout.max_seq_len.to_string()]);
        }
        let addr = start(&mut started, command, &format!("rollout worker {i}"))?;
        servers.push(format!("http://{addr}"));
    }
    config.placement.rollout_servers = servers;
    if matches!(config.reward.kind, RewardKind::Rule | RewardKind::Model) {
        let mut command = Command::new(&exe);
        command.args(["reward-server", "--listen", "127.0.0.1:0", "--config"]);
        command.arg(&args.config);
        for set in &args.overrides {
            command.arg("--set").arg(set);
        }
        let addr = start(&mut started, command, "reward server")?;
        config.reward.kind = RewardKind::Remote;
        config.reward.url = Some(format!("http://{addr}"));
    }
    Ok(started)
}

/// Starts `command` (a server printing `listening on ADDR (...)` once ready) as a child that
/// watches this process; its address.
fn start(started: &mut Started, mut command: Command, what: &str) -> anyhow::Result<String> {
    let mut child = command
        .arg("--quiet")
        .env(PARENT, std::process::id().to_string())
        .env_remove("RL_ROLLOUT_TOKEN")
        .env_remove("RL_REWARD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the {what}"))?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let pid = child.id();
    started.push(what.to_owned(), child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(READY).unwrap_or_default();
    let Some(addr) = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
    else {
        bail!("the {what} (pid {pid}) did not start: see its error above");
    };
    tracing::info!(pid, "started the {what} on {addr}");
    Ok(addr.to_owned())
}

/// A process `rl train` started exits when that `rl train` is gone (even killed), instead of
/// serving or waiting for nobody.
pub fn watch_parent() {
    let Some(parent) = std::env::var(PARENT)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return;
    };
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                eprintln!("the rl train that started this process is gone; stopping");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
