//! `placement.mode = "processes"`: `rl train` starts its role processes itself, on this machine,
//! as its children: the servers on loopback port 0 (it waits for each ready line), the learner
//! ranks in their own process group, so that a Ctrl-C at the terminal reaches only rank 0, which
//! checkpoints and then tells them to stop. Each child watches `rl train` ([`watch_parent`]) and
//! stops when it is gone; `rl train` stops those still running when it exits. A server that dies
//! or hangs is started again when the trainer asks ([`Restarter`]).

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use rl_runtime::trainer::supervisor::Supervisor;

use super::{Address, Role, RoleKind};

/// How long a role may take to load and print its ready line.
pub const READY: Duration = Duration::from_secs(600);

/// The variable naming the process that started a role, which the role watches.
pub const PARENT: &str = "RL_PARENT_PID";

/// One process this `rl train` started: what it is, how to start it again, and the process.
struct Process {
    name: String,
    kind: RoleKind,
    command: Command,
    child: Child,
}

/// Processes this `rl train` started; dropping it stops those still running.
#[derive(Default)]
pub struct Started(Vec<Process>);

impl Started {
    /// Those that have exited, each as "the ROLE (pid N) exited with STATUS".
    pub fn exited(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .filter_map(|p| {
                let status = p.child.try_wait().ok()??;
                Some(format!(
                    "the {} (pid {}) exited with {status}",
                    p.name,
                    p.child.id()
                ))
            })
            .collect()
    }

    /// Waits for each learner rank to end; an error names each rank that failed.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let failed: Vec<String> = self
            .0
            .iter_mut()
            .filter(|p| p.kind == RoleKind::LearnerRank)
            .filter_map(|p| match p.child.wait() {
                Ok(status) if status.success() => None,
                Ok(status) => Some(format!("the {} exited with {status}", p.name)),
                Err(e) => Some(format!("the {}: {e}", p.name)),
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
        for p in &mut self.0 {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// Restarts the servers of a [`Started`] for the trainer: the process is stopped if it still
/// runs (it hung) and started again with the same command, on a new port.
pub struct Restarter(pub Arc<Mutex<Started>>);

impl Restarter {
    fn restart(&self, name: &str) -> Result<String, String> {
        let mut started = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let process = started
            .0
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("rl train did not start a {name}"))?;
        let _ = process.child.kill();
        let _ = process.child.wait();
        let (child, addr) =
            spawn_server(copy(&process.command), name).map_err(|e| format!("{e:#}"))?;
        process.child = child;
        Ok(format!("http://{addr}"))
    }
}

impl Supervisor for Restarter {
    fn restart_worker(&self, index: usize) -> Result<String, String> {
        self.restart(&format!("rollout worker {index}"))
    }

    fn restart_reward(&self) -> Result<String, String> {
        self.restart("reward server")
    }
}

/// A command like `command`: the same program, arguments and environment.
fn copy(command: &Command) -> Command {
    let mut out = Command::new(command.get_program());
    out.args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => out.env(key, value),
            None => out.env_remove(key),
        };
    }
    out
}

/// Starts `roles` as children of this process, each watching it; the servers' addresses, once
/// each has printed its ready line.
pub fn start(roles: Vec<Role>) -> anyhow::Result<(Started, Vec<Address>)> {
    let mut started = Started::default();
    let mut addresses = Vec::new();
    for Role {
        name,
        kind,
        mut command,
        ..
    } in roles
    {
        command
            .env(PARENT, std::process::id().to_string())
            .env_remove("RL_ROLLOUT_TOKEN")
            .env_remove("RL_REWARD_TOKEN");
        let child = if kind == RoleKind::LearnerRank {
            let child = copy(&command)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start the {name}"))?;
            tracing::info!(pid = child.id(), "started the {name}");
            child
        } else {
            command.arg("--quiet");
            let (child, addr) = spawn_server(copy(&command), &name)?;
            tracing::info!(pid = child.id(), "started the {name} on {addr}");
            addresses.push((kind, addr));
            child
        };
        started.0.push(Process {
            name,
            kind,
            command,
            child,
        });
    }
    Ok((started, addresses))
}

/// Starts `command`, the server `name`, and waits for its ready line: the process and its
/// address.
fn spawn_server(mut command: Command, name: &str) -> anyhow::Result<(Child, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the {name}"))?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading, so that the server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = rx.recv_timeout(READY).unwrap_or_default();
    match ready_address(&line) {
        Some(addr) => Ok((child, addr.to_owned())),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the {name} (pid {pid}) did not start: see its error above")
        }
    }
}

/// The address in a server's ready line, `listening on ADDR (...)`.
pub fn ready_address(line: &str) -> Option<&str> {
    line.strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
}

/// A process `rl train` (or a Ray actor) started exits when its starter is gone (even
/// killed), instead of serving or waiting for nobody.
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
                eprintln!("the process that started this one is gone; stopping");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
