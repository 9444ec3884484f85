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
                "a learner group runs its ranks as processes: set placement.mode = \"processes\" (rl train starts them) or \"cluster\" (a launcher did)",
            );
        }
        if self.mode != Mode::Cluster {
            v.require(
                self.rollout_servers.is_empty(),
                "placement.rollout_servers",
                format!("{:?} with placement.mode = {mode}", self.rollout_servers),
                "workers started elsewhere belong to placement.mode = \"cluster\"; in \"local\" and \"processes\" modes rl train starts its own (placement.rollout_workers)",
            );
        }
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
