//! The trainer: the controller that drives one run, step by step, as the diagram in the
//! design notes reads — draw tasks, generate, score, prepare (reference log-probs, values,
//! advantages), update, sync the weights, record. Each phase is one call into the crate that
//! owns it, timed under `timing_s/<phase>`. Evaluation and checkpoint cadence wrap the step;
//! they never thread through it. Every random stream is derived from `(run.seed, step)`
//! ([`seeds`]), so a run resumed from a checkpoint continues exactly as it would have gone.

pub mod checkpoint;
pub mod evaluate;
pub mod follower;
pub mod preferences;
mod record;
pub mod reward_model;
pub mod roles;
pub mod rollout;
pub mod score;
pub mod seeds;
pub mod supervisor;
pub mod transcript;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use rl_algorithms::Algorithm;
use rl_core::{
    Config, Env, RewardFn, Split, Task,
    config::{RolloutConfig, WeightSync},
};
use rl_learner::{
    Learner,
    experience::{self, Rollout},
};
use rl_model::{CausalLm, tokenizer::Tokenizer};
use rl_rollout::{RolloutWorker, SamplingParams};
use tch::Tensor;

pub use checkpoint::{CheckpointError, Checkpoints};
pub use evaluate::{EvalPlan, Evaluation, evaluate};
pub use record::{Progress, StepReport};
pub use roles::{Devices, Roles};

use crate::{Metrics, StepMetrics};
use rl_learner::{group::ProcessGroup, share};
use rollout::{Lost, RolloutPlan, Sampled};
use seeds::{Stream, step_seed};
use supervisor::{Restarting, Supervisor};

use crate::weight_group::Broadcaster;

/// Why a run stopped with an error. When a checkpoint could be saved first, the message says
/// where; the run can then continue with `--resume`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A role could not be built.
    #[error("setup: {0}")]
    Setup(String),
    /// Generation failed (a worker is gone, an environment refused a step).
    #[error("rollout: {0}")]
    Rollout(String),
    /// The scorer failed for the whole batch.
    #[error("reward: {0}")]
    Reward(String),
    /// The learner or the algorithm refused the batch.
    #[error("update: {0}")]
    Update(String),
    /// Weights could not be sent to a rollout worker.
    #[error("weight sync: {0}")]
    Sync(String),
    /// The learner group failed (a rank died, timed out, or could not join).
    #[error("learner group: {0}")]
    Group(String),
    /// Evaluation failed.
    #[error("eval: {0}")]
    Eval(String),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Metrics could not be written.
    #[error("cannot write metrics: {0}")]
    Metrics(#[from] std::io::Error),
    /// An error after which a checkpoint was saved.
    #[error("{error}; a checkpoint of step {step} was saved in {}: fix the cause and continue with --resume", path.display())]
    Saved {
        /// What went wrong.
        error: Box<TrainError>,
        /// The step checkpointed.
        step: u64,
        /// Where.
        path: PathBuf,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The last step done.
    pub step: u64,
    /// Whether it stopped early on request (SIGINT).
    pub interrupted: bool,
    /// Greedy accuracy before the first update of this run, if evaluated.
    pub first_accuracy: Option<f64>,
    /// Greedy accuracy at the end.
    pub last_accuracy: Option<f64>,
    /// Seconds spent in each phase over the whole run (`gen`, `reward`, ...).
    pub phase_seconds: Vec<(String, f64)>,
    /// Seconds of training, evaluation excluded.
    pub train_seconds: f64,
    /// The exported final policy.
    pub policy: Option<PathBuf>,
}

/// A run in progress.
pub struct Trainer {
    config: Config,
    run_dir: PathBuf,
    roles: Roles,
    runtime: tokio::runtime::Runtime,
    metrics: Metrics,
    checkpoints: Checkpoints,
    eval_tasks: Vec<Task>,
    /// The last step done (0 before the first).
    step: u64,
    totals: record::Totals,
    /// With asynchronous rollouts: the next step's batch, sampled during the last update.
    ahead: Option<Result<Drawn, TrainError>>,
    /// Rollout workers found dead or hung.
    lost: Lost,
    /// Restarts lost role processes, when whoever started them can.
    supervisor: Option<Arc<dyn Supervisor>>,
    /// The weight group the syncs broadcast over (`placement.weight_sync = "broadcast"`),
    /// until a worker is lost.
    broadcaster: Option<Broadcaster>,
    /// With weight sync by broadcast: the devices to form the weight group for again, once the
    /// lost workers have been replaced.
    regroup: Option<Devices>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("run_dir", &self.run_dir)
            .field("step", &self.step)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The runtime the loop drives its workers' calls on (one thread: the loop waits on each).
fn async_runtime() -> Result<tokio::runtime::Runtime, TrainError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TrainError::Setup(format!("cannot start the async runtime: {e}")))
}

