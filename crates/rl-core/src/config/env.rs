//! `[env]`: the task the policy is trained on (where prompts come from and how answers are checked).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::Validator;

crate::choice! {
    /// Built-in environments (`envs/`).
    pub enum EnvName {
        /// Generated integer arithmetic questions with exact answers.
        Arithmetic = "arithmetic",
        /// Countdown: reach a target number from given numbers.
        Countdown = "countdown",
        /// Question/answer pairs from a JSON-lines file (`{"prompt": ..., "answer": ...}`).
        Jsonl = "jsonl",
    }
}

/// `[env]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    /// Which environment.
    pub name: EnvName,
    /// Data file, required by `jsonl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// System prompt put before every question; none: the model's template default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            name: EnvName::Arithmetic,
            path: None,
            system_prompt: None,
        }
    }
}

impl EnvConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let needs_path = self.name == EnvName::Jsonl;
        let rule = "env.name = \"jsonl\" needs env.path = \"<file.jsonl>\"";
        v.require(
            !needs_path || self.path.is_some(),
            "env.path",
            "(unset)",
            rule,
        );
    }
}
