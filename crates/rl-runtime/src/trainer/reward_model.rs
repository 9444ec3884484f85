//! The reward-model trainer (`run.trainer = "reward_model"`): a scalar-head model trained on the
//! `[preference]` pairs with the Bradley–Terry loss, evaluated on the held-out pairs before the
//! first step, every `preference.eval_every` steps and after the last, and saved as an HF
//! sequence-classification folder, `<run dir>/reward_model`, which `reward.kind = "model"` and
//! transformers both load.
//!
//! The model starts from `model.path`: an HF reward-model folder (training continues), an HF
//! backbone folder (an encoder such as all-MiniLM-L6-v2, or a causal LM) or a GGUF/built-in
//! policy, both with a fresh head. It trains in f32 on `placement.learner_device`.

use std::path::{Path, PathBuf};

use super::preferences::{Pair, Preferences};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rl_core::Config;
use rl_learner::{PairBatch, PairStats, RewardModelSettings, RewardModelTrainer};
use rl_model::{
    heads::ScalarModel,
    reward_input::{RewardText, encode_reward_batch},
    tokenizer::Tokenizer,
};
use tch::{Device, Kind};

use super::{TrainError, roles::optimizers};
use crate::{Metrics, StepMetrics};

/// How a reward-model run ended.
#[derive(Debug, Clone)]
pub struct RewardModelOutcome {
    /// Where the trained model was saved.
    pub reward_model: PathBuf,
    /// Held-out statistics before the first step.
    pub before: PairStats,
    /// Held-out statistics after the last step.
    pub after: PairStats,
}

/// A reward-model run with its data and model loaded (before anything is written).
pub struct RewardModelRun {
    config: Config,
    data: Preferences,
    tokenizer: Tokenizer,
    trainer: RewardModelTrainer,
}

impl std::fmt::Debug for RewardModelRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardModelRun")
            .field("train_pairs", &self.data.train.len())
            .field("eval_pairs", &self.data.eval.len())
            .finish_non_exhaustive()
    }
}

impl RewardModelRun {
    /// Loads the pairs, the tokenizer and the starting model of `config` on `device`.
    pub fn prepare(config: &Config, device: Device) -> Result<Self, TrainError> {
        let setup =
            |what: &str, e: &dyn std::fmt::Display| TrainError::Setup(format!("{what}: {e}"));
        let data =
            Preferences::load(&config.preference).map_err(|e| TrainError::Setup(e.to_string()))?;
        let path = &config.model.path;
        let tokenizer = rl_model::load_tokenizer(path).map_err(|e| setup("model.path", &e))?;
        let model = initial_model(path, device).map_err(|e| setup("model.path", &e))?;
        let l = &config.learner;
        let settings = RewardModelSettings {
            lr: l.lr,
            schedule: l.lr_schedule,
            warmup_steps: l.warmup_steps,
            total_steps: config.run.steps,
            grad_clip: l.grad_clip,
            adam: optimizers(config).adamw,
        };
        Ok(Self {
            config: config.clone(),
            data,
            tokenizer,
            trainer: RewardModelTrainer::new(model, settings),
        })
    }

    /// Pairs held out for evaluation and used for training.
    pub fn pairs(&self) -> (usize, usize) {
        (self.data.eval.len(), self.data.train.len())
    }

    /// The model being trained.
    pub fn model(&self) -> &ScalarModel {
        self.trainer.model()
    }