/// File holding the trainer's own state inside a checkpoint.
const STATE_FILE: &str = "trainer.json";
/// File holding the optimiser state inside a checkpoint.
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// File holding the critic's weights inside a checkpoint.
const CRITIC_FILE: &str = "critic.safetensors";
/// Folder holding the policy (an HF model folder) inside a checkpoint.
const POLICY_DIR: &str = "policy";

impl Trainer {
    /// Builds every role of `config` for the run in `run_dir` (already opened), writing its
    /// metrics to `metrics`. With `resume`, continues from the latest checkpoint there.
    pub fn new(
        config: Config,
        run_dir: &Path,
        devices: Devices,
        metrics: Metrics,
        resume: bool,
    ) -> Result<Self, TrainError> {
        let runtime = async_runtime()?;
        let roles = roles::build(&config, devices, &runtime)?;
        let broadcast = config.placement.weight_sync == WeightSync::Broadcast;
        let mut trainer = Self::with_roles_on(runtime, config, run_dir, roles, metrics, resume)?;
        if broadcast {
            trainer.form_weight_group(devices)?;
            trainer.regroup = Some(devices);
        }
        Ok(trainer)
    }

    /// Forms the weight group the syncs broadcast over: this process (rank 0) and every
    /// rollout worker, meeting on the `placement.rendezvous` host (default 127.0.0.1).
    fn form_weight_group(&mut self, devices: Devices) -> Result<(), TrainError> {
        if devices.learner.is_cuda() != devices.rollout.is_cuda() {
            return Err(TrainError::Setup(
                "placement.weight_sync = \"broadcast\" sends the learner's weights as they are: put the learner and the rollout workers on the same kind of device, or use \"stream\"".into(),
            ));
        }
        let host = self
            .config
            .placement
            .rendezvous
            .as_deref()
            .and_then(|r| r.rsplit_once(':'))
            .map_or("127.0.0.1", |(host, _)| host)
            .to_owned();
        let timeout = worker_deadline(&self.config);
        let group = Broadcaster::form(
            &self.runtime,
            &self.roles.workers,
            &host,
            devices.rollout,
            timeout,
        )
        .map_err(|e| TrainError::Setup(format!("the weight group: {e}")))?;
        tracing::info!(
            workers = self.roles.workers.len(),
            "weights go to the rollout workers by broadcast over a weight group on {host}"
        );
        self.broadcaster = Some(group);
        Ok(())
    }

    /// A run over roles built by the caller (a user's own environment, reward or model);
    /// `config` still supplies the loop's settings (`[run]`, `[rollout]`, `[eval]`,
    /// `[logging]`, `[checkpoint]`). With `resume`, continues from the latest checkpoint in
    /// `run_dir`.
    pub fn with_roles(
        config: Config,
        run_dir: &Path,
        roles: Roles,
        metrics: Metrics,
        resume: bool,
    ) -> Result<Self, TrainError> {
        Self::with_roles_on(async_runtime()?, config, run_dir, roles, metrics, resume)
    }

