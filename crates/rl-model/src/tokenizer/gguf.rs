//! Rebuilding a model's tokenizer from GGUF metadata (`tokenizer.ggml.*`): byte-level BPE
//! (`model = "gpt2"`) as transformers converts it — vocabulary and merges, control tokens as added
//! special tokens, BOS/EOS/PAD/UNK by id — plus the chat template (`tokenizer.chat_template`).

use std::path::Path;

use serde_json::{Value, json};

use super::{DEFAULT_TEMPLATE, SpecialTokens, Tokenizer, TokenizerError};
use rl_gguf::GgufFile;

/// `tokenizer.ggml.token_type` of control tokens (llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL`).
const CONTROL: i32 = 3;
/// User-defined tokens: added, but not special.
const USER_DEFINED: i32 = 4;

impl Tokenizer {
    /// The tokenizer and chat template stored in `gguf`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, TokenizerError> {
        let path = gguf.path();
        let fail = |message: String| TokenizerError::Gguf {
            path: path.to_owned(),
            message,
        };
        let md = gguf.metadata();
        let model = md
            .get_str("tokenizer.ggml.model")
            .map_err(|e| fail(e.to_string()))?;
        if model != "gpt2" {
            return Err(fail(format!(
                "tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\"); convert the model with its HF tokenizer instead"
            )));
        }
        let tokens = md
            .get_str_array("tokenizer.ggml.tokens")
            .map_err(|e| fail(e.to_string()))?;
        let merges = md
            .get_str_array("tokenizer.ggml.merges")
            .map_err(|e| fail(e.to_string()))?;
        let types = md.get_i32_array("tokenizer.ggml.token_type").unwrap_or(&[]);
        let token = |key: &str| -> Result<Option<String>, TokenizerError> {
            match md.get_u32(key) {
                Err(_) => Ok(None),
                Ok(id) => tokens.get(id as usize).cloned().map(Some).ok_or_else(|| {
                    fail(format!("{key} = {id} is past the {} tokens", tokens.len()))
                }),
            }
        };
        let specials = SpecialTokens {
            bos: token("tokenizer.ggml.bos_token_id")?,
            eos: token("tokenizer.ggml.eos_token_id")?,
            pad: token("tokenizer.ggml.padding_token_id")?,
            unk: token("tokenizer.ggml.unknown_token_id")?,
            extra_eos_ids: Vec::new(),
            add_bos: md.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
        };
        let add_prefix_space = md
            .get_bool("tokenizer.ggml.add_space_prefix")
            .unwrap_or(false);
        let json = tokenizer_json(
            tokens,
            merges,
            types,
            specials.unk.as_deref(),
            add_prefix_space,
        )?;
        let inner = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes())
            .map_err(|e| fail(format!("the rebuilt tokenizer does not load: {e}")))?;
        let origin = path.display().to_string();
        let mut tokenizer = Self::with_origin(inner, specials, origin.clone())?;
        if let Ok(template) = md.get_str("tokenizer.chat_template") {
            tokenizer.insert_template(
                DEFAULT_TEMPLATE,
                template,
                format!("{origin} (tokenizer.chat_template)"),
            )?;
        }
        Ok(tokenizer)
    }

    /// Opens the GGUF file at `path` and reads its tokenizer.
    pub fn from_gguf_file(path: &Path) -> Result<Self, TokenizerError> {
        let gguf = GgufFile::open(path).map_err(|e| TokenizerError::Gguf {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_gguf(&gguf)
    }
}

/// The HF `tokenizer.json` of a byte-level BPE vocabulary.
fn tokenizer_json(
    tokens: &[String],
    merges: &[String],
    types: &[i32],
    unk: Option<&str>,
    add_prefix_space: bool,
) -> Result<Value, TokenizerError> {
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), Value::from(id)))
        .collect();
    let merges: Vec<Value> = merges
        .iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => json!([a, b]),
            None => json!([m, ""]),
        })
        .collect();
    let added: Vec<Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, CONTROL | USER_DEFINED))
        .map(|(id, &t)| {
            json!({"id": id, "content": tokens[id], "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": t != CONTROL, "special": t == CONTROL})
        })
        .collect();
    let byte_level = |trim: bool| json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim, "use_regex": true});
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": byte_level(false),
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
        ]},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    }))
}
