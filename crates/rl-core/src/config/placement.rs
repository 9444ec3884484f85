//! `[placement]`: how many of each role run, on which devices, in this process or elsewhere.

use serde::{Deserialize, Serialize};

use super::{
    device::DeviceSpec,
    validate::{Validator, quoted},
};

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
    /// Rollout-worker actors.
    pub rollout_workers: u32,
    /// Data-parallel learners.
    pub learners: u32,
    /// Device of the rollout workers.
    pub rollout_device: DeviceSpec,
    /// Device of the learners (and reference model).
    pub learner_device: DeviceSpec,
    /// Device of the reward model, if any.
    pub reward_device: DeviceSpec,
    /// Collective backend of the learner group.
    pub backend: Backend,
    /// Rendezvous store (`host:port`) the learner processes meet at; needed when they are processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<String>,
    /// Addresses (`http://host:port`) of `rl rollout-worker` processes; empty = in-process workers.
    pub rollout_servers: Vec<String>,
    /// Address of an `rl reward-server`; none = in-process scoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_server: Option<String>,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            rollout_workers: 1,
            learners: 1,
            rollout_device: DeviceSpec::Auto,
            learner_device: DeviceSpec::Auto,
            reward_device: DeviceSpec::Auto,
            backend: Backend::Auto,
            rendezvous: None,
            rollout_servers: Vec::new(),
            reward_server: None,
        }
    }
}

impl PlacementConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("placement.rollout_workers", self.rollout_workers.into());
        v.at_least_one("placement.learners", self.learners.into());
        let rule = "NCCL reduces CUDA tensors: set placement.learner_device = \"cuda\" or backend = \"gloo\"";
        let nccl_on_cpu = self.backend == Backend::Nccl && self.learner_device == DeviceSpec::Cpu;
        v.require(!nccl_on_cpu, "placement.backend", quoted("nccl"), rule);
        let addresses = self
            .rollout_servers
            .iter()
            .map(|a| ("placement.rollout_servers", a));
        for (key, addr) in addresses.chain(
            self.reward_server
                .iter()
                .map(|a| ("placement.reward_server", a)),
        ) {
            let ok = addr.starts_with("http://") || addr.starts_with("https://");
            v.require(
                ok,
                key,
                quoted(addr),
                "addresses must look like \"http://host:port\"",
            );
        }
    }
}
