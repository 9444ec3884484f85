//! `rl generate --model M --prompt T | --file prompts.jsonl`: samples completions with the
//! rollout engine and writes them as JSONL, one line per completion, in prompt order.

use std::{
    collections::BTreeMap,
    io::{BufRead, Write},
    path::Path,
    time::Instant,
};

use anyhow::Context;
use rl_model::tokenizer::{Message, Tokenizer};
use rl_rollout::{Completion, Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use serde_json::{Value, json};

use super::UsageError;
use crate::{cli::GenerateArgs, console::Console};

/// One input prompt: its text as given (for the output) and what the engine receives.
struct Input {
    id: Option<Value>,
    shown: String,
    prompt: Prompt,
}

/// Runs `rl generate`.
pub fn run(args: GenerateArgs, console: Console) -> anyhow::Result<()> {
    let params = SamplingParams {
        n: args.n,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        min_p: args.min_p,
        max_new_tokens: args.max_new_tokens,
        stop_token_ids: args.stop_token_ids.clone(),
        stop: args.stop.clone(),
        ignore_eos: args.ignore_eos,
        seed: None,
    };
    params
        .validate()
        .map_err(|e| UsageError(format!("invalid sampling option: {e}")))?;
    let (device, kind) = super::placement(&args.placement)?;
    let tokenizer = rl_model::load_tokenizer(&args.model)?;
    let inputs = read_inputs(&args, &tokenizer)?;
    let requests: Vec<GenerateRequest> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| GenerateRequest {
            prompt: input.prompt.clone(),
            params: SamplingParams {
                seed: args.seed.map(|s| s.wrapping_add(i as u64)),
                ..params.clone()
            },
        })
        .collect();

    let loaded = rl_model::load(&args.model, device, kind)?;
    let config = EngineConfig {
        max_batch: args.max_batch,
        max_seq_len: args.max_seq_len,
        cuda_graphs: args.cuda_graphs,
        ..EngineConfig::default()
    };
    let mut engine =
        Engine::new(loaded, tokenizer, config).map_err(|e| UsageError(e.to_string()))?;
    tracing::info!(
        "generating {} completion(s) for {} prompt(s) on {} ({kind:?}), {} at a time",
        requests.len() as u64 * u64::from(args.n),
        requests.len(),
        rl_model::device_name(device),
        engine.max_batch()
    );

    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| UsageError(format!("cannot create --out {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = OrderedWriter::new(inputs.len(), args.n);
    let bar = console.progress(writer.expected(), "generate");
    let (start, mut tokens, mut refused) = (Instant::now(), 0usize, 0usize);
    let mut failure = None;
    engine.generate(&requests, &mut |event| {
        let lines = match event {
            Ok(c) => {
                tokens += c.token_ids.len();
                bar.inc(1);
                let line = completion_line(&inputs[c.request], &c, args.logprobs);
                writer.put(c.request, c.sample, Some(line))
            }
            Err(e) => {
                refused += 1;
                bar.inc(u64::from(args.n));
                tracing::warn!("prompt {}: {}", e.request, e.message);
                let input = &inputs[e.request];
                let line = json!({"index": e.request, "id": input.id, "prompt": input.shown, "error": e.message});
                writer.refuse(e.request, line.to_string())
            }
        };
        bar.set_message(format!("{:.0} tokens/s", tokens as f64 / start.elapsed().as_secs_f64()));
        if failure.is_none() {
            failure = lines.iter().try_for_each(|l| writeln!(sink, "{l}")).err();
        }
    });
    bar.finish_and_clear();
    match failure {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the completions")?
        }
        _ => sink.flush().or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })?,
    }
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "{} completion(s), {tokens} tokens in {secs:.1} s: {:.0} tokens/s",
        writer.expected() - refused as u64 * u64::from(args.n),
        tokens as f64 / secs
    );
    if refused > 0 {
        let msg = format!(
            "{refused} of {} prompt(s) were refused (see the messages above); the others were written",
            inputs.len()
        );
        return Err(UsageError(msg).into());
    }
    Ok(())
}

/// The prompts of `--prompt` or `--file`.
fn read_inputs(args: &GenerateArgs, tokenizer: &Tokenizer) -> anyhow::Result<Vec<Input>> {
    let chat = |user: String| -> anyhow::Result<String> {
        let mut messages: Vec<Message> = args.system.iter().map(Message::system).collect();
        messages.push(Message::user(user));
        Ok(tokenizer.apply_chat_template(&messages, true)?)
    };
    let prepare = |text: String| -> anyhow::Result<Input> {
        let rendered = if args.chat {
            chat(text.clone())?
        } else {
            text.clone()
        };
        Ok(Input {
            id: None,
            shown: text,
            prompt: text_prompt(rendered, args.chat, tokenizer)?,
        })
    };
    match (&args.prompt, &args.file) {
        (Some(text), _) => Ok(vec![prepare(text.clone())?]),
        (None, Some(path)) => read_jsonl(path, tokenizer, &prepare),
        (None, None) => Err(UsageError(
            "give a prompt with --prompt TEXT or a JSONL file with --file FILE".into(),
        )
        .into()),
    }
}

