//! Text → token batches for reward models ([`crate::heads::ScalarModel::rewards`]): a decoder
//! reward model reads the chat rendered by its template, the response as the assistant turn; a
//! BERT reward model reads `[CLS] prompt [SEP] response [SEP]`, the prompt being the user turns'
//! text. Rows are right-padded; over-long rows lose the start of the prompt first.

use tch::Tensor;

use crate::{
    arch::ArchConfig,
    tokenizer::{Message, Role, Tokenizer, TokenizerError},
};

/// One sample to score: the conversation so far and the response to judge.
#[derive(Debug, Clone, Copy)]
pub struct RewardText<'a> {
    /// Prompt messages (system, user, earlier turns).
    pub prompt: &'a [Message],
    /// The response, as the next assistant turn.
    pub response: &'a str,
}

/// Why a batch could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum RewardInputError {
    /// No samples.
    #[error("the reward-model batch is empty: give at least one (prompt, response) sample")]
    EmptyBatch,
    /// `max_len` cannot hold even the special tokens.
    #[error("max_len {max_len} is too small for a {arch} reward model; it needs at least {min}")]
    MaxLenTooSmall {
        /// What was asked.
        max_len: usize,
        /// The least that works.
        min: usize,
        /// The architecture.
        arch: &'static str,
    },
    /// A BERT tokenizer without `[CLS]` or `[SEP]`.
    #[error("tokenizer {origin} has no {token} token, which a BERT reward model's input needs")]
    MissingToken {
        /// Where the tokenizer came from.
        origin: String,
        /// The token.
        token: &'static str,
    },
    /// Tokenizing or rendering the chat template failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// Encodes `batch` for a reward model of architecture `config`, each row at most `max_len`
/// tokens: `(input_ids, attention_mask)`, both `[b, t]` i64 on the CPU, right-padded with the
/// tokenizer's pad id (t = the longest row).
pub fn encode_reward_batch(
    tokenizer: &Tokenizer,
    config: &ArchConfig,
    batch: &[RewardText<'_>],
    max_len: usize,
) -> Result<(Tensor, Tensor), RewardInputError> {
    if batch.is_empty() {
        return Err(RewardInputError::EmptyBatch);
    }
    let min = if config.is_encoder() { 3 } else { 1 };
    if max_len < min {
        return Err(RewardInputError::MaxLenTooSmall {
            max_len,
            min,
            arch: config.name(),
        });
    }
    let rows = batch
        .iter()
        .map(|s| {
            if config.is_encoder() {
                encoder_row(tokenizer, s, max_len)
            } else {
                decoder_row(tokenizer, s, max_len)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let pad = i64::from(tokenizer.pad_id().unwrap_or(0));
    let (mut ids, mut mask) = (Vec::with_capacity(rows.len() * t), Vec::new());
    for row in &rows {
        ids.extend(row.iter().map(|&id| i64::from(id)));
        ids.extend(std::iter::repeat_n(pad, t - row.len()));
        mask.extend(std::iter::repeat_n(1i64, row.len()));
        mask.extend(std::iter::repeat_n(0i64, t - row.len()));
    }
    let shape = [rows.len() as i64, t as i64];
    Ok((
        Tensor::from_slice(&ids).reshape(shape),
        Tensor::from_slice(&mask).reshape(shape),
    ))
}

/// The chat with the response as the assistant turn, rendered by the template; the last
/// `max_len` tokens when longer (the score is read at the end).
fn decoder_row(
    tokenizer: &Tokenizer,
    sample: &RewardText<'_>,
    max_len: usize,
) -> Result<Vec<u32>, RewardInputError> {
    let mut messages = sample.prompt.to_vec();
    messages.push(Message::assistant(sample.response));
    let ids = tokenizer.encode_chat(&messages, false)?;
    Ok(ids[ids.len().saturating_sub(max_len)..].to_vec())
}

/// `[CLS] prompt [SEP] response [SEP]`, dropping prompt tokens from the left, then response
/// tokens from the right, until it fits `max_len`.
fn encoder_row(
    tokenizer: &Tokenizer,
    sample: &RewardText<'_>,
    max_len: usize,
) -> Result<Vec<u32>, RewardInputError> {
    let special = |token: &'static str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| RewardInputError::MissingToken {
                origin: tokenizer.origin().to_owned(),
                token,
            })
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let prompt: Vec<&str> = sample
        .prompt
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect();
    let prompt = tokenizer.encode(&prompt.join("\n"), false)?.ids;
    let mut response = tokenizer.encode(sample.response, false)?.ids;
    let budget = max_len - 3;
    let over = (prompt.len() + response.len()).saturating_sub(budget);
    let prompt = &prompt[over.min(prompt.len())..];
    response.truncate(budget - prompt.len());
    let mut row = Vec::with_capacity(prompt.len() + response.len() + 3);
    row.push(cls);
    row.extend_from_slice(prompt);
    row.push(sep);
    row.extend_from_slice(&response);
    row.push(sep);
    Ok(row)
}
