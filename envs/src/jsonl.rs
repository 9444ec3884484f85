//! `jsonl`: question/answer pairs from a JSON-lines file, e.g. GSM8K (`{"question": ...,
//! "answer": "... #### 72"}`). Which fields hold the prompt and the answer is configured
//! (`env.prompt_field`, `env.answer_field`); an answer with GSM8K's `####` marker keeps only what
//! follows it. The held-out split is disjoint by construction: a record belongs to the eval
//! split when the hash of its prompt falls in `env.eval_fraction`, as for the generated
//! environments. Tasks are drawn by a seeded shuffle of the split, cycling when more are asked
//! for than it holds.

use std::path::Path;

use rl_core::{Env, EnvError, Message, Split, Task, config::EnvConfig};

use rl_core::rng::Rng;

use crate::generated::{check_eval_fraction, problem_hash, split_of};

/// Largest data file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The `jsonl` environment: records split into train and eval.
#[derive(Debug, Clone)]
pub struct Jsonl {
    train: Vec<Task>,
    eval: Vec<Task>,
}

impl Jsonl {
    /// Reads `env.path` with the configured fields.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        let err = |message: String| EnvError {
            env: "jsonl".to_owned(),
            message,
        };
        check_eval_fraction("jsonl", config.eval_fraction)?;
        let path = config
            .path
            .as_deref()
            .ok_or_else(|| err("env.path is not set: name the JSON-lines file".into()))?;
        let (mut train, mut eval) = (Vec::new(), Vec::new());
        for task in records(path, "env.path", config).map_err(err)? {
            match &config.eval_path {
                Some(_) => train.push(task),
                None => match split_of(problem_hash(&task.id), config.eval_fraction) {
                    Split::Train => train.push(task),
                    Split::Eval => eval.push(task),
                },
            }
        }
        if let Some(eval_path) = &config.eval_path {
            eval = records(eval_path, "env.eval_path", config).map_err(err)?;
            if train.is_empty() || eval.is_empty() {
                return Err(err(format!(
                    "{} holds {} records and env.eval_path {} holds {}: each needs at least one",
                    path.display(),
                    train.len(),
                    eval_path.display(),
                    eval.len()
                )));
            }
        } else if train.is_empty() || eval.is_empty() {
            return Err(err(format!(
                "{} gives {} training and {} held-out records with env.eval_fraction = {}: each split needs at least one (more records, another eval_fraction, or env.eval_path)",
                path.display(),
                train.len(),
                eval.len(),
                config.eval_fraction
            )));
        }
        Ok(Self { train, eval })
    }

    /// Records in `split`.
    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train.len(),
            Split::Eval => self.eval.len(),
        }
    }
}

impl Env for Jsonl {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
        let pool = match split {
            Split::Train => &self.train,
            Split::Eval => &self.eval,
        };
        // A seeded Fisher–Yates order of the split, repeated as often as `n` needs.
        let mut order: Vec<usize> = (0..pool.len()).collect();
        let mut rng = Rng::new(seed, 0x6a73_6f6e);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        Ok(order
            .iter()
            .cycle()
            .take(n)
            .map(|&i| pool[i].clone())
            .collect())
    }
}

/// The records of the data file `path` (config key `key`) as tasks.
fn records(path: &Path, key: &str, config: &EnvConfig) -> Result<Vec<Task>, String> {
    let text = read_data_file(path, key)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{} line {}", path.display(), n + 1);
        out.push(record(line, config, &at)?);
    }
    Ok(out)
}

/// The text of the data file `path` that config key `key` names, at most [`MAX_FILE_BYTES`].
pub fn read_data_file(path: &Path, key: &str) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{key} {} is {size} bytes; at most {MAX_FILE_BYTES} are read",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {key} {}: {e}", path.display()))
}

/// One record as a task: the prompt (after the system prompt, if any) as the user turn, the
/// answer after GSM8K's `####` when present; the id is the record's `id` field or its prompt.
fn record(line: &str, config: &EnvConfig, at: &str) -> Result<Task, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("{at}: not JSON: {e}"))?;
    let field = |name: &str, key: &str| -> Result<String, String> {
        match value.get(name) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(format!(
                "{at}: \"{name}\" ({key}) must be a non-empty string, found {other}"
            )),
            None => Err(format!(
                "{at}: no \"{name}\" field (set {key} to the field that holds it)"
            )),
        }
    };
    let prompt = field(&config.prompt_field, "env.prompt_field")?;
    let answer = field(&config.answer_field, "env.answer_field")?;
    let answer = match answer.rsplit_once("####") {
        Some((_, tail)) => tail.trim().to_owned(),
        None => answer.trim().to_owned(),
    };
    let id = match value.get("id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => format!("jsonl-{:016x}", problem_hash(&prompt)),
    };
    let mut messages: Vec<Message> = config.system_prompt.iter().map(Message::system).collect();
    messages.push(Message::user(prompt));
    Ok(Task {
        id,
        messages,
        answer: Some(answer),
        metadata: serde_json::Value::Null,
    })
}