    /// [`Trainer::with_roles`] on `runtime`, the one the roles' connections were made on.
    fn with_roles_on(
        runtime: tokio::runtime::Runtime,
        config: Config,
        run_dir: &Path,
        mut roles: Roles,
        metrics: Metrics,
        resume: bool,
    ) -> Result<Self, TrainError> {
        let checkpoints = Checkpoints::new(run_dir);
        let mut step = 0;
        if resume {
            match checkpoints.latest()? {
                Some((saved, dir)) => {
                    step = restore(&mut roles, &dir)?;
                    if step != saved {
                        return Err(invalid(&dir, format!("its state says step {step}")).into());
                    }
                    tracing::info!("resuming after step {step} from {}", dir.display());
                }
                None => tracing::warn!(
                    "{} has no checkpoint: the run starts again from step 0",
                    run_dir.display()
                ),
            }
        }
        let eval_tasks = roles
            .env
            .tasks(Split::Eval, config.eval.tasks as usize, config.run.seed)
            .map_err(|e| TrainError::Setup(format!("eval tasks: {e}")))?;
        let mut trainer = Self {
            config,
            run_dir: run_dir.to_owned(),
            roles,
            runtime,
            metrics,
            checkpoints,
            eval_tasks,
            step,
            totals: record::Totals::default(),
            ahead: None,
            lost: Lost::default(),
            supervisor: None,
            broadcaster: None,
            regroup: None,
        };
        if step > 0 {
            trainer.sync(step)?;
        }
        Ok(trainer)
    }

