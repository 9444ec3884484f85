//! `[rollout]`: how many samples each step draws and how they are decoded.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// Most completions an engine decodes together: far beyond what one device decodes at once,
/// low enough that the slot table is cheap and a typo is caught.
pub const MAX_BATCH: u32 = 65_536;

/// `[rollout]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// Prompts drawn from the environment per training step.
    pub prompts_per_step: u32,
    /// Completions sampled per prompt (the group size of GRPO/RLOO).
    pub samples_per_prompt: u32,
    /// Prompts longer than this many tokens are truncated from the left.
    pub max_prompt_tokens: u32,
    /// Generation stops after this many new tokens.
    pub max_new_tokens: u32,
    /// Sampling temperature; 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; 1 = off.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 = off.
    pub top_k: u32,
    /// Completions each rollout worker decodes together (the KV cache's slots), 1 to
    /// [`MAX_BATCH`].
    pub max_batch: u32,
    /// Prompt plus completion tokens per sequence (the KV cache's capacity); 0 = the model's
    /// context, at most 2048.
    pub max_seq_len: u32,
    /// Asynchronous rollouts: generation for step t+1 overlaps the update of step t, so each
    /// batch was sampled one policy version behind the learner and is corrected by truncated
    /// importance sampling ([`RolloutConfig::is_cap`]).
    #[serde(rename = "async")]
    pub asynchronous: bool,
    /// Cap of the truncated importance weight `min(π_learner / π_sampler, is_cap)` that each
    /// stale token's policy-gradient term carries; only with `async = true` (default
    /// [`DEFAULT_IS_CAP`] there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_cap: Option<f64>,
    /// A rollout worker that yields no completion for this many seconds, and then answers no
    /// Health check within as many, is hung (one still answering is only slow): its requests go to the others and, when `rl train` started it or Ray
    /// placed it, it is restarted.
    pub worker_timeout_s: f64,
}

/// The importance-weight cap of asynchronous rollouts when `rollout.is_cap` is not set (veRL's
/// `tis_imp_ratio_cap` in its examples).
pub const DEFAULT_IS_CAP: f64 = 2.0;

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            prompts_per_step: 8,
            samples_per_prompt: 4,
            max_prompt_tokens: 256,
            max_new_tokens: 64,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_batch: 64,
            max_seq_len: 0,
            asynchronous: false,
            is_cap: None,
            worker_timeout_s: 600.0,
        }
    }
}

impl RolloutConfig {
    /// Samples per training step: `prompts_per_step * samples_per_prompt`.
    pub fn samples_per_step(&self) -> u64 {
        u64::from(self.prompts_per_step) * u64::from(self.samples_per_prompt)
    }

    /// The importance-weight cap of asynchronous rollouts; None when rollouts are synchronous.
    pub fn is_cap(&self) -> Option<f64> {
        self.asynchronous
            .then(|| self.is_cap.unwrap_or(DEFAULT_IS_CAP))
    }

    pub(crate) fn validate(&self, v: &mut Validator) {
        v.at_least_one("rollout.prompts_per_step", self.prompts_per_step.into());
        v.at_least_one("rollout.samples_per_prompt", self.samples_per_prompt.into());
        v.at_least_one("rollout.max_prompt_tokens", self.max_prompt_tokens.into());
        v.at_least_one("rollout.max_new_tokens", self.max_new_tokens.into());
        v.closed_range("rollout.temperature", self.temperature, 0.0, 100.0);
        let ok = self.top_p > 0.0 && self.top_p <= 1.0;
        v.require(ok, "rollout.top_p", self.top_p, "must be in (0, 1]");
        let ok = (1..=MAX_BATCH).contains(&self.max_batch);
        let rule = format!("must be 1 to {MAX_BATCH}");
        v.require(ok, "rollout.max_batch", self.max_batch, rule);
        let t = self.worker_timeout_s;
        let ok = t > 0.0 && t <= 86_400.0;
        v.require(ok, "rollout.worker_timeout_s", t, "must be in (0, 86400]");
        if let Some(cap) = self.is_cap {
            let ok = cap > 0.0 && cap.is_finite();
            v.require(ok, "rollout.is_cap", cap, "must be finite and > 0");
            v.require(
                self.asynchronous,
                "rollout.is_cap",
                cap,
                "weighs samples of a stale policy, which only asynchronous rollouts draw: set rollout.async = true, or remove rollout.is_cap",
            );
        }
        if self.max_seq_len > 0 {
            v.require(
                self.max_seq_len >= 2,
                "rollout.max_seq_len",
                self.max_seq_len,
                "must be 0 (the model's context) or at least 2",
            );
            // u64: two u32 limits may not fit a u32 sum.
            let needed = u64::from(self.max_prompt_tokens) + u64::from(self.max_new_tokens);
            let rule = format!(
                "a sequence holds rollout.max_prompt_tokens + rollout.max_new_tokens = {needed} tokens: raise rollout.max_seq_len to {needed} (or 0 for the model's context) or lower those two"
            );
            v.require(
                needed <= u64::from(self.max_seq_len),
                "rollout.max_seq_len",
                self.max_seq_len,
                rule,
            );
        }
    }
}
