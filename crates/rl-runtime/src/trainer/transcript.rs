//! Token-level transcripts of episodes: the rendered, left-truncated prompt of a task, and for
//! multi-turn episodes the tokens that join a sampled reply to the environment's next turn, so
//! the training sequence holds exactly the tokens the policy sampled (with their log-probs) and
//! the environment's turns stay out of the loss.

use rl_core::chat::Message;
use rl_model::tokenizer::{Tokenizer, TokenizerError};

/// An episode's tokens so far: the prompt, then sampled replies and environment turns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenTranscript {
    /// Every token, prompt first.
    pub tokens: Vec<u32>,
    /// Tokens of the first prompt (the rest is the response the loss sees).
    pub prompt_len: usize,
    /// Per response token: its log-prob under the sampling policy (0 for environment tokens).
    pub logprobs: Vec<f32>,
    /// Per response token: whether the loss trains on it (sampled by the policy).
    pub trained: Vec<bool>,
}

impl TokenTranscript {
    /// A transcript starting at `prompt`.
    pub fn new(prompt: Vec<u32>) -> Self {
        Self {
            prompt_len: prompt.len(),
            tokens: prompt,
            ..Self::default()
        }
    }

    /// Appends tokens the policy sampled.
    pub fn push_sampled(&mut self, tokens: &[u32], logprobs: &[f32]) {
        self.tokens.extend_from_slice(tokens);
        self.logprobs.extend_from_slice(logprobs);
        self.trained.extend(std::iter::repeat_n(true, tokens.len()));
    }

    /// Appends tokens the environment (or the chat template) wrote.
    pub fn push_context(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
        self.logprobs.extend(std::iter::repeat_n(0.0, tokens.len()));
        self.trained
            .extend(std::iter::repeat_n(false, tokens.len()));
    }

    /// The prompt's tokens.
    pub fn prompt(&self) -> &[u32] {
        &self.tokens[..self.prompt_len]
    }

    /// The tokens after the prompt.
    pub fn response(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }
}

/// The chat-rendered prompt of `messages` (generation prompt added), keeping only its last
/// `max_tokens` tokens. Returns the ids and whether anything was cut.
pub fn render_prompt(
    tokenizer: &Tokenizer,
    messages: &[Message],
    max_tokens: usize,
) -> Result<(Vec<u32>, bool), TokenizerError> {
    let ids = tokenizer.encode_chat(messages, true)?;
    Ok(left_truncate(ids, max_tokens))
}

/// The last `max` of `ids`, and whether any were dropped.
pub fn left_truncate(mut ids: Vec<u32>, max: usize) -> (Vec<u32>, bool) {
    let cut = ids.len().saturating_sub(max.max(1));
    ids.drain(..cut);
    (ids, cut > 0)
}

/// The tokens that follow a sampled reply when the environment answers it: whatever the chat
/// template writes after the reply (its end-of-turn marker, unless the reply's own last
/// sampled token already was it), the environment's message, and the next generation prompt.
///
/// `before` is the transcript the reply answered, `reply` the reply's text as the
/// environment saw it, `ended_with` the text of the reply's last sampled token when it was an
/// end-of-sequence token, and `next` the environment's message. None when the template does not
/// render the longer conversation as an extension of the shorter (then the caller re-encodes).
pub fn continuation(
    tokenizer: &Tokenizer,
    before: &[Message],
    reply: &str,
    ended_with: Option<&str>,
    next: &Message,
) -> Result<Option<Vec<u32>>, TokenizerError> {
    let prompt = tokenizer.apply_chat_template(before, true)?;
    let mut with_reply = before.to_vec();
    with_reply.push(Message::assistant(reply));
    let closed = tokenizer.apply_chat_template(&with_reply, false)?;
    with_reply.push(next.clone());
    let reopened = tokenizer.apply_chat_template(&with_reply, true)?;
    let Some(closing) = closed
        .strip_prefix(prompt.as_str())
        .and_then(|s| s.strip_prefix(reply))
    else {
        return Ok(None);
    };
    let Some(turn) = reopened.strip_prefix(closed.as_str()) else {
        return Ok(None);
    };
    let closing = match ended_with {
        Some(eos) => closing.strip_prefix(eos).unwrap_or(closing),
        None => closing,
    };
    let text = format!("{closing}{turn}");
    Ok(Some(tokenizer.encode(&text, false)?.ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_lose_their_start_not_their_end() {
        assert_eq!(left_truncate(vec![1, 2, 3, 4], 2), (vec![3, 4], true));
        assert_eq!(left_truncate(vec![1, 2], 8), (vec![1, 2], false));
    }

    #[test]
    fn sampled_and_context_tokens_are_told_apart() {
        let mut t = TokenTranscript::new(vec![1, 2]);
        t.push_sampled(&[3, 4], &[-0.5, -0.25]);
        t.push_context(&[9]);
        t.push_sampled(&[5], &[-1.0]);
        assert_eq!(t.prompt(), [1, 2]);
        assert_eq!(t.response(), [3, 4, 9, 5]);
        assert_eq!(t.trained, [true, true, false, true]);
        assert_eq!(t.logprobs, [-0.5, -0.25, 0.0, -1.0]);
    }
}