    /// The last step done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Runs to `run.steps`, reporting to `progress`. Checks `stop` between steps: when set, saves
    /// a checkpoint and returns. An error after the first step saves a checkpoint first when it
    /// can.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn Progress,
    ) -> Result<Outcome, TrainError> {
        let steps = self.config.run.steps;
        progress.start(self.step, steps);
        let mut first_accuracy = None;
        let mut last_accuracy = None;
        if self.step == 0 {
            let eval = self.evaluate()?;
            first_accuracy = Some(eval.accuracy);
            last_accuracy = first_accuracy;
            let mut m = StepMetrics::default();
            record::eval_metrics(&mut m, &eval, self.totals.eval_last);
            self.metrics.write(0, &m)?;
            self.metrics.flush()?;
            progress.eval(0, &eval);
        }
        let mut interrupted = false;
        while self.step < steps {
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            let step = self.step + 1;
            let report = match self.train_step(step) {
                Ok(report) => report,
                Err(e) => return Err(self.save_after(e)),
            };
            self.step = step;
            let mut metrics = report.metrics.clone();
            let every = self.config.eval.every;
            if (every > 0 && step.is_multiple_of(every)) || step == steps {
                let eval = self.evaluate().map_err(|e| self.save_after(e))?;
                record::eval_metrics(&mut metrics, &eval, self.totals.eval_last);
                last_accuracy = Some(eval.accuracy);
                progress.eval(step, &eval);
            }
            let log_every = self.config.logging.every;
            if step.is_multiple_of(log_every)
                || step == steps
                || metrics.scalars.contains_key("eval/accuracy")
            {
                self.metrics.write(step, &metrics)?;
                self.metrics.flush()?;
            }
            progress.step(&report);
            let every = self.config.checkpoint.every;
            if every > 0 && step.is_multiple_of(every) && step < steps {
                self.save()?;
            }
        }
        if self.step > 0 || interrupted {
            self.save()?;
        }
        let policy = if !interrupted && self.step == steps {
            Some(self.export_policy()?)
        } else {
            None
        };
        if let Some(group) = self.roles.learner.group() {
            share::send(group, None).map_err(|e| TrainError::Group(e.to_string()))?;
        }
        Ok(Outcome {
            step: self.step,
            interrupted,
            first_accuracy,
            last_accuracy,
            phase_seconds: self.totals.phases(),
            train_seconds: self.totals.train_seconds,
            policy,
        })
    }

    /// Has `supervisor` restart lost rollout workers (at the next weight sync) and a reward
    /// server that is gone (`reward.kind = "remote"`: the batch is then scored again).
    pub fn supervise(&mut self, supervisor: Arc<dyn Supervisor>) -> Result<(), TrainError> {
        if self.config.reward.kind == rl_core::config::RewardKind::Remote {
            let scorer = Restarting::new(&self.config.reward, supervisor.clone())
                .map_err(|e| TrainError::Setup(e.to_string()))?;
            self.roles.reward = Box::new(scorer);
        }
        self.supervisor = Some(supervisor);
        Ok(())
    }

    /// Makes the learner rank 0 of `group`: the other ranks (running [`follower::follow`]) take
    /// its state now, a resumed run's included, and each update's batch from then on.
    pub fn lead(&mut self, group: ProcessGroup) -> Result<(), TrainError> {
        self.roles.learner.join(group);
        self.roles
            .learner
            .align()
            .map_err(|e| TrainError::Group(e.to_string()))
    }

    /// One training step: sample → score → prepare → update → sync. With asynchronous rollouts
    /// the batch was sampled during the previous step, and the next one is sampled while this
    /// one trains: the workers keep their weights until both are done, so every batch is exactly
    /// one policy version behind the learner (the first excepted).
    fn train_step(&mut self, step: u64) -> Result<StepReport, TrainError> {
        let started = Instant::now();
        let mut timer = record::Timer::default();
        let ahead = self.config.rollout.asynchronous && step < self.config.run.steps;
        let (learned, drawn) = {
            let Self {
                config,
                roles,
                runtime,
                ahead: pending,
                lost,
                ..
            } = self;
            let Roles {
                env,
                workers,
                tokenizer,
                learner,
                reference,
                algorithm,
                reward,
                ..
            } = roles;
            let env = env.as_mut();
            let (config, runtime, tokenizer) = (&*config, &*runtime, &*tokenizer);
            let workers = (workers.as_slice(), &*lost);
            let drawn = match pending.take() {
                Some(drawn) => drawn?,
                None => timer.time("gen", || {
                    draw(runtime, env, workers, tokenizer, config, step)
                })?,
            };
            let roles = Learning {
                learner,
                reference: reference.as_deref(),
                algorithm: algorithm.as_mut(),
                reward: reward.as_ref(),
            };
            let learned = std::thread::scope(|s| {
                let next = ahead.then(|| {
                    s.spawn(move || {
                        let start = Instant::now();
                        let next = draw(runtime, env, workers, tokenizer, config, step + 1);
                        (next, start.elapsed().as_secs_f64())
                    })
                });
                let learned = learn(roles, config, step, &drawn, &mut timer);
                if let Some(next) = next {
                    let waited = Instant::now();
                    let (next, seconds) = next.join().unwrap_or_else(|_| {
                        let e = TrainError::Rollout("the generation thread panicked".into());
                        (Err(e), 0.0)
                    });
                    timer.record("gen_wait", waited.elapsed().as_secs_f64());
                    timer.record("gen", seconds);
                    // A failed draw fails the next step, after this one is complete.
                    *pending = Some(next);
                }
                learned
            });
            (learned, drawn)
        };
        let (mut report, synced) = learned?;
        if synced {
            let bytes = timer.time("sync", || self.sync(step))?;
            let scalars = &mut report.metrics.scalars;
            scalars.insert("sync/bytes".into(), bytes as f64);
            scalars.insert("sync/seconds".into(), timer.get("sync"));
        }
        if self.supervisor.is_some() {
            let restarts = self.totals.restarts as f64;
            report
                .metrics
                .scalars
                .insert("rollout/restarts".into(), restarts);
        }
        timer.record("step", started.elapsed().as_secs_f64());
        report.finish(&timer, &self.config, &drawn.tasks, &drawn.sampled);
        self.totals.add(&timer);
        Ok(report)
    }

    /// Sends the learner's weights to every rollout worker as policy version `version`; the
    /// bytes sent, over all workers. A lost worker (dead, or hung past the deadline) is
    /// restarted first when a supervisor can, and passed over otherwise, as generation passes it
    /// over; the sync fails when none is left.
    fn sync(&mut self, version: u64) -> Result<u64, TrainError> {
        if let Some(bytes) = self.broadcast(version) {
            return Ok(bytes);
        }
        let bytes = self.stream(version)?;
        // Every worker is back (restarted): the next syncs broadcast again, over a new group.
        if let Some(devices) = self.regroup
            && self.broadcaster.is_none()
            && rollout::lost_ones(&self.lost).is_empty()
        {
            match self.form_weight_group(devices) {
                Ok(()) => tracing::info!("the weight group was formed again"),
                Err(e) => {
                    tracing::warn!("{e}: weights keep going by stream");
                    self.regroup = None;
                }
            }
        }
        Ok(bytes)
    }

    /// Sends the weights to each rollout worker as a chunked gRPC stream (or an in-process
    /// copy), restarting lost ones first when a supervisor can; the bytes sent.
    fn stream(&mut self, version: u64) -> Result<u64, TrainError> {
        let deadline = worker_deadline(&self.config);
        let mut bytes = 0;
        let mut reached = 0;
        let mut last_error = String::new();
        for i in 0..self.roles.workers.len() {
            if rollout::lost_ones(&self.lost).contains(&i) && !self.replace(i)? {
                continue;
            }
            let weights = self.roles.learner.weights();
            let size = weights
                .iter()
                .map(|(_, t)| t.numel() as u64 * t.kind().elt_size_in_bytes() as u64)
                .sum::<u64>();
            let worker = &self.roles.workers[i];
            let sent = self.runtime.block_on(async {
                match tokio::time::timeout(deadline, worker.update_weights(version, weights)).await
                {
                    Ok(Ok(())) => Sent::Done,
                    Err(_) => Sent::Lost("did not take the weights in time (hung)".into()),
                    Ok(Err(e)) => match tokio::time::timeout(deadline, worker.info()).await {
                        Ok(Ok(_)) => Sent::Refused(e.to_string()),
                        _ => Sent::Lost(format!("is gone ({e})")),
                    },
                }
            });
            match sent {
                Sent::Done => {
                    bytes += size;
                    reached += 1;
                }
                Sent::Lost(why) => {
                    rollout::lose(&self.lost, i, &why);
                    last_error = why;
                }
                Sent::Refused(why) => {
                    return Err(TrainError::Sync(format!("rollout worker {i}: {why}")));
                }
            }
        }
        if reached == 0 && !self.roles.workers.is_empty() {
            return Err(TrainError::Sync(format!(
                "every rollout worker is gone (the last: {last_error})"
            )));
        }
        Ok(bytes)
    }

    /// Sends the weights over the weight group, if there is one and every worker is in it; the
    /// bytes sent to all workers. A failed broadcast, or a lost worker, ends the group: the
    /// syncs go by stream until the lost workers are replaced and a new group forms.
    fn broadcast(&mut self, version: u64) -> Option<u64> {
        let group = self.broadcaster.as_ref()?;
        if !rollout::lost_ones(&self.lost).is_empty() {
            tracing::warn!("a rollout worker was lost: weights go by stream until it is replaced");
            self.broadcaster = None;
            return None;
        }
        let weights = self.roles.learner.weights();
        let size: u64 = weights
            .iter()
            .map(|(_, t)| t.numel() as u64 * t.kind().elt_size_in_bytes() as u64)
            .sum();
        match group.send(&self.runtime, &self.roles.workers, version, &weights) {
            Ok(()) => Some(size * self.roles.workers.len() as u64),
            Err(e) => {
                tracing::warn!("the weight broadcast failed ({e}): weights go by stream");
                self.broadcaster = None;
                None
            }
        }
    }

    /// Has the supervisor restart lost rollout worker `i` and connects to the new one; false
    /// when there is no supervisor.
    fn replace(&mut self, i: usize) -> Result<bool, TrainError> {
        let Some(supervisor) = &self.supervisor else {
            return Ok(false);
        };
        let url = supervisor
            .restart_worker(i)
            .map_err(|e| TrainError::Sync(format!("restarting rollout worker {i} failed: {e}")))?;
        let mut fresh = self
            .runtime
            .block_on(roles::connect_workers(std::slice::from_ref(&url)))
            .map_err(|e| TrainError::Sync(format!("the restarted rollout worker {i}: {e}")))?;
        self.roles.workers[i] = fresh.remove(0);
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i);
        self.totals.restarts += 1;
        tracing::info!("rollout worker {i} was restarted at {url}");
        Ok(true)
    }

    /// Greedy accuracy (and pass@k) on the held-out tasks.
    fn evaluate(&mut self) -> Result<Evaluation, TrainError> {
        let started = Instant::now();
        let r = &self.config.rollout;
        let e = &self.config.eval;
        let plan = EvalPlan {
            greedy: SamplingParams::greedy(r.max_new_tokens),
            sampled: SamplingParams {
                temperature: roles::sampling_temperature(r.temperature),
                ..sampling_params(r)
            },
            k: e.k,
            max_prompt_tokens: r.max_prompt_tokens as usize,
            seed: step_seed(self.config.run.seed, self.step, Stream::Eval),
            deadline: worker_deadline(&self.config),
        };
        let roles = &mut self.roles;
        let eval = evaluate(
            &self.runtime,
            (&roles.workers, &self.lost),
            &roles.tokenizer,
            roles.env.as_mut(),
            roles.verifier.as_ref(),
            &self.eval_tasks,
            &plan,
        )?;
        self.totals.eval_last = started.elapsed().as_secs_f64();
        self.totals.eval_seconds += self.totals.eval_last;
        Ok(eval)
    }

    /// Saves a checkpoint of the current step and prunes old ones.
    fn save(&mut self) -> Result<PathBuf, TrainError> {
        let step = self.step;
        let save_optimizer = self.config.checkpoint.save_optimizer;
        let roles = &self.roles;
        let path = self.checkpoints.save(step, |dir| {
            let io = |p: &Path| CheckpointError::io("write", p);
            let (json, source) = &roles.policy_meta;
            rl_model::export::write_hf_dir(
                roles.learner.var_store(),
                json,
                source,
                &dir.join(POLICY_DIR),
                roles.kind,
            )
            .map_err(|e| invalid(dir, e))?;
            if let Some(critic) = roles.learner.critic() {
                let weights = sorted(critic.vs.variables());
                Tensor::write_safetensors(&weights, dir.join(CRITIC_FILE))
                    .map_err(|e| invalid(dir, e))?;
            }
            if save_optimizer {
                let file = dir.join(OPTIMIZER_FILE);
                Tensor::write_safetensors(&roles.learner.state(), &file)
                    .map_err(|e| invalid(dir, e))?;
            }
            let state = serde_json::json!({
                "step": step,
                "algorithm": roles.algorithm.state(),
            });
            let file = dir.join(STATE_FILE);
            std::fs::write(&file, format!("{state:#}\n")).map_err(io(&file))
        })?;
        self.checkpoints
            .prune(self.config.checkpoint.keep_last as usize)?;
        tracing::info!("checkpoint of step {step} saved in {}", path.display());
        Ok(path)
    }

    /// After a failed step: the error, wrapped with the checkpoint saved for it when one could be.
    fn save_after(&mut self, error: TrainError) -> TrainError {
        if self.step == 0 {
            return error;
        }
        match self.save() {
            Ok(path) => TrainError::Saved {
                error: Box::new(error),
                step: self.step,
                path,
            },
            Err(e) => {
                tracing::error!("the checkpoint after the error failed too: {e}");
                error
            }
        }
    }

    /// Writes the final policy as an HF folder, `<run dir>/policy/`.
    fn export_policy(&self) -> Result<PathBuf, TrainError> {
        let out = self.run_dir.join("policy");
        let tmp = self.run_dir.join(".policy.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let (json, source) = &self.roles.policy_meta;
        rl_model::export::write_hf_dir(
            self.roles.learner.var_store(),
            json,
            source,
            &tmp,
            self.roles.kind,
        )
        .map_err(|e| invalid(&tmp, e))?;
        if out.exists() {
            std::fs::remove_dir_all(&out).map_err(CheckpointError::io("replace", &out))?;
        }
        std::fs::rename(&tmp, &out).map_err(CheckpointError::io("write", &out))?;
        Ok(out)
    }
}

