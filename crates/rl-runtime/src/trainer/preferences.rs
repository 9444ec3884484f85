//! Preference pairs for reward-model training: a JSON-lines file whose records hold a prompt
//! (a string, read as one user turn, or a list of `{"role", "content"}` messages), the response
//! people preferred and the one they rejected, in the fields `[preference]` names. A pair is
//! held out for evaluation when the hash of its text falls in `preference.eval_fraction`, so the
//! splits are disjoint and stable however the file is reordered.

use rl_core::{Message, Split, config::PreferenceConfig};

use rl_envs::{
    generated::{problem_hash, split_of},
    jsonl::read_data_file as read,
};

/// One preference pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The prompt's messages.
    pub prompt: Vec<Message>,
    /// The preferred response.
    pub chosen: String,
    /// The rejected response.
    pub rejected: String,
}

/// The pairs of a file, split into training and held-out pairs.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    /// Training pairs, in file order.
    pub train: Vec<Pair>,
    /// Held-out pairs, in file order.
    pub eval: Vec<Pair>,
}

/// Why the pairs could not be read; the message names the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preference data: {0}")]
pub struct PreferenceError(pub String);

impl Preferences {
    /// Reads `preference.path` with the configured fields. Each split needs at least one pair.
    pub fn load(config: &PreferenceConfig) -> Result<Self, PreferenceError> {
        let path = config.path.as_deref().ok_or_else(|| {
            PreferenceError("preference.path is not set: name the JSON-lines file of pairs".into())
        })?;
        let text = read(path, "preference.path").map_err(PreferenceError)?;
        let mut out = Self::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{} line {}", path.display(), n + 1);
            let pair = pair(line, config, &at).map_err(PreferenceError)?;
            let key = format!(
                "{:?}\u{0}{}\u{0}{}",
                pair.prompt, pair.chosen, pair.rejected
            );
            match split_of(problem_hash(&key), config.eval_fraction) {
                Split::Train => out.train.push(pair),
                Split::Eval => out.eval.push(pair),
            }
        }
        if out.train.is_empty() || out.eval.is_empty() {
            return Err(PreferenceError(format!(
                "{} gives {} training and {} held-out pairs with preference.eval_fraction = {}: each split needs at least one (more pairs, or another eval_fraction)",
                path.display(),
                out.train.len(),
                out.eval.len(),
                config.eval_fraction
            )));
        }
        Ok(out)
    }
}

/// One record as a pair; errors name `at` (file and line), the field and its config key.
fn pair(line: &str, config: &PreferenceConfig, at: &str) -> Result<Pair, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("{at}: not JSON: {e}"))?;
    let get = |name: &str, key: &str| {
        value.get(name).ok_or_else(|| {
            format!("{at}: no \"{name}\" field (set preference.{key} to the field that holds it)")
        })
    };
    let text = |name: &str, key: &str| -> Result<String, String> {
        match get(name, key)? {
            serde_json::Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "{at}: \"{name}\" (preference.{key}) must be a string, found {other}"
            )),
        }
    };
    let prompt = match get(&config.prompt_field, "prompt_field")? {
        serde_json::Value::String(s) if !s.trim().is_empty() => vec![Message::user(s.clone())],
        list @ serde_json::Value::Array(_) => {
            let messages: Vec<Message> = serde_json::from_value(list.clone()).map_err(|e| {
                format!(
                    "{at}: \"{}\" must be a list of {{\"role\": \"system\"|\"user\"|\"assistant\"|\"tool\", \"content\": \"...\"}}: {e}",
                    config.prompt_field
                )
            })?;
            if messages.is_empty() {
                return Err(format!(
                    "{at}: \"{}\" is an empty list",
                    config.prompt_field
                ));
            }
            messages
        }
        other => {
            return Err(format!(
                "{at}: \"{}\" (preference.prompt_field) must be a non-empty string or a list of messages, found {other}",
                config.prompt_field
            ));
        }
    };
    let chosen = text(&config.chosen_field, "chosen_field")?;
    let rejected = text(&config.rejected_field, "rejected_field")?;
    if chosen == rejected {
        return Err(format!(
            "{at}: the chosen and rejected responses are the same text; such a pair teaches nothing — remove it"
        ));
    }
    Ok(Pair {
        prompt,
        chosen,
        rejected,
    })
}
