//! `[placement]`: how many of each role run, on which devices, in this process or elsewhere.
//!
//! `learners` > 1 makes a learner group: data-parallel ranks that sum their gradients over
//! `backend` and meet at `rendezvous` (or where the launcher's `MASTER_ADDR`/`MASTER_PORT` say).

use serde::{Deserialize, Serialize};

use super::{
    device::DeviceSpec,
    validate::{Validator, quoted},
};

crate::choice! {
    /// Where the roles run.
    pub enum Mode {
        /// Every role in the `rl train` process (one learner).
        Local = "local",
        /// `rl train` starts the roles as processes on this machine: `rollout_workers` `rl
        /// rollout-worker`s, an `rl reward-server` (rule or model rewards) and learner ranks
        /// 1..`learners`-1; it stops them when it exits.
        Processes = "processes",
        /// A scheduler started the roles: learner ranks from the launcher's variables (`RANK`,
        /// `WORLD_SIZE`, ...), rollout workers at `rollout_servers`, the reward at `reward.url`.
        Cluster = "cluster",
        /// A Ray cluster places the roles `processes` starts, each as an actor running the `rl`
        /// command for it (`ray_address`, `ray_cpus`, `ray_python`); `rl train` is the
        /// controller and learner rank 0.
        Ray = "ray",
    }
}

crate::choice! {
    /// Collective backend the learners all-reduce gradients with.
    pub enum Backend {
        /// NCCL for CUDA learners, Gloo for CPU learners.
        Auto = "auto",
        /// Gloo (CPU tensors).
        Gloo = "gloo",
        /// NCCL (CUDA tensors).
        Nccl = "nccl",
    }
}

crate::choice! {
    /// How new weights reach rollout workers in other processes.
    pub enum WeightSync {
        /// A chunked gRPC stream to each worker.
        Stream = "stream",
        /// One collective broadcast from the controller to every worker over a weight group
        /// (Gloo for CPU replicas, NCCL for CUDA ones, device to device).
        Broadcast = "broadcast",
    }
}

/// `[placement]` section. With no addresses every role runs inside the `rl train` process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementConfig {
    /// Where the roles run.
    pub mode: Mode,
    /// Rollout workers: in-process actors (`local`, `cluster` without `rollout_servers`) or
    /// `rl rollout-worker` processes (`processes`).
    pub rollout_workers: u32,
    /// Data-parallel learner ranks; with more than one, `rl train` is rank 0 and starts the
    /// others itself unless a launcher started every rank (`RANK`, `WORLD_SIZE` set).
    pub learners: u32,
    /// Device of the rollout workers.
    pub rollout_device: DeviceSpec,
    /// Device of the learners (and reference model).
    pub learner_device: DeviceSpec,
    /// Device of the reward model, if any.
    pub reward_device: DeviceSpec,
    /// Collective backend of the learner group.
    pub backend: Backend,
    /// `host:port` where the learner ranks `rl train` starts meet (rank 0 serves a TCP store
    /// there); unset = a free port on 127.0.0.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<String>,
    /// Addresses (`http://host:port`) of `rl rollout-worker` processes serving the policy's
    /// architecture, driven instead of in-process workers (their token: `$RL_ROLLOUT_TOKEN`);
    /// empty = `rollout_workers` in-process workers.
    pub rollout_servers: Vec<String>,
    /// `mode = "ray"`: the Ray cluster to place the roles on, as `ray.init` takes it
    /// (`"auto"`, `"host:6379"`, `"ray://host:10001"`); unset = a private Ray instance on
    /// 127.0.0.1 that lives as long as the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ray_address: Option<String>,
    /// `mode = "ray"`: CPUs each role's actor reserves (fractions allowed).
    pub ray_cpus: f64,
    /// `mode = "ray"`: the Python (3.10+, with `ray`) that runs the launcher.
    pub ray_python: String,
    /// How new weights reach rollout workers in other processes.
    pub weight_sync: WeightSync,
}

