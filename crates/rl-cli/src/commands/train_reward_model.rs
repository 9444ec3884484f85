//! `rl train CONFIG` with `run.trainer = "reward_model"`: loads the pairs and the model (bad input
//! leaves nothing behind), opens the run directory, and hands the run to
//! [`rl_runtime::trainer::reward_model`]; adds the progress bar and the closing summary.

use std::{path::Path, time::Instant};

use anyhow::Context;
use rl_core::Config;
use rl_model::{device_name, resolve_device};
use rl_runtime::{Metrics, RunDir, trainer::reward_model::RewardModelRun};
use serde_json::json;
use tracing::info;

use super::UsageError;
use crate::console::Console;

/// Trains the reward model `config` describes into `run_dir`.
pub fn run(config: &Config, run_dir: &Path, resume: bool, console: &Console) -> anyhow::Result<()> {
    if resume {
        return Err(UsageError(
            "reward-model runs do not resume; start a new run with model.path = \"<run dir>/reward_model\" to continue from its weights".into(),
        )
        .into());
    }
    let started = Instant::now();
    let device = resolve_device(config.placement.learner_device, "placement.learner_device")?;
    let run = RewardModelRun::prepare(config, device)?;
    let (eval_pairs, train_pairs) = run.pairs();
    info!(
        model = %config.model.path,
        arch = run.model().config.name(),
        train_pairs,
        eval_pairs,
        device = %device_name(device),
        "reward model ready to train"
    );

    let dir = RunDir::open(run_dir, false)?;
    dir.write_config(&config.to_toml())?;
    let mut metrics = Metrics::open(dir.path(), config.logging.tensorboard, config.logging.jsonl)
        .with_context(|| {
        format!("cannot create the metric files in {}", dir.path().display())
    })?;
    let bar = console.progress(config.run.steps, "reward model");
    let outcome = run.train(dir.path(), &mut metrics, &mut |_, stats| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3} acc {:.2}", stats.loss, stats.accuracy));
    })?;
    bar.finish_and_clear();
    let (before, after) = (&outcome.before, &outcome.after);
    info!(saved = %outcome.reward_model.display(), seconds = started.elapsed().as_secs_f64(), "reward model trained");
    let summary = json!({
        "run_dir": dir.path(),
        "status": "done",
        "trainer": "reward_model",
        "steps_done": config.run.steps,
        "reward_model": outcome.reward_model,
        "eval_before": {"loss": before.loss, "accuracy": before.accuracy},
        "eval": {"loss": after.loss, "accuracy": after.accuracy, "margin": after.margin, "pairs": after.pairs},
    });
    if console.json {
        crate::console::out(summary)
    } else if console.quiet {
        Ok(())
    } else {
        crate::console::out(serde_json::to_string_pretty(&summary)?)
    }
}