/// How a weight sync to one worker went.
enum Sent {
    Done,
    /// The worker is gone or hung.
    Lost(String),
    /// The live worker refused the weights.
    Refused(String),
}

/// How long a rollout worker may take to answer before it counts as hung.
fn worker_deadline(config: &Config) -> std::time::Duration {
    std::time::Duration::from_secs_f64(config.rollout.worker_timeout_s)
}

/// A step's tasks and the episodes sampled for them.
struct Drawn {
    tasks: Vec<Task>,
    sampled: Vec<Sampled>,
}

/// Draws step `step`'s tasks from `env` and samples them with `workers` (those not lost).
fn draw(
    runtime: &tokio::runtime::Runtime,
    env: &mut dyn Env,
    workers: (&[Arc<dyn RolloutWorker>], &Lost),
    tokenizer: &Tokenizer,
    config: &Config,
    step: u64,
) -> Result<Drawn, TrainError> {
    let seed = config.run.seed;
    let r = &config.rollout;
    let tasks = env
        .tasks(
            Split::Train,
            r.prompts_per_step as usize,
            step_seed(seed, step, Stream::Tasks),
        )
        .map_err(|e| TrainError::Rollout(e.to_string()))?;
    let plan = RolloutPlan {
        params: sampling_params(r),
        samples: r.samples_per_prompt as usize,
        max_prompt_tokens: r.max_prompt_tokens as usize,
        seed: step_seed(seed, step, Stream::Rollout),
        deadline: worker_deadline(config),
    };
    let sampled = rollout::sample(runtime, workers, tokenizer, env, &tasks, &plan)?;
    Ok(Drawn { tasks, sampled })
}

