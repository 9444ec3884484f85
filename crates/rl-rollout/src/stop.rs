//! When a completion ends: end-of-sequence and stop tokens, stop strings, the token budget.

use std::collections::BTreeSet;

use rl_model::tokenizer::Tokenizer;

use crate::{FinishReason, SamplingParams};

/// The stop conditions of one request.
#[derive(Debug, Clone)]
pub struct StopCondition {
    stop_ids: BTreeSet<u32>,
    strings: Vec<String>,
    /// Tokens decoded from the end to look for a stop string (each token is at least a byte).
    tail_tokens: usize,
    max_new_tokens: usize,
}

impl StopCondition {
    /// The conditions of `params`; `eos` are the model's end-of-sequence ids.
    pub fn new(params: &SamplingParams, eos: &BTreeSet<u32>) -> Self {
        let mut stop_ids: BTreeSet<u32> = params.stop_token_ids.iter().copied().collect();
        if !params.ignore_eos {
            stop_ids.extend(eos);
        }
        let longest = params.stop.iter().map(String::len).max().unwrap_or(0);
        Self {
            stop_ids,
            strings: params.stop.clone(),
            tail_tokens: longest + 1,
            max_new_tokens: params.max_new_tokens as usize,
        }
    }

    /// Whether `generated` (all new tokens so far, the last one just sampled) is finished.
    pub fn check(&self, generated: &[u32], tokenizer: &Tokenizer) -> Option<FinishReason> {
        let last = *generated.last()?;
        if self.stop_ids.contains(&last) {
            return Some(FinishReason::Stop);
        }
        if !self.strings.is_empty() {
            let tail = &generated[generated.len().saturating_sub(self.tail_tokens)..];
            let text = tokenizer.decode(tail, true).unwrap_or_default();
            if self.strings.iter().any(|s| text.contains(s.as_str())) {
                return Some(FinishReason::Stop);
            }
        }
        (generated.len() >= self.max_new_tokens).then_some(FinishReason::Length)
    }

    /// `text` cut before the first stop string in it.
    pub fn truncate(&self, mut text: String) -> String {
        if let Some(cut) = self
            .strings
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(cut);
        }
        text
    }
}
