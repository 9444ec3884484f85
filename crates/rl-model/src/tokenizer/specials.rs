//! The special tokens a tokenizer is configured with (HF `tokenizer_config.json` and
//! `generation_config.json`), before they are checked against the vocabulary.

/// Special tokens by their text, as HF configs name them; [`Tokenizer::new`](super::Tokenizer::new)
/// resolves them to ids and rejects any the vocabulary lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence (`bos_token`), if the model has one.
    pub bos: Option<String>,
    /// The end-of-sequence token (`eos_token`): the one chat templates write after a turn.
    pub eos: Option<String>,
    /// Padding (`pad_token`); without one, padding uses the EOS token.
    pub pad: Option<String>,
    /// Unknown (`unk_token`); only shown to chat templates.
    pub unk: Option<String>,
    /// More ids generation stops at (`generation_config.json`/`config.json` `eos_token_id`;
    /// chat models often stop at both their end-of-turn and end-of-text tokens).
    pub extra_eos_ids: Vec<u32>,
    /// `add_bos_token`: `encode(.., true)` starts with BOS even when tokenizer.json's
    /// post-processor does not add it.
    pub add_bos: bool,
}

impl SpecialTokens {
    /// The tokens chat templates see as variables, by variable name.
    pub(crate) fn template_variables(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("bos_token", &self.bos),
            ("eos_token", &self.eos),
            ("pad_token", &self.pad),
            ("unk_token", &self.unk),
        ]
        .into_iter()
        .filter_map(|(name, token)| token.as_deref().map(|t| (name, t)))
    }
}
