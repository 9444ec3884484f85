//! The reward-model scorer (`reward.kind = "model"`): a scalar-head model
//! ([`rl_model::heads::ScalarModel`], decoder or BERT) on its own actor thread — libtorch tensors
//! are not `Sync` and grad mode is per thread — fed batches through a channel. Each
//! [`RewardFn::score`] call is cut into chunks of `batch_size` rows, encoded
//! ([`rl_model::reward_input`]) and scored without gradients. A non-finite score is an error
//! naming the task, and a libtorch failure fails only that call: the actor keeps serving.

use std::{
    panic::AssertUnwindSafe,
    path::Path,
    sync::mpsc::{self, Receiver, Sender},
    thread,
};

use rl_core::{Message, RewardError, RewardFn, Score, Scoring};
use rl_model::{
    heads::ScalarModel,
    reward_input::{RewardText, encode_reward_batch},
    tokenizer::Tokenizer,
};
use tch::{Device, Kind};

/// Where and how the reward model runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelScorerSettings {
    /// Device of the model.
    pub device: Device,
    /// Precision of its weights.
    pub kind: Kind,
    /// Tokens per (prompt, response) row, at most; longer rows lose the start of the prompt.
    pub max_length: usize,
    /// Rows per forward pass.
    pub batch_size: usize,
}

/// One call's work: the (prompt, response) rows and where the rewards go.
struct Job {
    rows: Vec<(Vec<Message>, String)>,
    ids: Vec<String>,
    reply: Sender<Result<Vec<f64>, String>>,
}

/// A reward model serving [`RewardFn::score`] from its own thread.
pub struct ModelScorer {
    name: String,
    jobs: Sender<Job>,
}

fn error(message: impl Into<String>) -> RewardError {
    RewardError {
        reward: "model".to_owned(),
        message: message.into(),
    }
}

impl ModelScorer {
    /// Loads the reward model in the HF sequence-classification directory `dir` (one label, as
    /// `rl train` with `run.trainer = "reward_model"` or transformers writes it) and its
    /// tokenizer, on the actor's thread; returns once it is ready.
    pub fn load(dir: &Path, settings: ModelScorerSettings) -> Result<Self, RewardError> {
        let path = dir.to_owned();
        Self::spawn(
            format!("model:{}", dir.display()),
            settings,
            move || -> Result<_, String> {
                let tokenizer = rl_model::load_tokenizer(&path.to_string_lossy())
                    .map_err(|e| format!("reward model {}: {e}", path.display()))?;
                let model = ScalarModel::load_dir(&path, settings.device, settings.kind)
                    .map_err(|e| format!("reward model {}: {e}", path.display()))?;
                Ok((model, tokenizer))
            },
        )
    }

    /// Serves an already-built `model` with `tokenizer` (moved to the actor's thread).
    pub fn from_model(
        model: ScalarModel,
        tokenizer: Tokenizer,
        settings: ModelScorerSettings,
    ) -> Result<Self, RewardError> {
        let name = format!("model:{}", model.source.display());
        Self::spawn(name, settings, move || Ok((model, tokenizer)))
    }

    fn spawn(
        name: String,
        settings: ModelScorerSettings,
        build: impl FnOnce() -> Result<(ScalarModel, Tokenizer), String> + Send + 'static,
    ) -> Result<Self, RewardError> {
        if settings.batch_size == 0 || settings.max_length == 0 {
            return Err(error("batch_size and max_length must be at least 1"));
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        thread::Builder::new()
            .name("reward-model".into())
            .spawn(move || {
                let (model, tokenizer) = match build() {
                    Ok(built) => {
                        let _ = ready_tx.send(Ok(()));
                        built
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                serve(&model, &tokenizer, settings, &inbox);
            })
            .map_err(|e| error(format!("cannot start the reward-model thread: {e}")))?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Self { name, jobs }),
            Ok(Err(e)) => Err(error(e)),
            Err(_) => Err(error("the reward-model thread stopped while loading")),
        }
    }
}

/// The actor's loop: one job at a time until every handle is dropped.
fn serve(
    model: &ScalarModel,
    tokenizer: &Tokenizer,
    settings: ModelScorerSettings,
    inbox: &Receiver<Job>,
) {
    let _no_grad = tch::no_grad_guard();
    for job in inbox {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            score_rows(model, tokenizer, settings, &job)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown error");
            Err(format!("libtorch failed while scoring: {what}"))
        });
        let _ = job.reply.send(result);
    }
}

/// Rewards of every row of `job`, in order, chunk by chunk.
fn score_rows(
    model: &ScalarModel,
    tokenizer: &Tokenizer,
    settings: ModelScorerSettings,
    job: &Job,
) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(job.rows.len());
    for chunk in job.rows.chunks(settings.batch_size) {
        let texts: Vec<RewardText<'_>> = chunk
            .iter()
            .map(|(prompt, response)| RewardText { prompt, response })
            .collect();
        let (ids, mask) =
            encode_reward_batch(tokenizer, &model.config, &texts, settings.max_length)
                .map_err(|e| e.to_string())?;
        let rewards = model.rewards(
            &ids.to_device(settings.device),
            &mask.to_device(settings.device),
        );
        let rewards: Vec<f32> = Vec::try_from(rewards.to_kind(Kind::Float).to_device(Device::Cpu))
            .map_err(|e: tch::TchError| e.to_string())?;
        for r in rewards {
            if !r.is_finite() {
                let task = &job.ids[out.len()];
                return Err(format!(
                    "the reward model scored task {task} {r}; a reward must be finite (check the model's weights, or its precision: try model.dtype = \"f32\")"
                ));
            }
            out.push(f64::from(r));
        }
    }
    Ok(out)
}

impl RewardFn for ModelScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = mpsc::channel();
        let job = Job {
            rows: batch
                .iter()
                .map(|s| (s.task.messages.clone(), s.response.to_owned()))
                .collect(),
            ids: batch.iter().map(|s| s.task.id.clone()).collect(),
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| error("the reward-model thread has stopped"))?;
        let rewards = result
            .recv()
            .map_err(|_| error("the reward-model thread stopped while scoring"))?
            .map_err(error)?;
        Ok(rewards
            .into_iter()
            .map(|r| {
                let mut score = Score::new(r);
                score.parts.insert("model".to_owned(), r);
                score
            })
            .collect())
    }
}
