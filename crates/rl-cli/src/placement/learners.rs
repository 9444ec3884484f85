//! The learner group of `rl train` (`placement.learners` > 1). With `placement.mode =
//! "cluster"` a launcher started every rank (torchrun, Slurm, a Kubernetes operator: `RANK`,
//! `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` set); with `"processes"` or `"ray"` `rl train` is
//! rank 0, and ranks 1.. are role processes of the same command ([`rank_roles`]) that it starts
//! or Ray places. Rank 0 is the controller; the other ranks follow it
//! ([`rl_runtime::trainer::follower`]).

use std::{net::TcpListener, process::Command, time::Duration};

use rl_core::{
    Config,
    config::{Backend as BackendName, PlacementMode as Mode},
};
use rl_learner::group::{Backend, ProcessGroup, Rendezvous};
use tch::Device;

use super::{Role, RoleKind, on_gpu, processes};
use crate::{cli::TrainArgs, commands::UsageError};

/// How long ranks wait for each other: to join (rank 0 may still be loading its roles) and at
/// each collective (the other ranks wait through rank 0's generation phase).
const PATIENCE: Duration = Duration::from_secs(1800);

/// This process's place in the learner group: none (one learner), or its rendezvous and, on a
/// rank 0 that is to start the others, their role processes.
pub struct Place {
    /// Where the ranks meet and which one this is.
    pub rendezvous: Option<Rendezvous>,
    /// Ranks 1.., to be started (`processes`) or placed (`ray`).
    pub ranks: Vec<Role>,
}

/// Finds (or makes) this process's place for `config`.
pub fn place(args: &TrainArgs, config: &Config) -> anyhow::Result<Place> {
    let learners = config.placement.learners as usize;
    let mode = config.placement.mode;
    let from_env = Rendezvous::from_env().map_err(|e| UsageError(e.to_string()))?;
    let started_here = std::env::var_os(processes::PARENT).is_some();
    let alone = || Place {
        rendezvous: None,
        ranks: Vec::new(),
    };
    match (mode, from_env) {
        (Mode::Local, Some(_)) => Err(UsageError(
            "RANK and WORLD_SIZE are set, so a launcher started this rl train as a learner rank: set placement.mode = \"cluster\"".into(),
        )
        .into()),
        (Mode::Processes | Mode::Ray, Some(_)) if !started_here => Err(UsageError(format!(
            "RANK and WORLD_SIZE are set, so a launcher started this rl train as a learner rank: set placement.mode = \"cluster\" (with \"{mode}\" rl train starts its ranks itself)"
        ))
        .into()),
        (_, Some(rendezvous)) => {
            if rendezvous.world != learners {
                return Err(UsageError(format!(
                    "WORLD_SIZE is {} but placement.learners = {learners}: launch one rl train per learner rank, or set placement.learners = {}",
                    rendezvous.world, rendezvous.world
                ))
                .into());
            }
            processes::watch_parent();
            Ok(Place {
                rendezvous: Some(rendezvous),
                ranks: Vec::new(),
            })
        }
        (Mode::Cluster, None) if learners > 1 => Err(UsageError(format!(
            "placement.mode = \"cluster\" with placement.learners = {learners}: start every rank with a launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun, srun, a Kubernetes operator), or set placement.mode = \"processes\""
        ))
        .into()),
        (Mode::Processes | Mode::Ray, None) if learners > 1 => {
            let (addr, port) = meeting_point(config)?;
            let rendezvous = Rendezvous {
                addr,
                port,
                rank: 0,
                world: learners,
                local_rank: 0,
                agent_store: false,
            };
            let ranks = rank_roles(args, config, &rendezvous)?;
            Ok(Place {
                rendezvous: Some(rendezvous),
                ranks,
            })
        }
        _ => Ok(alone()),
    }
}

/// CPU learner ranks on one host split its cores: each computes with `cores / ranks` threads
/// (at least 1; `OMP_NUM_THREADS` wins when set), since every rank computing with all of them
/// makes an update several times slower (measured: 2.5× with 2 ranks on 2 cores).
pub fn share_cores(rendezvous: &Rendezvous) {
    if std::env::var_os("OMP_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / rendezvous.world.max(1)).max(1);
    tch::set_num_threads(i32::try_from(threads).unwrap_or(1));
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

/// Ranks 1.. of `rendezvous` as `rl train` role processes with the same config and overrides.
fn rank_roles(
    args: &TrainArgs,
    config: &Config,
    rendezvous: &Rendezvous,
) -> anyhow::Result<Vec<Role>> {
    let exe = std::env::current_exe()?;
    Ok((1..rendezvous.world)
        .map(|rank| {
            let mut command = Command::new(&exe);
            command.arg("train").arg(&args.config).arg("--quiet");
            for set in &args.overrides {
                command.arg("--set").arg(set);
            }
            command
                .env("WORLD_SIZE", rendezvous.world.to_string())
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("MASTER_ADDR", &rendezvous.addr)
                .env("MASTER_PORT", rendezvous.port.to_string());
            Role {
                name: format!("learner rank {rank}"),
                kind: RoleKind::LearnerRank,
                command,
                gpu: on_gpu(config.placement.learner_device),
            }
        })
        .collect())
}
