//! `[preference]`: reward-model training (`run.trainer = "reward_model"`) from preference pairs —
//! a prompt, the response people preferred and the one they rejected — with a Bradley–Terry loss.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// `[preference]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreferenceConfig {
    /// JSON-lines file of pairs; required by `run.trainer = "reward_model"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The field holding the prompt: a string (one user turn) or a list of chat messages.
    pub prompt_field: String,
    /// The field holding the preferred response.
    pub chosen_field: String,
    /// The field holding the rejected response.
    pub rejected_field: String,
    /// Share of the pairs held out for evaluation, by a hash of the pair's text.
    pub eval_fraction: f64,
    /// Pairs per optimiser step.
    pub batch_size: u32,
    /// Pairs per forward/backward pass (gradient accumulation); must divide `batch_size`.
    pub micro_batch_size: u32,
    /// Tokens per (prompt, response) row, at most; longer rows lose the start of the prompt.
    pub max_length: u32,
    /// Evaluate on the held-out pairs every this many steps; 0 = before the first step and
    /// after the last only.
    pub eval_every: u64,
}

impl Default for PreferenceConfig {
    fn default() -> Self {
        Self {
            path: None,
            prompt_field: "prompt".to_owned(),
            chosen_field: "chosen".to_owned(),
            rejected_field: "rejected".to_owned(),
            eval_fraction: 0.1,
            batch_size: 16,
            micro_batch_size: 16,
            max_length: 512,
            eval_every: 0,
        }
    }
}

impl PreferenceConfig {
    pub(crate) fn validate(&self, v: &mut Validator, reward_model: bool) {
        v.require(
            !reward_model || self.path.is_some(),
            "preference.path",
            "(unset)",
            "run.trainer = \"reward_model\" needs preference.path = \"<pairs.jsonl>\"",
        );
        v.open_range("preference.eval_fraction", self.eval_fraction, 0.0, 1.0);
        v.at_least_one("preference.batch_size", self.batch_size.into());
        v.at_least_one("preference.micro_batch_size", self.micro_batch_size.into());
        v.require(
            self.micro_batch_size == 0 || self.batch_size.is_multiple_of(self.micro_batch_size),
            "preference.micro_batch_size",
            self.micro_batch_size,
            format!("must divide preference.batch_size = {}", self.batch_size),
        );
        v.require(
            self.max_length >= 8,
            "preference.max_length",
            self.max_length,
            "must be at least 8 tokens",
        );
    }
}