/// A chat-rendered text already holds its special tokens: encode it without adding more.
fn text_prompt(text: String, rendered: bool, tokenizer: &Tokenizer) -> anyhow::Result<Prompt> {
    Ok(if rendered {
        Prompt::Tokens(tokenizer.encode(&text, false)?.ids)
    } else {
        Prompt::Text(text)
    })
}

fn read_jsonl(
    path: &Path,
    tokenizer: &Tokenizer,
    prepare: &dyn Fn(String) -> anyhow::Result<Input>,
) -> anyhow::Result<Vec<Input>> {
    let file = std::fs::File::open(path)
        .map_err(|e| UsageError(format!("cannot read --file {}: {e}", path.display())))?;
    let mut inputs = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = || format!("{} line {}", path.display(), n + 1);
        let line = line.map_err(|e| UsageError(format!("{}: {e}", at())))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| UsageError(format!("{}: not JSON: {e}", at())))?;
        let id = value.get("id").cloned();
        let mut input = match (value.get("prompt"), value.get("messages")) {
            (Some(Value::String(text)), None) => prepare(text.clone())?,
            (None, Some(messages)) => {
                let messages: Vec<Message> =
                    serde_json::from_value(messages.clone()).map_err(|e| {
                        UsageError(format!(
                            "{}: \"messages\" must be a list of {{\"role\", \"content\"}}: {e}",
                            at()
                        ))
                    })?;
                let text = tokenizer
                    .apply_chat_template(&messages, true)
                    .map_err(|e| UsageError(format!("{}: {e}", at())))?;
                Input {
                    id: None,
                    shown: serde_json::to_string(&messages)?,
                    prompt: text_prompt(text, true, tokenizer)?,
                }
            }
            _ => {
                return Err(UsageError(format!(
                    "{}: expected an object with a string \"prompt\" or a \"messages\" list (not both)",
                    at()
                ))
                .into());
            }
        };
        input.id = id;
        inputs.push(input);
    }
    if inputs.is_empty() {
        return Err(UsageError(format!("--file {} has no prompts", path.display())).into());
    }
    Ok(inputs)
}

fn completion_line(input: &Input, c: &Completion, logprobs: bool) -> String {
    let mut line = json!({
        "index": c.request,
        "sample": c.sample,
        "prompt": input.shown,
        "completion": c.text,
        "finish_reason": c.finish_reason.as_str(),
        "prompt_tokens": c.prompt_ids.len(),
        "completion_tokens": c.token_ids.len(),
        "token_ids": c.token_ids,
    });
    if let Some(id) = &input.id {
        line["id"] = id.clone();
    }
    if logprobs {
        line["logprobs"] = json!(c.logprobs);
    }
    line.to_string()
}

/// Releases lines in (prompt, sample) order as they arrive out of order.
struct OrderedWriter {
    pending: BTreeMap<(usize, u32), Option<String>>,
    next: (usize, u32),
    prompts: usize,
    n: u32,
}

impl OrderedWriter {
    fn new(prompts: usize, n: u32) -> Self {
        Self {
            pending: BTreeMap::new(),
            next: (0, 0),
            prompts,
            n,
        }
    }

    fn expected(&self) -> u64 {
        self.prompts as u64 * u64::from(self.n)
    }

    /// Adds completion `sample` of `prompt` (None: nothing to write) and returns the lines now
    /// ready.
    fn put(&mut self, prompt: usize, sample: u32, line: Option<String>) -> Vec<String> {
        self.pending.insert((prompt, sample), line);
        let mut ready = Vec::new();
        while let Some(line) = self.pending.remove(&self.next) {
            ready.extend(line);
            self.next = if self.next.1 + 1 == self.n {
                (self.next.0 + 1, 0)
            } else {
                (self.next.0, self.next.1 + 1)
            };
        }
        ready
    }

    /// A refused prompt: one error line in place of its `n` completions.
    fn refuse(&mut self, prompt: usize, line: String) -> Vec<String> {
        for sample in 1..self.n {
            self.pending.insert((prompt, sample), None);
        }
        self.put(prompt, 0, Some(line))
    }
}
