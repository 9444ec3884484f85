//! The roles of a run, built from its config: the environment and the scorer, the rollout
//! workers (in-process actors, each owning a policy replica on its own thread, or `rl
//! rollout-worker` processes at `placement.rollout_servers`), the learner
//! (policy, optional critic, their optimisers), the frozen reference policy when the algorithm
//! needs one, and the algorithm. Each sits behind the trait the loop drives, so a role can move
//! out of the process without the loop changing.

use std::sync::Arc;

use rl_algorithms::Algorithm;
use rl_core::{Config, Env, RewardFn};
use rl_learner::{AdamWConfig, Learner, UpdateSettings};
use rl_model::{CausalLm, heads::ScalarModel, hf::LoadedModel, tokenizer::Tokenizer};
use rl_rollout::{
    Engine, EngineConfig, LocalWorker, RolloutError, RolloutWorker,
    remote::{self, ClientOptions, RemoteWorker},
};
use tch::{Device, Kind};

use super::TrainError;

/// Everything a run drives.
pub struct Roles {
    /// The task source.
    pub env: Box<dyn Env>,
    /// Scores training samples (`[reward]`).
    pub reward: Box<dyn RewardFn>,
    /// Judges evaluation answers (the environment's verifier, as `rl eval`).
    pub verifier: Box<dyn RewardFn>,
    /// The policy's tokenizer and chat template.
    pub tokenizer: Tokenizer,
    /// The rollout workers.
    pub workers: Vec<Arc<dyn RolloutWorker>>,
    /// Policy (and critic) being trained.
    pub learner: Learner,
    /// The frozen reference policy, when the algorithm needs one.
    pub reference: Option<Box<dyn CausalLm>>,
    /// The algorithm.
    pub algorithm: Box<dyn Algorithm>,
    /// The policy's `config.json` and where it came from (for exporting HF folders).
    pub policy_meta: (serde_json::Value, std::path::PathBuf),
    /// The policy's compute precision.
    pub kind: Kind,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("env", &self.env.name())
            .field("reward", &self.reward.name())
            .field("workers", &self.workers.len())
            .field("algorithm", &self.algorithm.name())
            .finish_non_exhaustive()
    }
}

/// Where the learner's devices and precision come from.
#[derive(Debug, Clone, Copy)]
pub struct Devices {
    /// Rollout workers' device.
    pub rollout: Device,
    /// Learner's (and reference model's) device.
    pub learner: Device,
    /// Compute precision of the policy.
    pub kind: Kind,
}

/// Builds the roles of `config`, every model as `model.path` holds it (a resumed run then
/// restores the checkpoint's weights into them).
pub fn build(
    config: &Config,
    devices: Devices,
    runtime: &tokio::runtime::Runtime,
) -> Result<Roles, TrainError> {
    let setup = |what: &str| {
        let what = what.to_owned();
        move |e: &dyn std::fmt::Display| TrainError::Setup(format!("{what}: {e}"))
    };
    let env = rl_envs::by_name(&config.env).map_err(|e| setup("env")(&e))?;
    let reward = crate::reward::scorer(config).map_err(|e| setup("reward")(&e))?;
    let verifier =
        rl_envs::verifier(&config.env, &config.reward).map_err(|e| setup("reward.verifier")(&e))?;
    let path = config.model.path.clone();
    let tokenizer = rl_model::load_tokenizer(&path).map_err(|e| setup("model.path")(&e))?;
    let Trainee {
        learner,
        algorithm,
        policy_meta,
    } = trainee(config, devices)?;
    let reference = if algorithm.needs().reference {
        let mut frozen = rl_model::load(&path, devices.learner, devices.kind)
            .map_err(|e| setup("reference model")(&e))?;
        frozen.vs.freeze();
        Some(frozen.model)
    } else {
        None
    };

    let servers = &config.placement.rollout_servers;
    let workers = if servers.is_empty() {
        (0..config.placement.rollout_workers)
            .map(|i| spawn_worker(config, i, devices))
            .collect::<Result<Vec<_>, _>>()
    } else {
        runtime.block_on(connect_workers(servers))
    }
    .map_err(|e| setup("rollout worker")(&e))?;
    Ok(Roles {
        env,
        reward,
        verifier,
        tokenizer,
        workers,
        learner,
        reference,
        algorithm,
        policy_meta,
        kind: devices.kind,
    })
}

/// What every learner rank trains with: the learner (policy, critic when the algorithm needs
/// one, their optimisers) and the algorithm.
pub struct Trainee {
    /// The learner.
    pub learner: Learner,
    /// The algorithm.
    pub algorithm: Box<dyn Algorithm>,
    /// The policy's `config.json` and where it came from.
    pub policy_meta: (serde_json::Value, std::path::PathBuf),
}

