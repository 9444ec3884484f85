//! Where `rl train`'s roles run (`placement.mode`), seen from the controller: which role
//! processes a run needs ([`Role`]: rollout workers, the reward server, learner ranks 1..), and
//! who starts them: `rl train` itself, as child processes on this machine ([`processes`]), or a
//! Ray cluster, as actors ([`ray`]). Either way the controller learns the servers' addresses
//! and points the run's config at them ([`point_at`]), then drives them exactly as it drives
//! servers a scheduler started (`cluster`). The learner group's side is [`learners`].

pub mod learners;
pub mod processes;
pub mod ray;

use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use rl_core::{
    Config,
    config::{DeviceSpec, PlacementMode, RewardKind},
};

use rl_runtime::trainer::supervisor::Supervisor;

use crate::cli::TrainArgs;

/// What a role process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// `rl rollout-worker`.
    RolloutWorker,
    /// `rl reward-server`.
    RewardServer,
    /// `rl train` as learner rank 1.. of the group.
    LearnerRank,
}

/// One role process: what it is, the command that runs it, and whether it computes on a GPU.
#[derive(Debug)]
pub struct Role {
    /// How messages name it ("rollout worker 0").
    pub name: String,
    /// What it is.
    pub kind: RoleKind,
    /// How to run it.
    pub command: Command,
    /// Whether it needs a GPU of its own.
    pub gpu: bool,
}

impl Role {
    /// Whether it serves, printing `listening on ADDR (...)` once ready.
    pub fn serves(&self) -> bool {
        self.kind != RoleKind::LearnerRank
    }
}

/// A served role's address.
pub type Address = (RoleKind, String);

/// The role processes of a run, however they were started; dropping it stops those running.
pub enum Placed {
    /// Every role runs in this process (or a scheduler started them).
    Here,
    /// Child processes of this `rl train` (shared with the trainer, which has them restarted).
    Processes(Arc<Mutex<processes::Started>>),
    /// Actors of a Ray cluster.
    Ray(ray::Ray),
}

impl Placed {
    /// Starts `roles` as `config.placement.mode` says (nothing for `local` and `cluster`), and
    /// points `config` at the servers among them. `run_dir` keeps the launcher's spec.
    pub fn start(
        config: &mut Config,
        roles: Vec<Role>,
        run_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let (placed, addresses) = match config.placement.mode {
            PlacementMode::Processes => {
                let (started, addresses) = processes::start(roles)?;
                (Self::Processes(Arc::new(Mutex::new(started))), addresses)
            }
            PlacementMode::Ray => {
                let (ray, addresses) = ray::start(config, roles, run_dir)?;
                (Self::Ray(ray), addresses)
            }
            PlacementMode::Local | PlacementMode::Cluster => (Self::Here, Vec::new()),
        };
        point_at(config, &addresses);
        Ok(placed)
    }

    /// Those that have exited, each as "the ROLE (...) exited with STATUS".
    pub fn exited(&mut self) -> Vec<String> {
        match self {
            Self::Here => Vec::new(),
            Self::Processes(started) => lock(started).exited(),
            Self::Ray(ray) => ray.exited(),
        }
    }

    /// Who restarts dead or hung servers for the trainer: `rl train` for those it started, the
    /// launcher (and Ray's actor restarts) for those Ray placed.
    pub fn supervisor(&self) -> Option<Arc<dyn Supervisor>> {
        match self {
            Self::Processes(started) => Some(Arc::new(processes::Restarter(started.clone()))),
            Self::Ray(ray) => Some(Arc::new(ray.restarter())),
            Self::Here => None,
        }
    }

    /// After the run: waits for the learner ranks to end (rank 0 told them the run is over),
    /// then stops the servers; an error names each rank that failed.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Here => Ok(()),
            Self::Processes(started) => lock(&started).finish(),
            Self::Ray(ray) => ray.finish(),
        }
    }
}

fn lock(started: &Mutex<processes::Started>) -> std::sync::MutexGuard<'_, processes::Started> {
    started.lock().unwrap_or_else(|e| e.into_inner())
}

/// The servers a run in `processes` or `ray` mode starts: `placement.rollout_workers` `rl
/// rollout-worker`s and, for a rule or model reward, an `rl reward-server`, each listening on
/// port 0 of `host`.
pub fn server_roles(args: &TrainArgs, config: &Config, host: &str) -> anyhow::Result<Vec<Role>> {
    let exe = std::env::current_exe().context("cannot find the rl executable")?;
    let p = &config.placement;
    let listen = format!("{host}:0");
    let mut roles = Vec::new();
    for i in 0..p.rollout_workers {
        let mut command = Command::new(&exe);
        command
            .args(["rollout-worker", "--listen", &listen, "--model"])
            .arg(&config.model.path)
            .args(["--device", &p.rollout_device.to_string()])
            .args(["--dtype", config.model.dtype.as_str()])
            .args(["--max-batch", &config.rollout.max_batch.to_string()]);
        if config.rollout.max_seq_len > 0 {
            command.args(["--max-seq-len", &config.rollout.max_seq_len.to_string()]);
        }
        roles.push(Role {
            name: format!("rollout worker {i}"),
            kind: RoleKind::RolloutWorker,
            command,
            gpu: on_gpu(p.rollout_device),
        });
    }
    if matches!(config.reward.kind, RewardKind::Rule | RewardKind::Model) {
        let mut command = Command::new(&exe);
        command.args(["reward-server", "--listen", &listen, "--config"]);
        command.arg(&args.config);
        for set in &args.overrides {
            command.arg("--set").arg(set);
        }
        roles.push(Role {
            name: "reward server".into(),
            kind: RoleKind::RewardServer,
            command,
            gpu: config.reward.kind == RewardKind::Model && on_gpu(p.reward_device),
        });
    }
    Ok(roles)
}

/// Points `config` at the servers started for it: `placement.rollout_servers`, and
/// `reward.kind = "remote"` with `reward.url` when a reward server was started.
pub fn point_at(config: &mut Config, addresses: &[Address]) {
    let url = |addr: &str| format!("http://{addr}");
    let workers: Vec<String> = addresses
        .iter()
        .filter(|(kind, _)| *kind == RoleKind::RolloutWorker)
        .map(|(_, addr)| url(addr))
        .collect();
    if !workers.is_empty() {
        config.placement.rollout_servers = workers;
    }
    if let Some((_, addr)) = addresses
        .iter()
        .find(|(kind, _)| *kind == RoleKind::RewardServer)
    {
        config.reward.kind = RewardKind::Remote;
        config.reward.url = Some(url(addr));
    }
}

/// Whether a role on `device` computes on a GPU (`auto`: when this machine has one).
pub fn on_gpu(device: DeviceSpec) -> bool {
    match device {
        DeviceSpec::Cuda(_) => true,
        DeviceSpec::Auto => tch::Cuda::is_available(),
        DeviceSpec::Cpu => false,
    }
}
