//! `placement.mode = "ray"`: a Ray cluster places the role processes. `rl train` runs the
//! launcher `deploy/ray/launch.py` (embedded in this binary) with `placement.ray_python`; it
//! puts one actor per role into one placement group (`placement.ray_cpus` CPUs each, one GPU
//! for a role on a GPU), each actor running the role's `rl` command, and reports each role as
//! a JSON line. With no `placement.ray_address` it starts a private Ray instance on 127.0.0.1
//! for the run. Its stdin stays open while `rl train` lives, carrying restart commands (Ray
//! restarts the role's actor, [`Restarter`]); when this process exits, even killed, the
//! launcher stops every role and leaves the cluster.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex,
        mpsc::{Receiver, RecvTimeoutError},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rl_core::{Config, config::is_loopback};
use rl_runtime::trainer::supervisor::Supervisor;
use serde::Deserialize;
use serde_json::json;

use super::{Address, Role, RoleKind, processes::READY};

/// The launcher, run with `python -c`.
const LAUNCHER: &str = include_str!("../../../../deploy/ray/launch.py");

/// How long the launcher may take to stop the roles and leave the cluster.
const STOPPING: Duration = Duration::from_secs(30);

/// What the launcher reports, one JSON object per line.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    /// A role is running (a server: listening at `addr`).
    Ready {
        role: String,
        addr: Option<String>,
        node: String,
        pid: u32,
    },
    /// Every role is.
    AllReady,
    /// A role's process ended.
    Exited { role: String, status: String },
    /// The roles could not be placed.
    Error { message: String },
}

/// Roles Ray placed; dropping it has the launcher stop them.
pub struct Ray {
    launcher: Child,
    shared: Arc<Mutex<Shared>>,
}

/// What the launcher said and how to talk to it, shared with the trainer's [`Restarter`].
struct Shared {
    /// Open while the roles are to run; commands go this way.
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    /// Where each role runs, "node N, pid P", by name.
    placed: BTreeMap<String, String>,
    /// Roles that ended, with their status, by name.
    ended: BTreeMap<String, String>,
    /// The learner ranks' names.
    ranks: Vec<String>,
}

/// Places `roles` on the Ray cluster `config.placement` names; the servers' addresses. The
/// launcher's spec is kept in `run_dir` as `ray-spec.json`.
pub fn start(
    config: &Config,
    roles: Vec<Role>,
    run_dir: &Path,
) -> anyhow::Result<(Ray, Vec<Address>)> {
    let p = &config.placement;
    let spec = json!({
        "address": p.ray_address,
        "node_ip": "127.0.0.1",
        "strategy": "PACK",
        "ready_timeout_s": READY.as_secs(),
        "roles": roles.iter().map(|r| role_spec(r, p.ray_cpus)).collect::<Vec<_>>(),
    });
    let path = run_dir.join("ray-spec.json");
    std::fs::write(&path, format!("{spec:#}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let python = &p.ray_python;
    let mut launcher = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg("--spec")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run placement.ray_python = {python:?}: point it at a Python 3.10+ with ray installed (pip install 'ray==2.60.0'; scripts/requirements.txt puts it in the project's venv)")
        })?;
    let stdin = launcher.stdin.take();
    let stdout = launcher.stdout.take().context("the launcher's stdout")?;
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<Event>(&line) {
                Ok(event) => {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("the Ray launcher said {line:?}, which is not an event ({e})")
                }
            }
        }
    });
    let ranks = roles
        .iter()
        .filter(|r| r.kind == RoleKind::LearnerRank)
        .map(|r| r.name.clone())
        .collect();
    let mut shared = Shared {
        stdin,
        events,
        placed: BTreeMap::new(),
        ended: BTreeMap::new(),
        ranks,
    };
    let kinds: BTreeMap<String, RoleKind> =
        roles.iter().map(|r| (r.name.clone(), r.kind)).collect();
    let mut addresses = Vec::new();
    // The placement group's wait and the slowest role's start, with room for Ray's own start.
    let deadline = Instant::now() + READY * 2;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match shared.events.recv_timeout(left) {
            Ok(Event::Ready {
                role,
                addr,
                node,
                pid,
            }) => {
                tracing::info!("Ray placed the {role} on node {node} (pid {pid})");
                if let (Some(addr), Some(&kind)) = (addr, kinds.get(&role)) {
                    addresses.push((kind, reachable(&addr, &node)));
                }
                shared
                    .placed
                    .insert(role, format!("node {node}, pid {pid}"));
            }
            Ok(Event::AllReady) => break,
            Ok(Event::Error { message }) => bail!("Ray could not place the roles: {message}"),
            Ok(Event::Exited { role, status }) => {
                bail!(
                    "the {role} exited with {status} before every role was ready: see its error above"
                )
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!(
                    "the roles were not all ready on Ray within {} s",
                    (READY * 2).as_secs()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = launcher.wait().map(|s| s.to_string()).unwrap_or_default();
                bail!(
                    "the Ray launcher ({python}) exited ({status}) before every role was ready: see its error above"
                )
            }
        }
    }
    let shared = Arc::new(Mutex::new(shared));
    Ok((Ray { launcher, shared }, addresses))
}

/// Where servers listen: on loopback, unless Ray may place them on other machines.
pub fn listen_host(config: &Config) -> &'static str {
    let p = &config.placement;
    match &p.ray_address {
        Some(address) if p.mode == rl_core::config::PlacementMode::Ray && !is_loopback(address) => {
            "0.0.0.0"
        }
        _ => "127.0.0.1",
    }
}

