//! Text ↔ token ids for the policy: HF `tokenizers` models loaded from HF tokenizer directories
//! (or built in memory), with their special tokens (BOS, the set of EOS ids, PAD) and chat
//! templates.

mod chat;
mod error;
mod gguf;
mod hf_dir;
mod pyjson;
mod specials;

use std::collections::{BTreeMap, BTreeSet};

pub use chat::{ChatTemplate, Message, Role};
pub use error::TokenizerError;
pub use specials::SpecialTokens;

/// The name of the chat template used when none is named.
pub const DEFAULT_TEMPLATE: &str = "default";

/// Token ids of one text and the span of the text each token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// The token ids.
    pub ids: Vec<u32>,
    /// `(start, end)` of each token in the text: byte offsets (always on `char` boundaries:
    /// a token holding part of a character spans all of it) or char offsets, as the method
    /// says. `(0, 0)` for special tokens the tokenizer added itself.
    pub offsets: Vec<(usize, usize)>,
}

/// A tokenizer with its special tokens and chat templates.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    origin: String,
    specials: SpecialTokens,
    bos: Option<u32>,
    eos: Option<u32>,
    eos_ids: BTreeSet<u32>,
    pad: Option<u32>,
    /// `add_bos` asked for BOS and the post-processor does not add it: `encode` does.
    prepend_bos: bool,
    clean_up_spaces: bool,
    templates: BTreeMap<String, ChatTemplate>,
}

impl Tokenizer {
    /// A whitespace word-level tokenizer whose token `i` is the word `t{i}`, for `vocab` ids,
    /// with `t{eos}` as EOS: for random models in tests and benchmarks, where ids matter and
    /// text does not.
    pub fn numbered(vocab: u32, eos: u32) -> Result<Self, TokenizerError> {
        let words: std::collections::HashMap<String, u32> =
            (0..vocab).map(|i| (format!("t{i}"), i)).collect();
        let model = tokenizers::models::wordlevel::WordLevel::builder()
            .vocab(words.into_iter().collect())
            .unk_token("t0".into())
            .build()
            .map_err(|e| codec_error("build", e))?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
        let specials = SpecialTokens {
            eos: Some(format!("t{eos}")),
            ..SpecialTokens::default()
        };
        Self::new(inner, specials)
    }

    /// Wraps an in-memory `tokenizers` model (e.g. one built from GGUF metadata) with its
    /// special tokens; no chat template until [`set_chat_template`](Self::set_chat_template).
    pub fn new(
        inner: tokenizers::Tokenizer,
        specials: SpecialTokens,
    ) -> Result<Self, TokenizerError> {
        Self::with_origin(inner, specials, "in-memory tokenizer".into())
    }

