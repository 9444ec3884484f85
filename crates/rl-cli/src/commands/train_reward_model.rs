//! `rl train CONFIG` with `run.trainer = "reward_model"`: trains a scalar-head reward model on
//! the `[preference]` pairs with the Bradley–Terry loss, evaluates it on the held-out pairs
//! before the first step, every `preference.eval_every` steps and after the last, logs to the
//! run directory's metric sinks, and saves it as an HF sequence-classification directory,
//! `<run dir>/reward_model`, which `reward.kind = "model"` and transformers both load.
//!
//! The model starts from `model.path`: an HF reward-model directory (training continues), an
//! HF backbone directory (an encoder such as all-MiniLM-L6-v2, or a causal LM) or a GGUF/built-in
//! policy, both with a fresh head. It trains in f32 on `placement.learner_device`.

use std::{path::Path, time::Instant};

use anyhow::Context;
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rl_core::Config;
use rl_envs::{Pair, Preferences};
use rl_learner::{AdamWConfig, PairBatch, PairStats, RewardModelSettings, RewardModelTrainer};
use rl_model::{
    heads::ScalarModel,
    probe::device_name,
    resolve_device,
    reward_input::{RewardText, encode_reward_batch},
    tokenizer::Tokenizer,
};
use rl_runtime::{Metrics, RunDir, StepMetrics};
use serde_json::json;
use tch::{Device, Kind};
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
    // Data and model before the run directory: bad input leaves nothing behind.
    let data = Preferences::load(&config.preference).map_err(|e| UsageError(e.to_string()))?;
    let tokenizer = rl_model::load_tokenizer(&config.model.path)?;
    let model = initial_model(&config.model.path, device)?;
    info!(
        model = %config.model.path,
        arch = model.config.name(),
        train_pairs = data.train.len(),
        eval_pairs = data.eval.len(),
        device = %device_name(device),
        "reward model ready to train"
    );

    let dir = RunDir::open(run_dir, false)?;
    dir.write_config(&config.to_toml())?;
    let mut metrics = Metrics::open(dir.path(), config.logging.tensorboard, config.logging.jsonl)
        .with_context(|| {
        format!("cannot create the metric files in {}", dir.path().display())
    })?;

    let l = &config.learner;
    let p = &config.preference;
    let settings = RewardModelSettings {
        lr: l.lr,
        schedule: l.lr_schedule,
        warmup_steps: l.warmup_steps,
        total_steps: config.run.steps,
        grad_clip: l.grad_clip,
        adam: AdamWConfig {
            betas: (l.adam_betas[0], l.adam_betas[1]),
            eps: l.adam_eps,
            weight_decay: l.weight_decay,
        },
    };
    let mut trainer = RewardModelTrainer::new(model, settings);
    let encoder = Encoder {
        tokenizer: &tokenizer,
        max_length: p.max_length as usize,
        micro: p.micro_batch_size as usize,
    };
    let eval_batches = encoder.batches(&data.eval.iter().collect::<Vec<_>>(), &trainer)?;
    let evaluate = |trainer: &RewardModelTrainer, metrics: &mut Metrics, step: u64| {
        let stats = trainer.evaluate(&eval_batches)?;
        metrics.write(step, &stats_metrics("eval", &stats))?;
        metrics.flush()?;
        info!(
            step,
            loss = stats.loss,
            accuracy = stats.accuracy,
            margin = stats.margin,
            "held-out pairs"
        );
        anyhow::Ok(stats)
    };
    let before = evaluate(&trainer, &mut metrics, 0)?;

    let mut rng = StdRng::seed_from_u64(config.run.seed);
    let mut order: Vec<usize> = Vec::new();
    let (mut epoch, mut last_eval) = (0u64, before);
    let bar = console.progress(config.run.steps, "reward model");
    for step in 1..=config.run.steps {
        let mut pairs = Vec::with_capacity(p.batch_size as usize);
        while pairs.len() < p.batch_size as usize {
            if order.is_empty() {
                order = (0..data.train.len()).collect();
                order.shuffle(&mut rng);
                epoch += 1;
            }
            pairs.extend(order.pop().map(|i| &data.train[i]));
        }
        let batches = encoder.batches(&pairs, &trainer)?;
        let stats = trainer.step(&batches)?;
        let logged = stats_metrics("train", &stats)
            .scalar("train/grad_norm", stats.grad_norm)
            .scalar("train/lr", stats.lr)
            .scalar("train/epoch", epoch as f64);
        if step % config.logging.every == 0 || step == config.run.steps {
            metrics.write(step, &logged)?;
        }
        bar.inc(1);
        bar.set_message(format!("loss {:.3} acc {:.2}", stats.loss, stats.accuracy));
        if (p.eval_every > 0 && step % p.eval_every == 0) || step == config.run.steps {
            last_eval = evaluate(&trainer, &mut metrics, step)?;
        }
    }
    bar.finish_and_clear();

    let out = dir.path().join("reward_model");
    trainer
        .model()
        .save_dir(&out, Kind::Float)
        .with_context(|| format!("cannot save the reward model to {}", out.display()))?;
    metrics.flush()?;
    info!(saved = %out.display(), seconds = started.elapsed().as_secs_f64(), "reward model trained");
    let summary = json!({
        "run_dir": dir.path(),
        "status": "done",
        "trainer": "reward_model",
        "steps_done": config.run.steps,
        "reward_model": out,
        "eval_before": {"loss": before.loss, "accuracy": before.accuracy},
        "eval": {"loss": last_eval.loss, "accuracy": last_eval.accuracy, "margin": last_eval.margin, "pairs": last_eval.pairs},
    });
    if console.json {
        crate::console::out(summary)
    } else if console.quiet {
        Ok(())
    } else {
        crate::console::out(serde_json::to_string_pretty(&summary)?)
    }
}

