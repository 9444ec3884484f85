//! `rl eval [CONFIG] [--model M] [--env E] [-n N] [-k K]`: the policy answers `N` held-out tasks
//! of the environment — greedily, and `K` sampled times for pass@k — and the environment's
//! verifier scores them. Multi-turn environments run whole episodes (the policy's replies and
//! the environment's turns). Prints a JSON summary; writes one JSONL line per task.

use std::{io::Write, path::Path};

use anyhow::Context;
use rl_core::{Config, Env, Episode, Scoring, Split, Task, config::MAX_TURNS, run_episodes};
use rl_model::{device_name, resolve_device, resolve_kind};
use rl_rollout::{
    Completion, Engine, EngineConfig, FinishReason, GenerateRequest, Prompt, SamplingParams,
};
use serde_json::json;

use super::UsageError;
use crate::{cli::EvalArgs, console::Console};

/// Runs `rl eval`.
pub fn run(args: EvalArgs, console: Console) -> anyhow::Result<()> {
    let mut overrides = args.overrides.clone();
    if let Some(env) = &args.env {
        overrides.insert(0, format!("env.name={env}"));
    }
    let config = match &args.config {
        Some(path) => Config::load(path, &overrides)?,
        None => Config::from_toml("", Path::new("(built-in defaults)"), &overrides)?,
    };
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| config.model.path.clone());
    let device = resolve_device(config.placement.rollout_device, "placement.rollout_device")?;
    let kind = resolve_kind(config.model.dtype, device);
    let mut env = rl_envs::by_name(&config.env).map_err(|e| UsageError(e.to_string()))?;
    let verifier =
        rl_envs::verifier(&config.env, &config.reward).map_err(|e| UsageError(e.to_string()))?;
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
    let greedy = episodes(
        &mut engine,
        env.as_mut(),
        &tasks,
        1,
        &greedy,
        &console,
        "greedy",
    )?;
    let k = args.k as usize;
    let sampled = if k > 1 {
        let temperature = if config.rollout.temperature > 0.0 {
            config.rollout.temperature
        } else {
            1.0
        };
        let params = SamplingParams {
            temperature,
            top_p: config.rollout.top_p,
            top_k: config.rollout.top_k,
            max_new_tokens,
            seed: Some(config.run.seed),
            ..SamplingParams::default()
        };
        episodes(
            &mut engine,
            env.as_mut(),
            &tasks,
            k,
            &params,
            &console,
            "pass@k",
        )?
    } else {
        Vec::new()
    };

    let correct = |task: &Task, e: &Episode| -> anyhow::Result<bool> {
        if let Some(reward) = e.env_reward {
            return Ok(reward > 0.5);
        }
        let score = verifier.score(&[Scoring {
            task,
            response: e.reply(),
        }])?;
        Ok(score.first().is_some_and(|s| s.reward > 0.5))
    };
    // Multi-turn episodes also record what came between the prompt and the final reply.
    let turns = |task: &Task, e: &Episode| {
        let turns = e.turns(task);
        (turns.len() > 1).then(|| turns[..turns.len() - 1].to_vec())
    };
    let (mut right, mut passed) = (0usize, 0usize);
    for (i, task) in tasks.iter().enumerate() {
        let (g, finish) = &greedy[i];
        let g_ok = correct(task, g)?;
        right += usize::from(g_ok);
        let mut samples = Vec::new();
        for (e, _) in sampled.iter().skip(i * k).take(k) {
            let mut sample = json!({"text": e.reply(), "correct": correct(task, e)?});
            if let Some(t) = turns(task, e) {
                sample["turns"] = json!(t);
            }
            samples.push(sample);
        }
        let pass = samples.iter().any(|s| s["correct"] == true);
        passed += usize::from(pass);
        let mut greedy =
            json!({"text": g.reply(), "correct": g_ok, "finish_reason": finish.as_str()});
        if let Some(t) = turns(task, g) {
            greedy["turns"] = json!(t);
        }
        let line = json!({
            "id": task.id,
            "prompt": task.messages.last().map(|m| m.content.clone()),
            "answer": task.answer,
            "greedy": greedy,
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

/// `samples` episodes of every task with `params` (each episode its own seed stream), in
/// (task, sample) order, each with the finish reason of its final reply. Multi-turn
/// environments take one generation round per turn; a refused prompt is an error naming it.
fn episodes(
    engine: &mut Engine,
    env: &mut dyn Env,
    tasks: &[Task],
    samples: usize,
    params: &SamplingParams,
    console: &Console,
    what: &str,
) -> anyhow::Result<Vec<(Episode, FinishReason)>> {
    let tokenizer = engine.tokenizer().clone();
    let mut finish = vec![FinishReason::Length; tasks.len() * samples];
    let mut round = 0;
    let episodes = run_episodes(
        env,
        tasks,
        samples,
        |turns| -> anyhow::Result<Vec<String>> {
            round += 1;
            let requests = turns
                .iter()
                .map(|t| {
                    let episode = (t.task * samples + t.sample) as u64;
                    Ok(GenerateRequest {
                        prompt: Prompt::Tokens(tokenizer.encode_chat(t.transcript, true)?),
                        params: SamplingParams {
                            seed: params.seed.map(|s| {
                                s.wrapping_add(episode * u64::from(MAX_TURNS) + t.reply as u64)
                            }),
                            ..params.clone()
                        },
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let label = if round == 1 {
                what.to_owned()
            } else {
                format!("{what}, turn {round}")
            };
            let done = generate(engine, &requests, console, &label)?;
            Ok(turns
                .iter()
                .zip(done)
                .map(|(t, c)| {
                    finish[t.task * samples + t.sample] = c.finish_reason;
                    c.text
                })
                .collect())
        },
    )?;
    Ok(episodes.into_iter().zip(finish).collect())
}

/// One completion per request, in request order; a refused request is an error naming it.
fn generate(
    engine: &mut Engine,
    requests: &[GenerateRequest],
    console: &Console,
    what: &str,
) -> anyhow::Result<Vec<Completion>> {
    let bar = console.progress(requests.len() as u64, what);
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    engine.generate(requests, &mut |e| {
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
    done.sort_by_key(|c| c.request);
    Ok(done)
}