/// The roles an update uses: none of those generation uses, so both can run at once.
struct Learning<'a> {
    learner: &'a mut Learner,
    reference: Option<&'a dyn CausalLm>,
    algorithm: &'a mut dyn Algorithm,
    reward: &'a dyn RewardFn,
}

/// Scores `drawn`, prepares its batch and updates the learner (which reweighs stale samples
/// when rollouts are asynchronous): the step's report so far, and whether the weights
/// changed hands (a batch was built) and are to be synced.
fn learn(
    roles: Learning<'_>,
    config: &Config,
    step: u64,
    drawn: &Drawn,
    timer: &mut record::Timer,
) -> Result<(StepReport, bool), TrainError> {
    let Drawn { tasks, sampled } = drawn;
    let scores = timer
        .time("reward", || score::score(roles.reward, tasks, sampled))
        .map_err(|e| TrainError::Reward(e.to_string()))?;
    let kept: Vec<(usize, f64)> = scores
        .rewards
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|&r| (i, r)))
        .collect();
    let mut report = record::StepReport::new(step, sampled, &scores, &kept);
    if kept.is_empty() {
        tracing::warn!("step {step}: every sample was dropped; no update this step");
        return Ok((report, false));
    }
    let learner = roles.learner;
    let mut batch = build_batch(sampled, &kept, learner.device())?;
    let temperature = roles::sampling_temperature(config.rollout.temperature);
    if let Some(reference) = roles.reference {
        let micro = config.learner.micro_batch_size as usize;
        batch.ref_logprobs = Some(timer.time("ref", || {
            rl_learner::reference_logprobs(reference, &batch, temperature, micro)
        }));
    }
    batch.values = timer.time("values", || learner.critic_values(&batch));
    let targets = roles
        .algorithm
        .targets(&batch)
        .map_err(|e| TrainError::Update(e.to_string()))?;
    let nothing_kept = targets
        .keep
        .as_ref()
        .is_some_and(|k| k.any().int64_value(&[]) == 0);
    if nothing_kept {
        tracing::info!("step {step}: the algorithm kept no sample (all groups equal); no update");
        report.skipped_update = true;
        return Ok((report, true));
    }
    if let Some(group) = learner.group() {
        timer
            .time("share", || share::send(group, Some((&batch, &targets))))
            .map_err(|e| TrainError::Group(e.to_string()))?;
    }
    let stats = timer
        .time("update", || {
            learner.update(&*roles.algorithm, &batch, &targets)
        })
        .map_err(|e| TrainError::Update(e.to_string()))?;
    report.add_update(&batch, &targets, &stats, config.rollout.max_new_tokens);
    Ok((report, true))
}

