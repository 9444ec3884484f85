//! The learner group of `rl train` (`placement.learners` > 1). Either a launcher started every
//! rank (torchrun, Slurm, a Kubernetes operator: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`,
//! `MASTER_PORT` set), or `rl train` is rank 0 and starts ranks 1.. itself as child processes
//! of the same command, which it stops when it exits. Rank 0 is the controller; the other ranks
//! follow it ([`rl_runtime::trainer::follower`]).

use std::{
    net::TcpListener,
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rl_core::{Config, config::Backend as BackendName};
use rl_learner::group::{Backend, ProcessGroup, Rendezvous};
use tch::Device;

use super::UsageError;
use crate::cli::TrainArgs;

/// How long ranks wait for each other: to join (rank 0 may still be loading its roles) and at
/// each collective (the other ranks wait through rank 0's generation phase).
const PATIENCE: Duration = Duration::from_secs(1800);

/// The variable naming the `rl train` that started this rank, which it watches.
const PARENT: &str = "RL_LEARNER_PARENT";

/// This process's place in the learner group: none (one learner), or its rendezvous and, on a
/// rank 0 that started the others, their processes.
pub struct Place {
    /// Where the ranks meet and which one this is.
    pub rendezvous: Option<Rendezvous>,
    /// The ranks this process started (stopped when it is dropped).
    pub children: Children,
}

/// Finds (or makes) this process's place for `config`.
pub fn place(args: &TrainArgs, config: &Config) -> anyhow::Result<Place> {
    let learners = config.placement.learners as usize;
    let from_env = Rendezvous::from_env().map_err(|e| UsageError(e.to_string()))?;
    if let Some(rendezvous) = from_env {
        if rendezvous.world != learners {
            return Err(UsageError(format!(
                "WORLD_SIZE is {} but placement.learners = {learners}: launch one rl train per learner rank, or set placement.learners = {}",
                rendezvous.world, rendezvous.world
            ))
            .into());
        }
        if let Some(parent) = std::env::var(PARENT).ok().and_then(|p| p.parse().ok()) {
            watch_parent(parent);
        }
        return Ok(Place {
            rendezvous: Some(rendezvous),
            children: Children(Vec::new()),
        });
    }
    if learners <= 1 {
        return Ok(Place {
            rendezvous: None,
            children: Children(Vec::new()),
        });
    }
    let (addr, port) = meeting_point(config)?;
    let rendezvous = Rendezvous {
        addr,
        port,
        rank: 0,
        world: learners,
        local_rank: 0,
        agent_store: false,
    };
    let children = start_ranks(args, &rendezvous)?;
    Ok(Place {
        rendezvous: Some(rendezvous),
        children,
    })
}

/// The collective backend `placement.backend` names for learners on `device`; refused when it
/// cannot carry their tensors.
pub fn backend(config: &Config, device: Device) -> anyhow::Result<Backend> {
    let backend = match config.placement.backend {
        BackendName::Auto => Backend::for_device(device),
        BackendName::Gloo => Backend::Gloo,
        BackendName::Nccl => Backend::Nccl,
    };
    if backend != Backend::for_device(device) {
        return Err(UsageError(format!(
            "placement.backend = \"{}\" does not carry tensors on {} (placement.learner_device): Gloo carries CPU tensors, NCCL CUDA tensors; set placement.backend = \"auto\"",
            config.placement.backend,
            rl_model::device_name(device)
        ))
        .into());
    }
    Ok(backend)
}

/// Joins the group as `rendezvous` says, over `backend`.
pub fn join(rendezvous: &Rendezvous, backend: Backend) -> anyhow::Result<ProcessGroup> {
    tracing::info!(
        rank = rendezvous.rank,
        world = rendezvous.world,
        "joining the learner group at {}:{}",
        rendezvous.addr,
        rendezvous.port
    );
    Ok(ProcessGroup::join(rendezvous, backend, PATIENCE)?)
}

/// `placement.rendezvous` (`host:port`), else a free port on loopback.
fn meeting_point(config: &Config) -> anyhow::Result<(String, u16)> {
    if let Some(addr) = &config.placement.rendezvous {
        let parsed = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)));
        return parsed.ok_or_else(|| {
            UsageError(format!(
                "placement.rendezvous = {addr:?}: give host:port, e.g. \"127.0.0.1:29500\""
            ))
            .into()
        });
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok(("127.0.0.1".into(), port))
}

/// Starts ranks 1.. of `rendezvous` as `rl train` processes with the same config and overrides.
fn start_ranks(args: &TrainArgs, rendezvous: &Rendezvous) -> anyhow::Result<Children> {
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::new());
    for rank in 1..rendezvous.world {
        let mut command = Command::new(&exe);
        command.arg("train").arg(&args.config).arg("--quiet");
        for set in &args.overrides {
            command.arg("--set").arg(set);
        }
        // Its own process group: a Ctrl-C at the terminal reaches rank 0 only, which checkpoints
        // and then tells the other ranks to stop.
        let child = command
            .process_group(0)
            .env("WORLD_SIZE", rendezvous.world.to_string())
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("MASTER_ADDR", &rendezvous.addr)
            .env("MASTER_PORT", rendezvous.port.to_string())
            .env(PARENT, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        tracing::info!(rank, pid = child.id(), "started learner rank");
        children.0.push(child);
    }
    Ok(children)
}

/// A rank started by `rl train` exits when that process is gone (even killed), instead of
/// waiting out its patience for a rank 0 that will not come.
fn watch_parent(parent: u32) {
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                eprintln!("the rl train that started this learner rank is gone; stopping");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}

/// Learner ranks this process started; dropping it stops those still running.
pub struct Children(Vec<Child>);

impl Children {
    /// Waits for every rank to end (after rank 0 told them the run is over); an error names
    /// each that failed.
    pub fn wait(mut self) -> anyhow::Result<()> {
        let failed: Vec<String> = self
            .0
            .drain(..)
            .enumerate()
            .filter_map(|(i, mut child)| match child.wait() {
                Ok(status) if status.success() => None,
                Ok(status) => Some(format!("learner rank {} exited with {status}", i + 1)),
                Err(e) => Some(format!("learner rank {}: {e}", i + 1)),
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(failed.join("; ")))
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
