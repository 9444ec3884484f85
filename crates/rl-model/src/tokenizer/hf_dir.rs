//! Loading a [`Tokenizer`] from an HF model or tokenizer directory: `tokenizer.json`, plus
//! `tokenizer_config.json` (special tokens, `add_bos_token`, `chat_template` as one string or a
//! list of named ones), `chat_template.jinja` and `additional_chat_templates/*.jinja` (how
//! transformers ≥ 4.50 saves templates), and the `eos_token_id`s of `generation_config.json` and
//! `config.json`, each when present.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{DEFAULT_TEMPLATE, SpecialTokens, Tokenizer, TokenizerError};

const CONFIG_WHAT: &str = "HF tokenizer config (tokenizer_config.json)";

impl Tokenizer {
    /// Loads the HF tokenizer in directory `dir`; only `tokenizer.json` is required.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let dir = dir.as_ref();
        let tokenizer_json = dir.join("tokenizer.json");
        if !tokenizer_json.is_file() {
            return Err(TokenizerError::MissingTokenizerJson { dir: dir.into() });
        }
        let bytes = std::fs::read(&tokenizer_json).map_err(|source| TokenizerError::Io {
            path: tokenizer_json.clone(),
            source,
        })?;
        let json_error = |e: tokenizers::Error| TokenizerError::Json {
            path: tokenizer_json.clone(),
            what: "HF tokenizer (tokenizer.json)",
            message: e.to_string(),
        };
        let mut inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(json_error)?;
        // Like transformers, which sets both per call: a saved `truncation` or fixed `padding`
        // (sentence-transformers ship 128) must not cut or pad every text we encode.
        inner.with_truncation(None).map_err(json_error)?;
        inner.with_padding(None);

        let config_path = dir.join("tokenizer_config.json");
        let config = read_json(&config_path, CONFIG_WHAT)?.unwrap_or(Value::Null);
        let bad = |message: String| TokenizerError::Json {
            path: config_path.clone(),
            what: CONFIG_WHAT,
            message,
        };
        let mut specials = SpecialTokens {
            bos: token_field(&config, "bos_token").map_err(bad)?,
            eos: token_field(&config, "eos_token").map_err(bad)?,
            pad: token_field(&config, "pad_token").map_err(bad)?,
            unk: token_field(&config, "unk_token").map_err(bad)?,
            extra_eos_ids: Vec::new(),
            add_bos: bool_field(&config, "add_bos_token").map_err(bad)?,
        };
        let clean_up = bool_field(&config, "clean_up_tokenization_spaces").map_err(bad)?;

        let vocab_size = inner.get_vocab_size(true);
        for name in ["generation_config.json", "config.json"] {
            let path = dir.join(name);
            let Some(json) = read_json(&path, "HF model config")? else {
                continue;
            };
            let bad = |message: String| TokenizerError::Json {
                path: path.clone(),
                what: "HF model config",
                message,
            };
            specials
                .extra_eos_ids
                .extend(id_list(&json, "eos_token_id").map_err(bad)?);
            if specials.pad.is_none()
                && let Some(&pad) = id_list(&json, "pad_token_id").map_err(bad)?.first()
            {
                specials.pad =
                    Some(
                        inner
                            .id_to_token(pad)
                            .ok_or_else(|| TokenizerError::IdOutOfRange {
                                origin: format!("{} pad_token_id", path.display()),
                                id: pad,
                                vocab_size,
                            })?,
                    );
            }
        }
        specials.extra_eos_ids.sort_unstable();
        specials.extra_eos_ids.dedup();

        let mut tokenizer = Tokenizer::with_origin(inner, specials, dir.display().to_string())?;
        tokenizer.set_clean_up_tokenization_spaces(clean_up);
        load_templates(&mut tokenizer, dir, &config, &config_path)?;
        Ok(tokenizer)
    }
}

/// Templates from `tokenizer_config.json`, then the `.jinja` files (which win, as in
/// transformers).
fn load_templates(
    tokenizer: &mut Tokenizer,
    dir: &Path,
    config: &Value,
    config_path: &Path,
) -> Result<(), TokenizerError> {
    let shown = config_path.display();
    match config.get("chat_template") {
        None | Some(Value::Null) => {}
        Some(Value::String(source)) => tokenizer.insert_template(
            DEFAULT_TEMPLATE,
            source,
            format!("{shown} (chat_template)"),
        )?,
        Some(Value::Array(list)) => {
            for entry in list {
                let (Some(name), Some(source)) = (
                    entry.get("name").and_then(Value::as_str),
                    entry.get("template").and_then(Value::as_str),
                ) else {
                    return Err(TokenizerError::Json {
                        path: config_path.into(),
                        what: CONFIG_WHAT,
                        message: "each entry of `chat_template` must be \
                                  {\"name\": string, \"template\": string}"
                            .into(),
                    });
                };
                let origin = format!("{shown} (chat_template {name:?})");
                tokenizer.insert_template(name, source, origin)?;
            }
        }
        Some(_) => {
            return Err(TokenizerError::Json {
                path: config_path.into(),
                what: CONFIG_WHAT,
                message: "`chat_template` must be a string or a list of named templates".into(),
            });
        }
    }
    let mut files = vec![(DEFAULT_TEMPLATE.to_owned(), dir.join("chat_template.jinja"))];
    if let Ok(entries) = std::fs::read_dir(dir.join("additional_chat_templates")) {
        let mut extra: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p.clone())))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    for (name, path) in files {
        if !path.is_file() {
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|source| TokenizerError::Io {
            path: path.clone(),
            source,
        })?;
        tokenizer.insert_template(&name, &source, path.display().to_string())?;
    }
    Ok(())
}

/// The parsed JSON file, or `None` if there is no such file.
fn read_json(path: &Path, what: &'static str) -> Result<Option<Value>, TokenizerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TokenizerError::Io {
                path: path.into(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenizerError::Json {
            path: path.into(),
            what,
            message: e.to_string(),
        })
}

/// A special token: a string, `{"content": string, ...}` (a serialized `AddedToken`), or null.
fn token_field(config: &Value, field: &str) -> Result<Option<String>, String> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(format!("`{field}` has no string `content`")),
        },
        Some(other) => Err(format!(
            "`{field}` must be a string or {{\"content\": string}}, not {other}"
        )),
    }
}

fn bool_field(config: &Value, field: &str) -> Result<bool, String> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("`{field}` must be true or false, not {other}")),
    }
}

/// An id field that may be absent, null, one id, or a list of ids.
fn id_list(config: &Value, field: &str) -> Result<Vec<u32>, String> {
    let id = |v: &Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("`{field}` must be a token id or a list of ids, not {v}"))
    };
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ids)) => ids.iter().map(id).collect(),
        Some(v) => id(v).map(|id| vec![id]),
    }
}