    pub(crate) fn with_origin(
        inner: tokenizers::Tokenizer,
        specials: SpecialTokens,
        origin: String,
    ) -> Result<Self, TokenizerError> {
        let vocab_size = inner.get_vocab_size(true);
        let id =
            |field: &'static str, token: &Option<String>| match token {
                None => Ok(None),
                Some(t) => inner.token_to_id(t).map(Some).ok_or_else(|| {
                    TokenizerError::UnknownSpecialToken {
                        origin: origin.clone(),
                        field,
                        token: t.clone(),
                    }
                }),
            };
        let bos = id("bos_token", &specials.bos)?;
        let eos = id("eos_token", &specials.eos)?;
        let pad = id("pad_token", &specials.pad)?;
        id("unk_token", &specials.unk)?;
        let mut eos_ids: BTreeSet<u32> = eos.into_iter().collect();
        for &extra in &specials.extra_eos_ids {
            if extra as usize >= vocab_size {
                return Err(TokenizerError::IdOutOfRange {
                    origin: format!("{origin}: eos_token_id"),
                    id: extra,
                    vocab_size,
                });
            }
            eos_ids.insert(extra);
        }
        let prepend_bos = match (specials.add_bos, bos) {
            (true, Some(bos)) => {
                let probe = inner
                    .encode("", true)
                    .map_err(|e| codec_error("encode", e))?;
                !probe.get_ids().contains(&bos)
            }
            _ => false,
        };
        Ok(Self {
            inner,
            origin,
            specials,
            bos,
            eos,
            eos_ids,
            pad,
            prepend_bos,
            clean_up_spaces: false,
            templates: BTreeMap::new(),
        })
    }

    /// The underlying `tokenizers` model.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Where the tokenizer came from (its directory), as errors name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The special tokens by text.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.specials
    }

    /// Number of token ids, added tokens included (the model's embedding may have more rows).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Beginning-of-sequence id, if the tokenizer has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id chat templates write (`eos_token`), if any.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Every id generation should stop at: `eos_token` and the configs' `eos_token_id`s.
    pub fn eos_ids(&self) -> &BTreeSet<u32> {
        &self.eos_ids
    }

    /// Whether `id` ends a sequence.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }

    /// Padding id: `pad_token`, else the EOS token, else the smallest stop id.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
            .or(self.eos)
            .or_else(|| self.eos_ids.first().copied())
    }

    /// The vocabulary entry of `id` (byte-level BPE shows spaces as `Ġ`), for printing.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of the vocabulary entry `token` (special tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes `text` with byte offsets; `add_special_tokens` adds what the tokenizer adds
    /// around a sequence (BOS for most Llama-style models). Special tokens written in the text
    /// (e.g. `<|im_end|>`) are always recognised.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Encoding, TokenizerError> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| codec_error("encode", e))?;
        Ok(self.finish(enc, add_special_tokens))
    }

    /// [`encode`](Self::encode) with offsets in `char`s (Python string indices, as
    /// transformers' `return_offsets_mapping` gives them).
    pub fn encode_char_offsets(
        &self,
        text: &str,
        add_special_tokens: bool,
    ) -> Result<Encoding, TokenizerError> {
        let enc = self
            .inner
            .encode_char_offsets(text, add_special_tokens)
            .map_err(|e| codec_error("encode", e))?;
        Ok(self.finish(enc, add_special_tokens))
    }

    /// [`encode`](Self::encode) of many texts, in parallel.
    pub fn encode_batch(
        &self,
        texts: &[&str],
        add_special_tokens: bool,
    ) -> Result<Vec<Encoding>, TokenizerError> {
        let encs = self
            .inner
            .encode_batch(texts.to_vec(), add_special_tokens)
            .map_err(|e| codec_error("encode", e))?;
        Ok(encs
            .into_iter()
            .map(|e| self.finish(e, add_special_tokens))
            .collect())
    }

    /// [`encode_char_offsets`](Self::encode_char_offsets) of many texts, in parallel.
    pub fn encode_batch_char_offsets(
        &self,
        texts: &[&str],
        add_special_tokens: bool,
    ) -> Result<Vec<Encoding>, TokenizerError> {
        let encs = self
            .inner
            .encode_batch_char_offsets(texts.to_vec(), add_special_tokens)
            .map_err(|e| codec_error("encode", e))?;
        Ok(encs
            .into_iter()
            .map(|e| self.finish(e, add_special_tokens))
            .collect())
    }

    fn finish(&self, enc: tokenizers::Encoding, add_special_tokens: bool) -> Encoding {
        let mut ids = enc.get_ids().to_vec();
        let mut offsets = enc.get_offsets().to_vec();
        if let (true, true, Some(bos)) = (add_special_tokens, self.prepend_bos, self.bos) {
            ids.insert(0, bos);
            offsets.insert(0, (0, 0));
        }
        Encoding { ids, offsets }
    }

    /// Text of `ids`; `skip_special_tokens` leaves out special tokens (BOS, EOS, `<|im_end|>`,
    /// ...). Ids outside the vocabulary are an error, not silently dropped.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let vocab_size = self.vocab_size();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(TokenizerError::IdOutOfRange {
                origin: format!("decode with {}", self.origin),
                id,
                vocab_size,
            });
        }
        let text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| codec_error("decode", e))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// [`decode`](Self::decode) of many sequences.
    pub fn decode_batch(
        &self,
        seqs: &[&[u32]],
        skip_special_tokens: bool,
    ) -> Result<Vec<String>, TokenizerError> {
        seqs.iter()
            .map(|ids| self.decode(ids, skip_special_tokens))
            .collect()
    }

    /// Whether `decode` applies transformers' `clean_up_tokenization_spaces` (drops the space
    /// before `.`, `,`, `!`, `?` and English contractions; lossy, so off unless the config asks).
    pub fn set_clean_up_tokenization_spaces(&mut self, on: bool) {
        self.clean_up_spaces = on;
    }

    /// The default chat template.
    pub fn chat_template(&self) -> Result<&ChatTemplate, TokenizerError> {
        self.templates
            .get(DEFAULT_TEMPLATE)
            .ok_or_else(|| TokenizerError::NoChatTemplate {
                origin: self.origin.clone(),
            })
    }

    /// The chat template called `name` (HF's named templates, e.g. "tool_use").
    pub fn chat_template_named(&self, name: &str) -> Result<&ChatTemplate, TokenizerError> {
        if self.templates.is_empty() {
            return Err(TokenizerError::NoChatTemplate {
                origin: self.origin.clone(),
            });
        }
        self.templates
            .get(name)
            .ok_or_else(|| TokenizerError::UnknownTemplateName {
                origin: self.origin.clone(),
                name: name.into(),
                available: self.templates.keys().cloned().collect(),
            })
    }

    /// Names of the chat templates the tokenizer has.
    pub fn chat_template_names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Sets the default chat template from Jinja `source` (replacing any), with the special
    /// tokens as its variables.
    pub fn set_chat_template(&mut self, source: &str) -> Result<(), TokenizerError> {
        let origin = format!("given for {}", self.origin);
        self.insert_template(DEFAULT_TEMPLATE, source, origin)
    }

    pub(crate) fn insert_template(
        &mut self,
        name: &str,
        source: &str,
        origin: String,
    ) -> Result<(), TokenizerError> {
        let mut template = ChatTemplate::new(source, origin)?;
        for (var, token) in self.specials.template_variables() {
            template = template.with_variable(var, token);
        }
        self.templates.insert(name.to_owned(), template);
        Ok(())
    }

    /// Renders `messages` with the default chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.chat_template()?
            .render(messages, add_generation_prompt)
    }

    /// Token ids of the rendered chat; like transformers, no special tokens are added on top
    /// of what the template writes.
    pub fn encode_chat(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let text = self.apply_chat_template(messages, add_generation_prompt)?;
        Ok(self.encode(&text, false)?.ids)
    }
}

fn codec_error(action: &'static str, e: tokenizers::Error) -> TokenizerError {
    TokenizerError::Codec {
        action,
        message: e.to_string(),
    }
}

/// transformers' `clean_up_tokenization`.
fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_owned(), |s, (from, to)| s.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::clean_up_tokenization;

    #[test]
    fn clean_up_matches_transformers() {
        // transformers: tok.clean_up_tokenization("Hi , it 's me . Is n't it ? Yes !")
        assert_eq!(
            clean_up_tokenization("Hi , it 's me . Is n't it ? Yes !"),
            "Hi, it's me. Isn't it? Yes!"
        );
    }
}
