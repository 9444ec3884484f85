//! `[placement]`: how many of each role run, on which devices, in this process or elsewhere.
//!
//! The learner-group keys (`learners`, `backend`, `rendezvous`) belong to the distributed runtime;
//! until `rl train` starts learner ranks they take only their defaults, so a config that asks for
//! more is refused rather than run on one learner without a word.

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
    /// Data-parallel learners; only 1 until the distributed runtime.
    pub learners: u32,
    /// Device of the rollout workers.
    pub rollout_device: DeviceSpec,
    /// Device of the learners (and reference model).
    pub learner_device: DeviceSpec,
    /// Device of the reward model, if any.
    pub reward_device: DeviceSpec,
    /// Collective backend of the learner group; only `auto` until the distributed runtime.
    pub backend: Backend,
    /// Rendezvous store (`host:port`) the learner processes meet at; unset until the distributed
    /// runtime.
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
        v.not_yet(
            self.learners == 1,
            "placement.learners",
            self.learners,
            "a learner group of more than one rank arrives with the distributed runtime; set placement.learners = 1",
        );
        v.not_yet(
            self.backend == Backend::Auto,
            "placement.backend",
            quoted(self.backend.as_str()),
            "choosing the learner group's collective backend arrives with the distributed runtime; set placement.backend = \"auto\"",
        );
        if let Some(addr) = &self.rendezvous {
            v.not_yet(
                false,
                "placement.rendezvous",
                quoted(addr),
                "learner processes meet at a rendezvous store with the distributed runtime; remove placement.rendezvous",
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
