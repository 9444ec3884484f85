//! Weight sync by collective broadcast (`placement.weight_sync = "broadcast"`): the controller
//! is rank 0 of a weight group whose other ranks are its `rl rollout-worker` processes, over
//! libtorch's c10d (Gloo for CPU replicas, NCCL for CUDA ones, so the weights go device to
//! device). [`Broadcaster`] is the controller's side; [`C10dGroup`] is a worker's
//! ([`rl_rollout::remote::collective::WeightGroup`]).

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use rl_learner::group::{Backend, ProcessGroup, Rendezvous};
use rl_rollout::{
    RolloutError, RolloutWorker,
    remote::collective::{Meeting, WeightGroup, specs},
    worker::NamedTensors,
};
use tch::{Device, Tensor};

/// The controller's side of a weight group.
pub struct Broadcaster {
    group: ProcessGroup,
}

impl std::fmt::Debug for Broadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcaster")
            .field("world", &self.group.world())
            .finish()
    }
}

impl Broadcaster {
    /// Forms the group on `host` (a free port there) with `workers` as ranks 1.., over the
    /// backend for weights on `device`; every rank waits up to `timeout` for the others.
    pub fn form(
        runtime: &tokio::runtime::Runtime,
        workers: &[Arc<dyn RolloutWorker>],
        host: &str,
        device: Device,
        timeout: Duration,
    ) -> Result<Self, String> {
        let port = TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on {host} for the weight group: {e}"))?
            .port();
        let world = workers.len() + 1;
        let rendezvous = Rendezvous {
            addr: host.to_owned(),
            port,
            rank: 0,
            world,
            local_rank: 0,
            agent_store: false,
        };
        let joins: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, worker)| {
                let worker = worker.clone();
                let meeting = Meeting {
                    addr: host.to_owned(),
                    port,
                    rank: i + 1,
                    world,
                    timeout,
                };
                runtime.spawn(async move { worker.join_weight_group(meeting).await })
            })
            .collect();
        let backend = Backend::for_device(device);
        std::thread::scope(|s| {
            let me = s.spawn(|| ProcessGroup::join(&rendezvous, backend, timeout));
            for (i, join) in joins.into_iter().enumerate() {
                let joined = runtime
                    .block_on(join)
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                joined.map_err(|e| format!("rollout worker {i} did not join: {e}"))?;
            }
            let group = me
                .join()
                .map_err(|_| "the controller's join panicked".to_owned())?
                .map_err(|e| e.to_string())?;
            Ok(Self { group })
        })
    }

    /// Sends `weights` as policy version `version` to every worker: each is told which tensors
    /// follow, and rank 0 broadcasts them; returns once every worker has loaded them.
    pub fn send(
        &self,
        runtime: &tokio::runtime::Runtime,
        workers: &[Arc<dyn RolloutWorker>],
        version: u64,
        weights: &NamedTensors,
    ) -> Result<(), String> {
        let announced = specs(weights);
        let calls: Vec<_> = workers
            .iter()
            .map(|worker| {
                let worker = worker.clone();
                let specs = announced.clone();
                runtime.spawn(async move { worker.broadcast_weights(version, specs).await })
            })
            .collect();
        // Rank 0 reads its tensors only; detached, they carry no autograd history.
        let tensors: Vec<Tensor> = weights.iter().map(|(_, t)| t.detach()).collect();
        std::thread::scope(|s| {
            // The calls make progress on another thread while this one broadcasts.
            let answered = s.spawn(|| {
                let answer = |call: tokio::task::JoinHandle<Result<(), RolloutError>>| {
                    runtime
                        .block_on(call)
                        .unwrap_or_else(|e| Err(RolloutError::WorkerGone(e.to_string())))
                };
                calls
                    .into_iter()
                    .map(answer)
                    .collect::<Vec<Result<(), _>>>()
            });
            let sent = self.group.broadcast(&tensors, 0);
            let answers = answered
                .join()
                .map_err(|_| "waiting for the workers panicked".to_owned())?;
            let mut failed: Vec<String> = answers
                .into_iter()
                .enumerate()
                .filter_map(|(i, a)| a.err().map(|e| format!("rollout worker {i}: {e}")))
                .collect();
            if let Err(e) = sent {
                failed.push(format!("the broadcast: {e}"));
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            }
        })
    }
}

/// A worker's side of a weight group over c10d: joined once, then a broadcast per update.
pub struct C10dGroup {
    device: Device,
    group: Mutex<Option<ProcessGroup>>,
}

impl C10dGroup {
    /// For a replica on `device` (Gloo on CPU, NCCL on CUDA).
    pub fn new(device: Device) -> Self {
        Self {
            device,
            group: Mutex::new(None),
        }
    }
}

impl WeightGroup for C10dGroup {
    fn join(&self, meeting: &Meeting) -> Result<(), String> {
        let rendezvous = Rendezvous {
            addr: meeting.addr.clone(),
            port: meeting.port,
            rank: meeting.rank,
            world: meeting.world,
            local_rank: 0,
            agent_store: false,
        };
        let group = ProcessGroup::join(
            &rendezvous,
            Backend::for_device(self.device),
            meeting.timeout,
        )
        .map_err(|e| e.to_string())?;
        *self.group.lock().unwrap_or_else(|e| e.into_inner()) = Some(group);
        Ok(())
    }

    fn receive(&self, tensors: &[Tensor]) -> Result<(), String> {
        let group = self.group.lock().unwrap_or_else(|e| e.into_inner());
        let group = group
            .as_ref()
            .ok_or("this worker has not joined a weight group: call JoinWeightGroup first")?;
        group.broadcast(tensors, 0).map_err(|e| e.to_string())
    }

    fn device(&self) -> Device {
        self.device
    }
}