    /// Trains `run.steps` steps into `run_dir`, logging to `metrics`; `on_step` sees each step's
    /// training statistics.
    pub fn train(
        mut self,
        run_dir: &Path,
        metrics: &mut Metrics,
        on_step: &mut dyn FnMut(u64, &PairStats),
    ) -> Result<RewardModelOutcome, TrainError> {
        let config = &self.config;
        let p = &config.preference;
        let encoder = Encoder {
            tokenizer: &self.tokenizer,
            max_length: p.max_length as usize,
            micro: p.micro_batch_size as usize,
        };
        let update = |e: &dyn std::fmt::Display| TrainError::Update(e.to_string());
        let eval_pairs: Vec<&Pair> = self.data.eval.iter().collect();
        let eval_batches = encoder.batches(&eval_pairs, &self.trainer)?;
        let evaluate = |trainer: &RewardModelTrainer, metrics: &mut Metrics, step: u64| {
            let stats = trainer.evaluate(&eval_batches).map_err(|e| update(&e))?;
            metrics.write(step, &stats_metrics("eval", &stats))?;
            metrics.flush()?;
            tracing::info!(
                step,
                loss = stats.loss,
                accuracy = stats.accuracy,
                margin = stats.margin,
                "held-out pairs"
            );
            Ok::<_, TrainError>(stats)
        };
        let before = evaluate(&self.trainer, metrics, 0)?;
        let mut rng = StdRng::seed_from_u64(config.run.seed);
        let mut order: Vec<usize> = Vec::new();
        let (mut epoch, mut after) = (0u64, before);
        for step in 1..=config.run.steps {
            let mut pairs = Vec::with_capacity(p.batch_size as usize);
            while pairs.len() < p.batch_size as usize {
                if order.is_empty() {
                    order = (0..self.data.train.len()).collect();
                    order.shuffle(&mut rng);
                    epoch += 1;
                }
                pairs.extend(order.pop().map(|i| &self.data.train[i]));
            }
            let batches = encoder.batches(&pairs, &self.trainer)?;
            let stats = self.trainer.step(&batches).map_err(|e| update(&e))?;
            if step % config.logging.every == 0 || step == config.run.steps {
                let logged = stats_metrics("train", &stats)
                    .scalar("train/grad_norm", stats.grad_norm)
                    .scalar("train/lr", stats.lr)
                    .scalar("train/epoch", epoch as f64);
                metrics.write(step, &logged)?;
            }
            on_step(step, &stats);
            if (p.eval_every > 0 && step % p.eval_every == 0) || step == config.run.steps {
                after = evaluate(&self.trainer, metrics, step)?;
            }
        }
        let out = run_dir.join("reward_model");
        self.trainer
            .model()
            .save_dir(&out, Kind::Float)
            .map_err(|e| {
                TrainError::Update(format!(
                    "cannot save the reward model to {}: {e}",
                    out.display()
                ))
            })?;
        metrics.flush()?;
        Ok(RewardModelOutcome {
            reward_model: out,
            before,
            after,
        })
    }
}

/// The reward model to start from: an HF reward-model folder as it is; an HF backbone folder,
/// or a policy (GGUF, built-in name), with a fresh head. f32 on `device`.
fn initial_model(name: &str, device: Device) -> Result<ScalarModel, rl_model::ModelError> {
    let path = rl_model::source::resolve(name)?;
    if path.is_dir() {
        return if ScalarModel::is_reward_model_dir(&path)? {
            ScalarModel::load_dir(&path, device, Kind::Float)
        } else {
            ScalarModel::from_backbone_dir(&path, device)
        };
    }
    let policy = rl_model::load(name, device, Kind::Float)?;
    ScalarModel::from_policy(&policy, device)
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
    ) -> Result<Vec<PairBatch>, TrainError> {
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
                    encode_reward_batch(self.tokenizer, config, &texts, self.max_length)
                        .map_err(|e| TrainError::Update(e.to_string()))?;
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

/// `<split>/loss`, `accuracy`, `margin`, `reward_chosen`, `reward_rejected` of `stats`.
fn stats_metrics(split: &str, stats: &PairStats) -> StepMetrics {
    StepMetrics::default()
        .scalar(format!("{split}/loss"), stats.loss)
        .scalar(format!("{split}/accuracy"), stats.accuracy)
        .scalar(format!("{split}/margin"), stats.margin)
        .scalar(format!("{split}/reward_chosen"), stats.chosen)
        .scalar(format!("{split}/reward_rejected"), stats.rejected)
}