/// Restores the policy and critic weights, the optimiser and the algorithm's state from
/// checkpoint `dir`; returns its step.
fn restore(roles: &mut Roles, dir: &Path) -> Result<u64, TrainError> {
    let policy = dir.join(POLICY_DIR).join("model.safetensors");
    copy_into(roles.learner.var_store().variables(), &policy)?;
    if let Some(critic) = roles.learner.critic() {
        copy_into(critic.vs.variables(), &dir.join(CRITIC_FILE))?;
    }
    let file = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&file).map_err(CheckpointError::io("read", &file))?;
    let state: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(dir, e))?;
    let step = state["step"]
        .as_u64()
        .ok_or_else(|| invalid(dir, "trainer.json has no step"))?;
    roles
        .algorithm
        .load_state(&state["algorithm"])
        .map_err(|e| invalid(dir, e))?;
    let optimizer = dir.join(OPTIMIZER_FILE);
    if optimizer.exists() {
        let tensors = Tensor::read_safetensors(&optimizer).map_err(|e| invalid(dir, e))?;
        roles
            .learner
            .load_state(&tensors)
            .map_err(|e| invalid(dir, e))?;
    } else {
        tracing::warn!(
            "{} has no optimiser state (checkpoint.save_optimizer = false): AdamW starts afresh, so the run will not match an uninterrupted one",
            dir.display()
        );
    }
    Ok(step)
}