/// Whether `address` (`host:port`, `ray://host:port`) is on this machine.
pub fn is_loopback(address: &str) -> bool {
    let host = address.trim_start_matches("ray://");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Local,
            rollout_workers: 1,
            learners: 1,
            rollout_device: DeviceSpec::Auto,
            learner_device: DeviceSpec::Auto,
            reward_device: DeviceSpec::Auto,
            backend: Backend::Auto,
            rendezvous: None,
            rollout_servers: Vec::new(),
            ray_address: None,
            ray_cpus: 1.0,
            ray_python: "python3".into(),
            weight_sync: WeightSync::Stream,
        }
    }
}

impl PlacementConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("placement.rollout_workers", self.rollout_workers.into());
        v.at_least_one("placement.learners", self.learners.into());
        let mode = quoted(self.mode.as_str());
        if self.mode == Mode::Local {
            v.require(
                self.learners == 1,
                "placement.learners",
                self.learners,
                "a learner group runs its ranks as processes: set placement.mode = \"processes\" (rl train starts them), \"ray\" (Ray places them) or \"cluster\" (a launcher did)",
            );
        }
        if self.mode != Mode::Cluster {
            v.require(
                self.rollout_servers.is_empty(),
                "placement.rollout_servers",
                format!("{:?} with placement.mode = {mode}", self.rollout_servers),
                "workers started elsewhere belong to placement.mode = \"cluster\"; in the other modes rl train starts its own (placement.rollout_workers)",
            );
        }
        let ray = self.mode == Mode::Ray;
        let ok = self.ray_cpus > 0.0 && self.ray_cpus.is_finite();
        v.require(
            ok,
            "placement.ray_cpus",
            self.ray_cpus,
            "must be finite and > 0",
        );
        let defaults = Self::default();
        let ray_keys = [
            ("placement.ray_address", self.ray_address.is_some()),
            ("placement.ray_cpus", self.ray_cpus != defaults.ray_cpus),
            (
                "placement.ray_python",
                self.ray_python != defaults.ray_python,
            ),
        ];
        for (key, set) in ray_keys {
            v.require(
                ray || !set,
                key,
                format!("set with placement.mode = {mode}"),
                "applies to placement.mode = \"ray\" only: set that mode, or remove the key",
            );
        }
        v.require(
            !self.ray_python.trim().is_empty(),
            "placement.ray_python",
            quoted(&self.ray_python),
            "must name a Python, e.g. \"python3\"",
        );
        if let Some(address) = self.ray_address.as_deref().filter(|_| ray) {
            v.require(
                self.learners == 1 || self.rendezvous.is_some() || is_loopback(address),
                "placement.rendezvous",
                "unset",
                format!("the learner ranks Ray places on the cluster at {address:?} meet at rank 0, which listens on 127.0.0.1 unless told otherwise: set placement.rendezvous to this host's address, reachable from the cluster, e.g. \"10.0.0.5:29500\""),
            );
        }
        let remote = match self.mode {
            Mode::Processes | Mode::Ray => true,
            Mode::Cluster => !self.rollout_servers.is_empty(),
            Mode::Local => false,
        };
        v.require(
            self.weight_sync == WeightSync::Stream || remote,
            "placement.weight_sync",
            quoted(self.weight_sync.as_str()),
            "broadcasts to rollout workers in other processes: set placement.mode = \"processes\" or \"ray\", or \"cluster\" with placement.rollout_servers (in-process workers take a copy)",
        );
        if let Some(addr) = &self.rendezvous {
            let ok = addr.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            v.require(
                ok,
                "placement.rendezvous",
                quoted(addr),
                "must be host:port, e.g. \"127.0.0.1:29500\"",
            );
        }
        for addr in &self.rollout_servers {
            let ok = addr.starts_with("http://") || addr.starts_with("https://");
            v.require(
                ok,
                "placement.rollout_servers",
                quoted(addr),
                "addresses must look like \"http://host:port\"",
            );
        }
        v.require(
            self.rollout_servers.is_empty() || self.rollout_workers == 1,
            "placement.rollout_workers",
            self.rollout_workers,
            "counts the workers rl train starts in its own process; with placement.rollout_servers the servers are the workers and none starts here: leave placement.rollout_workers at 1",
        );
    }
}
