//! `[run]`: naming, seeding and length of a training run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::{Validator, quoted};

crate::choice! {
    /// What `rl train` trains.
    pub enum Trainer {
        /// The policy, by reinforcement learning (`[algorithm]`, `[env]`, `[reward]`).
        Policy = "policy",
        /// A reward model, from preference pairs with a Bradley–Terry loss (`[preference]`).
        RewardModel = "reward_model",
    }
}

/// `[run]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run name; the run directory is `<runs_dir>/<name>`. Empty: `<config file stem>-<UTC time>`.
    pub name: String,
    /// Folder that holds run directories.
    pub runs_dir: PathBuf,
    /// Seed for every random number generator of the run.
    pub seed: u64,
    /// Training steps (one step = sample, score, prepare, update, sync; for a reward model,
    /// one optimiser step on `preference.batch_size` pairs).
    pub steps: u64,
    /// What `rl train` trains.
    pub trainer: Trainer,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            runs_dir: "runs".into(),
            seed: 0,
            steps: 100,
            trainer: Trainer::Policy,
        }
    }
}

impl RunConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let ok = !self.name.contains(['/', '\\']) && self.name != "." && self.name != "..";
        v.require(
            ok,
            "run.name",
            quoted(&self.name),
            "must be a plain folder name without '/'",
        );
        v.at_least_one("run.steps", self.steps);
    }
}
