//! `[eval]`: how often a training run measures greedy accuracy on held-out tasks, and on how many.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// `[eval]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many steps; 0 = only before the first and after the last step.
    pub every: u64,
    /// Held-out tasks of the environment's eval split, answered greedily.
    pub tasks: u32,
    /// With `k > 1`, also `k` samples per task at `rollout.temperature` for pass@k.
    pub k: u32,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 10,
            tasks: 200,
            k: 1,
        }
    }
}

impl EvalConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("eval.tasks", self.tasks.into());
        v.at_least_one("eval.k", self.k.into());
    }
}
