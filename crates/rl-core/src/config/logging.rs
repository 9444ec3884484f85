//! `[logging]`: what the run directory records and how often.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// `[logging]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Write TensorBoard event files into the run directory.
    pub tensorboard: bool,
    /// Append one JSON line of scalars per logged step to `metrics.jsonl`.
    pub jsonl: bool,
    /// Log metrics every this many steps.
    pub every: u64,
    /// Record sample generations every this many steps; 0 = never.
    pub samples_every: u64,
    /// Generations recorded each time.
    pub samples_per_log: u32,
    /// Also log histograms (rewards, advantages, ratios) to TensorBoard.
    pub histograms: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            tensorboard: true,
            jsonl: true,
            every: 1,
            samples_every: 10,
            samples_per_log: 4,
            histograms: true,
        }
    }
}

impl LoggingConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("logging.every", self.every);
    }
}
