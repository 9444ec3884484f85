//! Errors of loading tokenizers, encoding, decoding and rendering chat templates: each names the
//! file or template at fault and how to fix it.

use std::path::PathBuf;

/// Where HF chat templates are documented; quoted by the template errors.
const TEMPLATE_DOCS: &str = "https://huggingface.co/docs/transformers/chat_templating";

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The directory has no `tokenizer.json`.
    #[error(
        "{} has no tokenizer.json; point at an HF model or tokenizer directory that has one \
         (transformers writes it with `AutoTokenizer.from_pretrained(...).save_pretrained(dir)`)",
        dir.display()
    )]
    MissingTokenizerJson {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A JSON file is malformed or has a field of the wrong type.
    #[error("{} is not a valid {what}: {message}; fix or regenerate the file", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What it should have been, e.g. "HF tokenizer (tokenizer.json)".
        what: &'static str,
        /// What the parser said (with line and column where it knows them).
        message: String,
    },
    /// A special token named by a config is not in the vocabulary.
    #[error(
        "{origin} names {field} {token:?}, which is not in the tokenizer's vocabulary; \
         fix the token in {origin} or use the tokenizer.json it belongs with"
    )]
    UnknownSpecialToken {
        /// The file (or "in-memory special tokens") that named it.
        origin: String,
        /// The field, e.g. `eos_token`.
        field: &'static str,
        /// The token.
        token: String,
    },
    /// A token id is outside the vocabulary.
    #[error(
        "{origin}: token id {id} is outside the vocabulary (size {vocab_size}); \
         were these ids made with another tokenizer?"
    )]
    IdOutOfRange {
        /// What held the id, e.g. "decode" or "generation_config.json eos_token_id".
        origin: String,
        /// The id.
        id: u32,
        /// The vocabulary size, added tokens included.
        vocab_size: usize,
    },
    /// The tokenizers library failed to encode or decode.
    #[error("cannot {action}: {message}")]
    Codec {
        /// "encode" or "decode".
        action: &'static str,
        /// What the library said.
        message: String,
    },
    /// A chat was asked of a tokenizer without a chat template.
    #[error(
        "{origin} has no chat template (no `chat_template` in tokenizer_config.json and no \
         chat_template.jinja): it is probably a base model, not a chat model. Supply a template \
         (write it to chat_template.jinja in the model directory, or set one with \
         `Tokenizer::set_chat_template`), or use plain prompts without chat formatting"
    )]
    NoChatTemplate {
        /// The tokenizer's origin (its directory, or "in-memory tokenizer").
        origin: String,
    },
    /// A named chat template was asked for that the tokenizer does not have.
    #[error("{origin} has no chat template named {name:?}; it has: {}", available.join(", "))]
    UnknownTemplateName {
        /// The tokenizer's origin.
        origin: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        available: Vec<String>,
    },
    /// A chat template does not parse.
    #[error(
        "chat template {template} has a syntax error at line {line}: {message}; fix the template \
         (HF chat templates are Jinja, see {TEMPLATE_DOCS})"
    )]
    TemplateSyntax {
        /// Which template (file and name).
        template: String,
        /// 1-based line of the error in the template.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A chat template failed while rendering.
    #[error(
        "chat template {template} failed at line {line}: {message}; the template does not \
         support these messages or uses a Jinja feature we lack (see {TEMPLATE_DOCS})"
    )]
    TemplateRender {
        /// Which template.
        template: String,
        /// 1-based line of the failure in the template.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// A chat template refused the conversation through `raise_exception`.
    #[error("chat template {template} refused the conversation: {message}")]
    TemplateRaised {
        /// Which template.
        template: String,
        /// The template's own message, e.g. "Conversation roles must alternate user/assistant".
        message: String,
    },
    /// A GGUF file's tokenizer cannot be rebuilt.
    #[error("the tokenizer in {}: {message}", path.display())]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// What is missing or unsupported.
        message: String,
    },
}
