//! The trainer learns, on CPU, with roles a user builds through the public traits: a tiny
//! random model made here, a custom environment and reward, and every algorithm built from
//! its `[algorithm]` config. GRPO, DAPO, RLOO, REINFORCE++ and PPO (with a critic) raise the
//! held-out accuracy of a simple verifiable task from chance to at least 0.9; a negative control,
//! a reward blind to the output, teaches nothing.
//!
//! Asynchronous rollouts (one policy version behind, corrected by truncated importance
//! sampling) learn it too.
//!
//! Task: the prompt is the token `t<p>`, p in 2..10; the answer is the token `t<p+6>`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex, atomic::AtomicBool};

use rl_core::{
    Config, Env, EnvError, RewardError, RewardFn, Score, Scoring, Split, Task,
    config::AlgorithmName,
};
use rl_learner::{AdamWConfig, Learner};
use rl_model::{arch::ArchConfig, heads::ScalarModel, hf::LoadedModel, tokenizer::Tokenizer};
use rl_rollout::{Engine, EngineConfig, LocalWorker};
use rl_runtime::{
    Metrics,
    trainer::{Evaluation, Progress, Roles, StepReport, Trainer, roles::update_settings},
};
use tch::{Device, Kind, nn::VarStore};

const VOCAB: i64 = 16;

/// `t<p>` → `t<p+6>` for p in 2..10; both splits hold the same eight questions.
struct PlusSix;

impl Env for PlusSix {
    fn name(&self) -> &str {
        "plus_six"
    }

    fn tasks(&mut self, _: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
        Ok((0..n)
            .map(|i| {
                let p = 2 + (i as u64 + seed) % 8;
                Task::single_turn(
                    format!("p{p}"),
                    format!("t{p}"),
                    Some(format!("t{}", p + 6)),
                )
            })
            .collect())
    }
}

/// 1 when the reply is the answer; or a fair coin, blind to the reply.
struct Right {
    coin: Option<Mutex<u64>>,
}

impl RewardFn for Right {
    fn name(&self) -> &str {
        "right"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        Ok(batch
            .iter()
            .map(|s| {
                let r = match &self.coin {
                    Some(state) => {
                        let mut x = state.lock().unwrap();
                        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        f64::from((*x >> 33) as u32 & 1)
                    }
                    None => f64::from(Some(s.response.trim()) == s.task.answer.as_deref()),
                };
                Score::new(r)
            })
            .collect())
    }
}

/// Serialises model creation: `manual_seed` is global and the tests run in parallel.
static INIT: Mutex<()> = Mutex::new(());