/// The reward model to start from: an HF reward-model directory as it is; an HF backbone
/// directory, or a policy (GGUF, built-in name), with a fresh head. f32 on `device`.
fn initial_model(name: &str, device: Device) -> anyhow::Result<ScalarModel> {
    let path = rl_model::source::resolve(name)?;
    if path.is_dir() {
        return Ok(if ScalarModel::is_reward_model_dir(&path)? {
            ScalarModel::load_dir(&path, device, Kind::Float)?
        } else {
            ScalarModel::from_backbone_dir(&path, device)?
        });
    }
    let policy = rl_model::load(name, device, Kind::Float)?;
    Ok(ScalarModel::from_policy(&policy, device)?)
}

/// Turns pairs into the model's micro-batches.
struct Encoder<'a> {
    tokenizer: &'a Tokenizer,
    max_length: usize,
    micro: usize,
}

impl Encoder<'_> {
    /// `pairs` as micro-batches of at most `micro` pairs, chosen rows then rejected rows.
    fn batches(
        &self,
        pairs: &[&Pair],
        trainer: &RewardModelTrainer,
    ) -> anyhow::Result<Vec<PairBatch>> {
        let config = &trainer.model().config;
        pairs
            .chunks(self.micro.max(1))
            .map(|chunk| {
                let texts: Vec<RewardText<'_>> = chunk
                    .iter()
                    .map(|p| reward_text(p, &p.chosen))
                    .chain(chunk.iter().map(|p| reward_text(p, &p.rejected)))
                    .collect();
                let (input_ids, attention_mask) =
                    encode_reward_batch(self.tokenizer, config, &texts, self.max_length)?;
                Ok(PairBatch {
                    input_ids,
                    attention_mask,
                })
            })
            .collect()
    }
}

/// The row of `pair`'s prompt with `response`.
fn reward_text<'a>(pair: &'a Pair, response: &'a str) -> RewardText<'a> {
    RewardText {
        prompt: &pair.prompt,
        response,
    }
}

/// `<split>/loss`, `accuracy`, `margin`, `chosen`, `rejected` of `stats`.
fn stats_metrics(split: &str, stats: &PairStats) -> StepMetrics {
    StepMetrics::default()
        .scalar(format!("{split}/loss"), stats.loss)
        .scalar(format!("{split}/accuracy"), stats.accuracy)
        .scalar(format!("{split}/margin"), stats.margin)
        .scalar(format!("{split}/reward_chosen"), stats.chosen)
        .scalar(format!("{split}/reward_rejected"), stats.rejected)
}
