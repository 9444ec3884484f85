//! `[checkpoint]`: when policy checkpoints (HF directories) are written and how many are kept.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// `[checkpoint]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Save every this many steps; 0 = only at the end of the run.
    pub every: u64,
    /// Checkpoints kept; older ones are deleted.
    pub keep_last: u32,
    /// Also save optimiser state, so `--resume` continues exactly.
    pub save_optimizer: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 0,
            keep_last: 2,
            save_optimizer: true,
        }
    }
}

impl CheckpointConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("checkpoint.keep_last", self.keep_last.into());
    }
}
