//! Tasks: what an environment hands the policy, and what scoring needs to judge the answer.

use serde::{Deserialize, Serialize};

use crate::chat::Message;

/// Which part of an environment's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training prompts.
    Train,
    /// Held-out prompts, disjoint from training.
    Eval,
}

/// One task: the conversation the policy continues, and what its reward needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Stable id within its environment and split (for logs and per-sample output).
    pub id: String,
    /// The conversation so far; the policy writes the next assistant turn.
    pub messages: Vec<Message>,
    /// The reference answer, when the task has one (verifiers compare against it).
    pub answer: Option<String>,
    /// Anything else the reward or a multi-turn environment needs (numbers of a countdown
    /// puzzle, a tool's state, ...).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl Task {
    /// A single-turn task: one user message and its reference answer.
    pub fn single_turn(
        id: impl Into<String>,
        prompt: impl Into<String>,
        answer: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            messages: vec![Message::user(prompt)],
            answer,
            metadata: serde_json::Value::Null,
        }
    }
}