/// Copies every tensor of the safetensors `file` into the variable of the same name; each
/// variable must be there.
fn copy_into(
    vars: std::collections::HashMap<String, Tensor>,
    file: &Path,
) -> Result<(), CheckpointError> {
    let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(file)
        .map_err(|e| invalid(file, e))?
        .into_iter()
        .collect();
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let t = saved
                .get(&name)
                .ok_or_else(|| invalid(file, format!("it has no weight named {name}")))?;
            var.f_copy_(t)
                .map_err(|e| invalid(file, format!("{name}: {e}")))?;
        }
        Ok(())
    })
}

/// Named tensors in name order (safetensors files then list them deterministically).
fn sorted(vars: std::collections::HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vars.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn invalid(dir: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Invalid {
        path: dir.to_owned(),
        message: e.to_string(),
    }
}

/// The learner's batch of the kept samples `(index, reward)`: prompt and response tokens, the
/// sampler's log-probs as the old log-probs, the loss mask, rewards and groups (one per task).
fn build_batch(
    sampled: &[Sampled],
    kept: &[(usize, f64)],
    device: tch::Device,
) -> Result<rl_algorithms::Experience, TrainError> {
    let rollouts: Vec<Rollout<'_>> = kept
        .iter()
        .map(|&(i, reward)| {
            let t = &sampled[i].tokens;
            Rollout {
                prompt: t.prompt(),
                response: t.response(),
                logprobs: &t.logprobs,
                reward,
                group: sampled[i].episode.task as i64,
                loss_mask: Some(&t.trained),
            }
        })
        .collect();
    experience::build(&rollouts, 0, device).map_err(|e| TrainError::Update(e.to_string()))
}

/// The sampling parameters of training rollouts (and of pass@k samples): `rollout.temperature`,
/// `top_p`, `top_k` and `max_new_tokens`.
pub fn sampling_params(r: &RolloutConfig) -> SamplingParams {
    SamplingParams {
        temperature: r.temperature,
        top_p: r.top_p,
        top_k: r.top_k,
        max_new_tokens: r.max_new_tokens,
        ..SamplingParams::default()
    }
}

/// A stop flag that SIGINT sets, for [`Trainer::run`].
pub fn stop_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}