/// Builds the learner and the algorithm of `config`, the policy as `model.path` holds it.
pub fn trainee(config: &Config, devices: Devices) -> Result<Trainee, TrainError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| TrainError::Setup(format!("{what}: {e}"));
    let policy = rl_model::load(&config.model.path, devices.learner, devices.kind)
        .map_err(|e| setup("model.path", &e))?;
    let algorithm = rl_algorithms::from_config(&config.algorithm, config.rollout.max_new_tokens)
        .map_err(|e| setup("algorithm", &e))?;
    let critic = if algorithm.needs().critic {
        let critic = ScalarModel::from_policy(&policy, devices.learner);
        Some(critic.map_err(|e| setup("critic", &e))?)
    } else {
        None
    };
    let policy_meta = (policy.config_json.clone(), policy.source.clone());
    let LoadedModel { model, vs, .. } = policy;
    let opt = optimizers(config);
    let mut learner = Learner::new(model, vs, opt.adamw, update_settings(config));
    if let Some(critic) = critic {
        learner = learner.with_critic(critic, opt.adamw, opt.critic_lr);
    }
    Ok(Trainee {
        learner,
        algorithm,
        policy_meta,
    })
}

/// The learner's settings from `[learner]`, `[algorithm]` and `[run]`.
pub fn update_settings(config: &Config) -> UpdateSettings {
    let l = &config.learner;
    let samples = config.rollout.samples_per_step();
    let minis = samples.div_ceil(u64::from(l.mini_batch_size.max(1)));
    let per_step = minis * u64::from(config.algorithm.epochs);
    UpdateSettings {
        lr: l.lr,
        schedule: l.lr_schedule,
        warmup_steps: l.warmup_steps,
        total_steps: config.run.steps * per_step,
        grad_clip: l.grad_clip,
        epochs: config.algorithm.epochs,
        mini_batch_size: l.mini_batch_size as usize,
        micro_batch_size: l.micro_batch_size as usize,
        micro_batch_tokens: (l.micro_batch_tokens > 0).then_some(l.micro_batch_tokens as usize),
        entropy: config.algorithm.entropy_coef != 0.0,
        seed: config.run.seed,
        temperature: sampling_temperature(config.rollout.temperature),
        fp32_master_weights: l.fp32_master_weights,
        shared_prefix: l.shared_prefix,
        is_cap: config.rollout.is_cap(),
    }
}

/// The learner's optimisers (from `[learner]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizers {
    /// AdamW's settings, the policy's and the critic's alike.
    pub adamw: AdamWConfig,
    /// The critic's peak learning rate (it follows the policy's schedule).
    pub critic_lr: f64,
}

/// The optimisers `[learner]` describes: `adam_betas`, `adam_eps`, `weight_decay`, `critic_lr`.
pub fn optimizers(config: &Config) -> Optimizers {
    let l = &config.learner;
    Optimizers {
        adamw: AdamWConfig {
            betas: (l.adam_betas[0], l.adam_betas[1]),
            eps: l.adam_eps,
            weight_decay: l.weight_decay,
        },
        critic_lr: l.critic_lr,
    }
}

/// The temperature whose distribution the sampler's log-probs describe: greedy decoding (0)
/// reports them at 1.
pub fn sampling_temperature(temperature: f64) -> f64 {
    if temperature > 0.0 { temperature } else { 1.0 }
}

/// The engine settings of every rollout worker (`rollout.max_batch`, `rollout.max_seq_len`).
pub fn engine_config(config: &Config) -> EngineConfig {
    let r = &config.rollout;
    EngineConfig {
        max_batch: i64::from(r.max_batch),
        max_seq_len: (r.max_seq_len > 0).then_some(i64::from(r.max_seq_len)),
        ..EngineConfig::default()
    }
}

/// Connects to the `rl rollout-worker` processes at `servers`, with the shared secret in
/// `$RL_ROLLOUT_TOKEN` when it is set. Each must serve the policy's architecture: the first
/// weight sync refuses any other.
pub(crate) async fn connect_workers(
    servers: &[String],
) -> Result<Vec<Arc<dyn RolloutWorker>>, RolloutError> {
    let token = rl_proto::secret::load(None, remote::TOKEN_ENV, false)
        .map_err(|e| RolloutError::Config(e.to_string()))?;
    let mut workers: Vec<Arc<dyn RolloutWorker>> = Vec::with_capacity(servers.len());
    for addr in servers {
        let options = ClientOptions {
            token: token.clone(),
            ..ClientOptions::default()
        };
        workers.push(Arc::new(RemoteWorker::connect(addr, options).await?));
    }
    Ok(workers)
}

/// Starts rollout worker `i`: an engine over its own replica of the policy, on its own thread.
fn spawn_worker(
    config: &Config,
    i: u32,
    devices: Devices,
) -> Result<Arc<dyn RolloutWorker>, RolloutError> {
    let path = config.model.path.clone();
    let engine = engine_config(config);
    let worker = LocalWorker::spawn(&format!("rollout-{i}"), move || {
        let tokenizer = rl_model::load_tokenizer(&path)
            .map_err(|e| RolloutError::Config(format!("model.path: {e}")))?;
        let model = rl_model::load(&path, devices.rollout, devices.kind)
            .map_err(|e| RolloutError::Config(format!("model.path: {e}")))?;
        Engine::new(model, tokenizer, engine)
    })?;
    Ok(Arc::new(worker))
}
