//! `[eval]`: how often a policy run scores the held-out split of its environment, on how many
//! tasks, and whether pass@k is measured beside greedy accuracy.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// `[eval]` section (`run.trainer = "policy"`; a reward model has `preference.eval_every`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many training steps; 0 = only before the first step and after the
    /// last.
    pub every: u64,
    /// Held-out tasks of the environment's eval split, each answered greedily.
    pub tasks: u32,
    /// With k > 1, also k samples per task at `rollout.temperature`, for pass@k.
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
    pub(crate) fn validate(&self, v: &mut Validator, temperature: f64) {
        v.at_least_one("eval.tasks", self.tasks.into());
        v.at_least_one("eval.k", self.k.into());
        // Greedy samples are all the same completion: pass@k would equal greedy accuracy.
        v.require(
            self.k <= 1 || temperature > 0.0,
            "eval.k",
            self.k,
            "pass@k samples at rollout.temperature, which is 0 (greedy): set rollout.temperature > 0 or eval.k = 1",
        );
    }
}