/// The launcher's description of `role`.
fn role_spec(role: &Role, cpus: f64) -> serde_json::Value {
    let command = &role.command;
    let mut argv = vec![command.get_program().to_string_lossy().into_owned()];
    argv.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    if role.serves() {
        argv.push("--quiet".into());
    }
    let mut env: BTreeMap<String, String> = command
        .get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                v?.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    if role.gpu {
        // Ray gives each GPU actor its own device as CUDA_VISIBLE_DEVICES, which it sees as 0.
        env.insert("LOCAL_RANK".into(), "0".into());
    }
    json!({
        "name": role.name,
        "argv": argv,
        "env": env,
        "cpus": cpus,
        "gpus": if role.gpu { 1.0 } else { 0.0 },
        "ready": role.serves(),
    })
}

/// `addr` as the controller reaches it: a server listening on every interface is at its node.
fn reachable(addr: &str, node: &str) -> String {
    match addr.strip_prefix("0.0.0.0:") {
        Some(port) => format!("{node}:{port}"),
        None => addr.to_owned(),
    }
}

impl Shared {
    /// Takes the events that came since the last look.
    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.take(event);
        }
    }

    /// Records what `event` says about the roles.
    fn take(&mut self, event: Event) {
        match event {
            Event::Exited { role, status } => {
                if status == "exit code 0" {
                    tracing::info!("the {role} that Ray placed has stopped");
                } else {
                    tracing::warn!("the {role} that Ray placed exited with {status}");
                }
                self.ended.insert(role, status);
            }
            Event::Error { message } => tracing::warn!("the Ray launcher: {message}"),
            Event::Ready { .. } | Event::AllReady => {}
        }
    }

    /// Has the launcher restart role `name` (Ray restarts its actor) and waits for it to serve
    /// again; its address as a URL.
    fn restart(&mut self, name: &str) -> Result<String, String> {
        self.drain();
        let stdin = self.stdin.as_mut().ok_or("the run is stopping")?;
        let command = json!({ "restart": name });
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("the Ray launcher is gone: {e}"))?;
        let deadline = Instant::now() + READY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Ready {
                    role,
                    addr: Some(addr),
                    node,
                    pid,
                }) if role == name => {
                    self.ended.remove(&role);
                    self.placed.insert(role, format!("node {node}, pid {pid}"));
                    return Ok(format!("http://{}", reachable(&addr, &node)));
                }
                Ok(Event::Error { message }) if message.contains(name) => return Err(message),
                Ok(event) => self.take(event),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("not serving again within {} s", READY.as_secs()));
                }
                Err(RecvTimeoutError::Disconnected) => return Err("the Ray launcher exited".into()),
            }
        }
    }
}

impl Ray {
    /// Those that have exited, each as "the ROLE (on Ray: node N, pid P) exited with STATUS".
    pub fn exited(&mut self) -> Vec<String> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.drain();
        shared
            .ended
            .iter()
            .map(|(role, status)| {
                let place = shared.placed.get(role).map_or("", String::as_str);
                format!("the {role} (on Ray: {place}) exited with {status}")
            })
            .collect()
    }

    /// Who restarts the servers Ray placed, for the trainer.
    pub fn restarter(&self) -> Restarter {
        Restarter(self.shared.clone())
    }

    /// Waits for each learner rank to end, then stops the rest; an error names each rank that
    /// failed.
    pub fn finish(self) -> anyhow::Result<()> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + STOPPING;
        while shared.ranks.iter().any(|r| !shared.ended.contains_key(r))
            && Instant::now() < deadline
        {
            match shared.events.recv_timeout(Duration::from_millis(200)) {
                Ok(event) => shared.take(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let failed: Vec<String> = shared
            .ranks
            .iter()
            .filter_map(|rank| match shared.ended.get(rank).map(String::as_str) {
                Some("exit code 0") => None,
                Some(status) => Some(format!("the {rank} exited with {status}")),
                None => Some(format!(
                    "the {rank} did not stop within {} s",
                    STOPPING.as_secs()
                )),
            })
            .collect();
        drop(shared);
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("{}", failed.join("; "))
        }
    }
}

/// Restarts servers Ray placed, for the trainer: the launcher stops the role's process, Ray
/// restarts its actor, and the role serves again there, on a new port.
pub struct Restarter(Arc<Mutex<Shared>>);

impl Supervisor for Restarter {
    fn restart_worker(&self, index: usize) -> Result<String, String> {
        let mut shared = self.0.lock().unwrap_or_else(|e| e.into_inner());
        shared.restart(&format!("rollout worker {index}"))
    }

    fn restart_reward(&self) -> Result<String, String> {
        let mut shared = self.0.lock().unwrap_or_else(|e| e.into_inner());
        shared.restart("reward server")
    }
}

impl Drop for Ray {
    fn drop(&mut self) {
        // EOF on its stdin: the launcher stops every role and leaves the cluster.
        let stdin = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stdin
            .take();
        drop(stdin);
        let deadline = Instant::now() + STOPPING;
        while Instant::now() < deadline {
            match self.launcher.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        tracing::warn!(
            "the Ray launcher did not stop within {} s; killing it",
            STOPPING.as_secs()
        );
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
    }
}