fn model_json() -> serde_json::Value {
    serde_json::json!({"model_type": "llama", "vocab_size": VOCAB, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": false})
}

/// A random model whose output head is zero: a uniform policy, so every prompt starts at chance.
fn random_model() -> LoadedModel {
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(1);
    let config_json = model_json();
    let config = ArchConfig::from_json(config_json.clone()).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = config.build(&vs.root()).unwrap();
    let _ = tch::no_grad(|| model.lm_head().shallow_clone().zero_());
    LoadedModel {
        model,
        vs,
        config,
        config_json,
        source: "random".into(),
    }
}

fn tokenizer() -> Tokenizer {
    let mut tok = Tokenizer::numbered(VOCAB as u32, 0).unwrap();
    tok.set_chat_template("{{ messages[-1]['content'] }}")
        .unwrap();
    tok
}

fn config(algorithm: AlgorithmName, steps: u64) -> Config {
    let mut config = Config::default();
    config.run.steps = steps;
    config.algorithm.name = algorithm;
    config.rollout.prompts_per_step = 8;
    config.rollout.samples_per_prompt = 8;
    config.rollout.max_new_tokens = 1;
    config.learner.lr = 1e-2;
    config.learner.critic_lr = 1e-2;
    config.learner.mini_batch_size = 64;
    config.learner.micro_batch_size = 32;
    config.eval.tasks = 8;
    config.eval.every = 0;
    config.resolve();
    config.validate().unwrap();
    config
}

fn roles(config: &Config, reward: Right) -> Roles {
    roles_with(config, reward, EngineConfig::default())
}

/// [`roles`] with the rollout worker's engine sized by `engine`.
fn roles_with(config: &Config, reward: Right, engine: EngineConfig) -> Roles {
    let policy = random_model();
    let replica = random_model();
    let worker =
        LocalWorker::spawn("rollout", move || Engine::new(replica, tokenizer(), engine)).unwrap();
    let algorithm =
        rl_algorithms::from_config(&config.algorithm, config.rollout.max_new_tokens).unwrap();
    let critic = algorithm
        .needs()
        .critic
        .then(|| ScalarModel::from_policy(&policy, Device::Cpu).unwrap());
    let policy_meta = (policy.config_json.clone(), policy.source.clone());
    let mut learner = Learner::new(
        policy.model,
        policy.vs,
        AdamWConfig::default(),
        update_settings(config),
    );
    if let Some(critic) = critic {
        learner = learner.with_critic(critic, AdamWConfig::default(), config.learner.critic_lr);
    }
    Roles {
        env: Box::new(PlusSix),
        reward: Box::new(reward),
        verifier: Box::new(Right { coin: None }),
        tokenizer: tokenizer(),
        workers: vec![Arc::new(worker)],
        learner,
        reference: None,
        algorithm,
        policy_meta,
        kind: Kind::Float,
    }
}

/// Mean rewards per step, the samples each step dropped, and each step's scalars.
#[derive(Default)]
struct Rewards(
    Vec<f64>,
    Vec<usize>,
    Vec<std::collections::BTreeMap<String, f64>>,
);

impl Progress for Rewards {
    fn step(&mut self, report: &StepReport) {
        self.0.push(report.reward_mean);
        self.1.push(report.dropped);
        self.2.push(report.metrics.scalars.clone());
    }

    fn eval(&mut self, _: u64, _: &Evaluation) {}
}

fn train(algorithm: AlgorithmName, steps: u64, reward: Right) -> (Vec<f64>, f64, f64) {
    let config = config(algorithm, steps);
    let dir = tempfile::tempdir().unwrap();
    let roles = roles(&config, reward);
    let mut trainer =
        Trainer::with_roles(config, dir.path(), roles, Metrics::default(), false).unwrap();
    let mut rewards = Rewards::default();
    let outcome = trainer.run(&AtomicBool::new(false), &mut rewards).unwrap();
    (
        rewards.0,
        outcome.first_accuracy.unwrap(),
        outcome.last_accuracy.unwrap(),
    )
}

#[test]
fn every_algorithm_learns_the_task() {
    for algorithm in [
        AlgorithmName::Grpo,
        AlgorithmName::Dapo,
        AlgorithmName::Rloo,
        AlgorithmName::ReinforcePp,
        AlgorithmName::Ppo,
    ] {
        let (rewards, before, after) = train(algorithm, 40, Right { coin: None });
        let start = rewards[..3].iter().sum::<f64>() / 3.0;
        let end = rewards[rewards.len() - 5..].iter().sum::<f64>() / 5.0;
        eprintln!(
            "{algorithm}: reward {start:.3} → {end:.3}, held-out accuracy {before:.3} → {after:.3}"
        );
        assert!(start < 0.3, "{algorithm} starts near chance: {start}");
        assert!(end >= 0.9, "{algorithm} reached only {end:.3}: {rewards:?}");
        assert!(after >= 0.9, "{algorithm}: held-out accuracy {after}");
    }
}

#[test]
fn asynchronous_rollouts_learn_one_policy_version_behind() {
    let mut config = config(AlgorithmName::Grpo, 40);
    config.rollout.asynchronous = true;
    config.rollout.is_cap = Some(1.5);
    config.validate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roles = roles(&config, Right { coin: None });
    let mut trainer =
        Trainer::with_roles(config, dir.path(), roles, Metrics::default(), false).unwrap();
    let mut seen = Rewards::default();
    let outcome = trainer.run(&AtomicBool::new(false), &mut seen).unwrap();
    let (rewards, steps) = (&seen.0, &seen.2);
    let end = rewards[rewards.len() - 5..].iter().sum::<f64>() / 5.0;
    let after = outcome.last_accuracy.unwrap();
    eprintln!(
        "async: reward {:.3} → {end:.3}, held-out accuracy {after:.3}",
        rewards[0]
    );
    assert!(end >= 0.9, "async GRPO reached only {end:.3}: {rewards:?}");
    assert!(after >= 0.9, "async GRPO: held-out accuracy {after}");
    // Step 1 trains on version 0, as the learner is; every later batch is one version behind.
    let lag = |s: &std::collections::BTreeMap<String, f64>| s["rollout/policy_version_lag"];
    assert_eq!(lag(&steps[0]), 0.0);
    assert!(
        steps[1..].iter().all(|s| lag(s) == 1.0),
        "{:?}",
        steps.iter().map(lag).collect::<Vec<_>>()
    );
    // The weights are logged with every update (a step whose groups all agree has none), and
    // the cap of 1.5 bites somewhere while the policy moves fast.
    let weighed: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| {
            Some((
                *s.get("rollout/is_weight_mean")?,
                *s.get("rollout/is_capped_frac")?,
            ))
        })
        .collect();
    assert!(
        weighed.len() >= 20,
        "{} of 40 steps logged weights",
        weighed.len()
    );
    assert!(
        weighed.iter().all(|&(mean, _)| mean > 0.0 && mean <= 1.5),
        "{weighed:?}"
    );
    assert!(
        weighed.iter().any(|&(_, capped)| capped > 0.0),
        "the cap never bit: {weighed:?}"
    );
    // The next batch was sampled while this one trained.
    assert!(
        steps[..39]
            .iter()
            .all(|s| s.contains_key("timing_s/gen_wait"))
    );
    assert!(
        !steps[39].contains_key("timing_s/gen_wait"),
        "nothing is drawn after the last step"
    );
}

#[test]
fn a_reward_blind_to_the_output_teaches_nothing() {
    let coin = Right {
        coin: Some(Mutex::new(7)),
    };
    let (rewards, _, after) = train(AlgorithmName::Grpo, 40, coin);
    let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
    eprintln!("control: held-out accuracy {after:.3}, mean reward {mean:.3}");
    assert!(
        after < 0.3,
        "a reward that ignores the output taught the task: {after}"
    );
    assert!(
        (0.4..0.6).contains(&mean),
        "a fair coin averages 0.5: {mean}"
    );
}

#[test]
fn prompts_the_engine_refuses_are_dropped_and_counted_and_the_run_goes_on() {
    let config = config(AlgorithmName::Grpo, 2);
    let dir = tempfile::tempdir().unwrap();
    // A context of one token: every one-token prompt plus its answer overflows it.
    let tight = EngineConfig {
        max_seq_len: Some(2),
        ..EngineConfig::default()
    };
    let mut roles = roles_with(&config, Right { coin: None }, tight);
    roles.env = Box::new(Long);
    let mut trainer =
        Trainer::with_roles(config, dir.path(), roles, Metrics::default(), false).unwrap();
    let mut seen = Rewards::default();
    let outcome = trainer.run(&AtomicBool::new(false), &mut seen).unwrap();
    assert_eq!(outcome.step, 2);
    assert_eq!(seen.1, [64, 64], "every sample is dropped and counted");
    assert_eq!(outcome.last_accuracy, Some(0.0));
}

/// Two-token prompts, too long for a two-token context with one new token.
struct Long;

impl Env for Long {
    fn name(&self) -> &str {
        "long"
    }

    fn tasks(&mut self, _: Split, n: usize, _: u64) -> Result<Vec<Task>, EnvError> {
        Ok((0..n)
            .map(|i| Task::single_turn(format!("{i}"), "t2 t3", Some("t9".into())))
            .collect())
    }
}
