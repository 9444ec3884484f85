//! What a caller asks a rollout worker for and what comes back, one completion at a time.

use serde::{Deserialize, Serialize};

use crate::SamplingParams;

/// A prompt: text (tokenized by the worker, chat template already applied by the caller) or
/// token ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Text, encoded with the model's tokenizer (special tokens it adds by default included).
    Text(String),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// One prompt and how to sample it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling parameters (`n` completions).
    pub params: SamplingParams,
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token, a stop token or a stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// One finished completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Index of its request in the submitted batch.
    pub request: usize,
    /// Which of the request's `n` completions (0-based).
    pub sample: u32,
    /// Prompt token ids (as encoded).
    pub prompt_ids: Vec<u32>,
    /// Generated token ids, including the EOS or stop token that ended it.
    pub token_ids: Vec<u32>,
    /// Generated text without special tokens, cut before a matched stop string.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Log-probability of each generated token under the temperature-scaled model
    /// distribution, `log_softmax(logits / T)` (`T = 1` for greedy) before top-k/top-p/min-p
    /// truncation: what a teacher-forced pass of the learner computes.
    pub logprobs: Vec<f32>,
    /// Policy version of the weights that generated it.
    pub policy_version: u64,
}

/// A request the worker refused; the other requests of its batch go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("request {request}: {message}")]
pub struct RequestError {
    /// Index of the request in the submitted batch.
    pub request: usize,
    /// What is wrong with it and how to fix it.
    pub message: String,
}

/// What a worker streams back: completions as they finish, or a refused request.
pub type Event = Result<Completion, RequestError>;
