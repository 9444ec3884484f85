//! `rl train CONFIG`: load and validate the config; a reward-model config
//! (`run.trainer = "reward_model"`) goes to [`super::train_reward_model`]. For the policy: place the roles on devices, open the run
//! directory and its metric sinks, load the policy and its tokenizer. The training stages
//! (sample → score → prepare → update → sync) plug in here as they land; until then the run
//! stops, truthfully, after setup.

use std::{
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

use anyhow::Context;
use rl_core::{Config, config::Trainer};
use rl_model::{probe::device_name, resolve_device, resolve_kind};
use rl_runtime::{
    Metrics, RunDir, RunDirError, StepMetrics,
    run_dir::{default_run_name, unused_path},
};
use serde_json::json;
use tracing::{info, warn};

use crate::{cli::TrainArgs, console::Console};

/// Runs `rl train`.
pub fn run(args: TrainArgs, console: Console) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = Config::load(&args.config, &args.overrides)?;
    let path = run_path(&args, &config)?;
    if config.run.name.is_empty() {
        config.run.name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if config.run.trainer == Trainer::RewardModel {
        return super::train_reward_model::run(&config, &path, args.resume, &console);
    }

    // Devices before the run directory: a config this machine cannot run leaves nothing behind.
    let p = &config.placement;
    let rollout_device = resolve_device(p.rollout_device, "placement.rollout_device")?;
    let learner_device = resolve_device(p.learner_device, "placement.learner_device")?;
    let kind = resolve_kind(config.model.dtype, rollout_device);
    rl_model::source::resolve(&config.model.path)?; // a missing model, too, before anything is written

    let dir = RunDir::open(&path, args.resume)?;
    let toml = config.to_toml();
    if let Some(kept) = dir.write_config(&toml)? {
        warn!(
            "the config differs from the one this run used before; that one is kept as {}",
            kept.display()
        );
    }
    let mut metrics = Metrics::open(dir.path(), config.logging.tensorboard, config.logging.jsonl)
        .with_context(|| {
        format!("cannot create the metric files in {}", dir.path().display())
    })?;
    let config_text = toml
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");

    let bar = console.progress(2, "loading");
    bar.set_message(format!("tokenizer of {}", config.model.path));
    let tokenizer = rl_model::load_tokenizer(&config.model.path)?;
    bar.inc(1);
    bar.set_message(format!(
        "policy {} on {}",
        config.model.path,
        device_name(rollout_device)
    ));
    let load_start = Instant::now();
    let policy = rl_model::load(&config.model.path, rollout_device, kind)?;
    bar.finish_and_clear();
    let parameters: i64 = policy
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    info!(
        model = %config.model.path,
        arch = policy.config.name(),
        parameters,
        vocab = tokenizer.vocab_size(),
        seconds = load_start.elapsed().as_secs_f64(),
        "policy loaded"
    );

    let setup = StepMetrics::default()
        .text("config", config_text)
        .scalar("model/parameters", parameters as f64)
        .scalar("time/model_load_s", load_start.elapsed().as_secs_f64())
        .scalar("time/setup_s", started.elapsed().as_secs_f64());
    metrics.write(0, &setup)?;
    metrics.flush()?;

    info!(run_dir = %dir.path().display(), "run directory ready (config.toml, TensorBoard events, metrics.jsonl)");
    info!(
        algorithm = %config.algorithm.name,
        model = %config.model.path,
        rollout_device = %device_name(rollout_device),
        learner_device = %device_name(learner_device),
        dtype = ?kind,
        steps = config.run.steps,
        "placement resolved"
    );
    let status = "setup complete (config, run directory, metrics, policy and tokenizer loaded); the \
                  training stages (rollouts, rewards, updates) are not implemented yet and arrive \
                  with the next issues, so the run stops here";
    warn!("{status}");
    if console.json {
        let summary = json!({
            "run_dir": dir.path(),
            "status": "setup_complete",
            "steps_done": 0,
            "rollout_device": device_name(rollout_device),
            "learner_device": device_name(learner_device),
            "model": {
                "path": config.model.path,
                "arch": policy.config.name(),
                "parameters": parameters,
                "vocab_size": tokenizer.vocab_size(),
                "dtype": format!("{kind:?}"),
            },
            "config": config,
        });
        crate::console::out(summary)?;
    } else if !console.quiet {
        crate::console::out(format!("run directory: {}", dir.path().display()))?;
        let logdir = dir
            .path()
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::console::out(format!(
            "watch it with: tensorboard --logdir {}",
            logdir.display()
        ))?;
    }
    Ok(())
}

/// The run directory: `--run-dir`, else `<runs_dir>/<run.name>`, else a fresh timestamped name.
fn run_path(args: &TrainArgs, config: &Config) -> anyhow::Result<PathBuf> {
    let run = &config.run;
    Ok(match (&args.run_dir, run.name.is_empty()) {
        (Some(dir), _) => dir.clone(),
        (None, false) => run.runs_dir.join(&run.name),
        (None, true) if args.resume => return Err(RunDirError::ResumeWhich.into()),
        (None, true) => {
            let stem = args
                .config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            let name = default_run_name(stem.as_deref().unwrap_or("run"), SystemTime::now());
            unused_path(&run.runs_dir, &name)
        }
    })
}
