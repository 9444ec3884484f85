//! `rl eval CONFIG [--model M] [-n N] [-k K]`: the policy answers `N` held-out tasks of the
//! config's environment — greedily, and `K` sampled times for pass@k — and the environment's
//! verifier scores them. Prints a JSON summary; writes one JSONL line per task.

use std::io::Write;

use anyhow::Context;
use rl_core::{Config, Scoring, Split, Task};
use rl_model::{probe::device_name, resolve_device, resolve_kind};
use rl_rollout::{Completion, Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use serde_json::json;

use super::UsageError;
use crate::{cli::EvalArgs, console::Console};

/// Runs `rl eval`.
pub fn run(args: EvalArgs, console: Console) -> anyhow::Result<()> {
    let config = Config::load(&args.config, &args.overrides)?;
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| config.model.path.clone());
    let device = resolve_device(config.placement.rollout_device, "placement.rollout_device")?;
    let kind = resolve_kind(config.model.dtype, device);
    let mut env = rl_envs::by_name(&config.env).map_err(|e| UsageError(e.to_string()))?;
    let verifier = rl_envs::verifier(&config.env).map_err(|e| UsageError(e.to_string()))?;
    let tasks = env
        .tasks(Split::Eval, args.n as usize, config.run.seed)
        .map_err(|e| UsageError(e.to_string()))?;
    let out_path = match &args.out {
        Some(p) => p.clone(),
        None => {
            std::fs::create_dir_all(&config.run.runs_dir)
                .with_context(|| format!("cannot create {}", config.run.runs_dir.display()))?;
            let dir = &config.run.runs_dir;
            let name = |n: u32| match n {
                1 => format!("eval-{}.jsonl", env.name()),
                n => format!("eval-{}-{n}.jsonl", env.name()),
            };
            (1..)
                .map(|n| dir.join(name(n)))
                .find(|p| !p.exists())
                .unwrap_or_else(|| dir.join(name(1)))
        }
    };
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&out_path)
            .map_err(|e| UsageError(format!("cannot create {}: {e}", out_path.display())))?,
    );

    let tokenizer = rl_model::load_tokenizer(&model)?;
    let prompts = tasks
        .iter()
        .map(|t| Ok(Prompt::Tokens(tokenizer.encode_chat(&t.messages, true)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let loaded = rl_model::load(&model, device, kind)?;
    let mut engine = Engine::new(loaded, tokenizer, EngineConfig::default())
        .map_err(|e| UsageError(e.to_string()))?;
    tracing::info!(
        "evaluating {model} on {} held-out {} tasks (greedy{}) on {}",
        tasks.len(),
        env.name(),
        if args.k > 1 {
            format!(", pass@{}", args.k)
        } else {
            String::new()
        },
        device_name(device)
    );

    let max_new_tokens = config.rollout.max_new_tokens;
    let greedy = SamplingParams {
        max_new_tokens,
        ..SamplingParams::greedy(max_new_tokens)
    };
    let greedy = generate(&mut engine, &prompts, &greedy, &console, "greedy")?;
    let sampled = if args.k > 1 {
        let temperature = if config.rollout.temperature > 0.0 {
            config.rollout.temperature
        } else {
            1.0
        };
        let params = SamplingParams {
            n: args.k,
            temperature,
            top_p: config.rollout.top_p,
            top_k: config.rollout.top_k,
            max_new_tokens,
            seed: Some(config.run.seed),
            ..SamplingParams::default()
        };
        generate(&mut engine, &prompts, &params, &console, "pass@k")?
    } else {
        Vec::new()
    };

    let correct = |task: &Task, c: &Completion| -> anyhow::Result<bool> {
        let score = verifier.score(&[Scoring {
            task,
            response: &c.text,
        }])?;
        Ok(score.first().is_some_and(|s| s.reward > 0.5))
    };
    let (mut right, mut passed) = (0usize, 0usize);
    let k = args.k as usize;
    for (i, task) in tasks.iter().enumerate() {
        let g = &greedy[i];
        let g_ok = correct(task, g)?;
        right += usize::from(g_ok);
        let mut samples = Vec::new();
        for c in sampled.iter().skip(i * k).take(k) {
            samples.push(json!({"text": c.text, "correct": correct(task, c)?}));
        }
        let pass = samples.iter().any(|s| s["correct"] == true);
        passed += usize::from(pass);
        let line = json!({
            "id": task.id,
            "prompt": task.messages.last().map(|m| m.content.clone()),
            "answer": task.answer,
            "greedy": {"text": g.text, "correct": g_ok, "finish_reason": g.finish_reason.as_str()},
            "samples": samples,
            "pass_at_k": (k > 1).then_some(pass),
        });
        writeln!(file, "{line}").with_context(|| format!("cannot write {}", out_path.display()))?;
    }
    file.flush()
        .with_context(|| format!("cannot write {}", out_path.display()))?;
    let n = tasks.len() as f64;
    let mut summary = json!({
        "model": model,
        "env": env.name(),
        "tasks": tasks.len(),
        "greedy_accuracy": right as f64 / n,
        "samples": out_path.display().to_string(),
    });
    if k > 1 {
        summary[format!("pass@{k}")] = json!(passed as f64 / n);
    }
    crate::console::out(serde_json::to_string_pretty(&summary)?)
}

/// Every prompt's completions with `params`, ordered by (prompt, sample); a refused prompt is
/// an error naming it.
fn generate(
    engine: &mut Engine,
    prompts: &[Prompt],
    params: &SamplingParams,
    console: &Console,
    what: &str,
) -> anyhow::Result<Vec<Completion>> {
    let requests: Vec<GenerateRequest> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| GenerateRequest {
            prompt: p.clone(),
            params: SamplingParams {
                seed: params.seed.map(|s| s.wrapping_add(i as u64)),
                ..params.clone()
            },
        })
        .collect();
    let bar = console.progress(requests.len() as u64 * u64::from(params.n), what);
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    engine.generate(&requests, &mut |e| {
        bar.inc(1);
        match e {
            Ok(c) => done.push(c),
            Err(e) => refused.push(e),
        }
    });
    bar.finish_and_clear();
    if let Some(e) = refused.first() {
        return Err(UsageError(format!("task {} was refused: {}", e.request, e.message)).into());
    }
    done.sort_by_key(|c| (c.request, c.sample));
    Ok(done)
}
