//! Learning tests on CPU with a tiny random model made here: GRPO, DAPO, RLOO, REINFORCE++ and
//! PPO with a critic (each built from its `[algorithm]` config) raise the mean reward of a simple verifiable task
//! from chance (1/16) to at least 0.9, and a negative control — a reward that ignores the
//! output — does not teach the task. The whole loop is real: the rollout
//! engine samples, the reward is computed, the learner updates with AdamW, and the new weights
//! are copied into the engine each step.
//!
//! Task: the prompt is one token `p` in 2..10; the answer is the single token `p + 6`.

#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng, rngs::StdRng};
use rl_core::config::{AlgorithmConfig, AlgorithmName, LrSchedule};
use rl_learner::{
    AdamWConfig, Learner, UpdateSettings,
    experience::{self, Rollout},
};
use rl_model::{heads::ScalarModel, hf::LoadedModel, tokenizer::Tokenizer};
use rl_rollout::{Completion, Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use tch::{Device, Kind};

const VOCAB: i64 = 16;
const PROMPTS: std::ops::Range<u32> = 2..10;
const GROUP: u32 = 8;

fn config() -> serde_json::Value {
    serde_json::json!({"model_type": "llama", "vocab_size": VOCAB, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": false})
}

/// Serialises model creation: `manual_seed` and initialisation share libtorch's global
/// generator, and the tests run in parallel.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A random model whose output head starts at zero: a uniform policy over the 16 tokens for
/// every prompt, so each prompt starts at chance (1/16) rather than wherever the random head
/// happens to put it.
fn random_model(seed: i64, kind: Kind) -> LoadedModel {
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    let loaded = LoadedModel::random(config(), Device::Cpu, kind).unwrap();
    let _ = tch::no_grad(|| loaded.model.lm_head().shallow_clone().zero_());
    loaded
}

fn correct(c: &Completion) -> bool {
    c.token_ids.first() == Some(&(c.prompt_ids[0] + 6))
}

/// Trains `algorithm` for `steps` steps with `reward`; returns (mean reward, task accuracy) per
/// step.
fn train(
    algorithm: AlgorithmName,
    steps: usize,
    reward: &mut dyn FnMut(&Completion) -> f64,
) -> Vec<(f64, f64)> {
    train_in(Kind::Float, algorithm, steps, reward)
}

/// [`train`] with the policy (and the engine's replica) in precision `kind`.
fn train_in(
    kind: Kind,
    algorithm: AlgorithmName,
    steps: usize,
    reward: &mut dyn FnMut(&Completion) -> f64,
) -> Vec<(f64, f64)> {
    let policy = random_model(1, kind);
    let mut engine = Engine::new(
        random_model(2, kind),
        Tokenizer::numbered(VOCAB as u32, 0).unwrap(),
        EngineConfig {
            max_batch: 64,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let settings = UpdateSettings {
        lr: 1e-2,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: steps as u64,
        grad_clip: 1.0,
        epochs: 1,
        mini_batch_size: 64,
        micro_batch_size: 32,
        micro_batch_tokens: None,
        entropy: false,
        temperature: 1.0,
        fp32_master_weights: true,
        seed: 0,
    };
    let mut config = AlgorithmConfig {
        name: algorithm,
        ..AlgorithmConfig::default()
    };
    config.resolve();
    let mut algorithm = rl_algorithms::from_config(&config).unwrap();
    let mut learner = Learner::new(policy.model, policy.vs, AdamWConfig::default(), settings);
    if algorithm.needs().critic {
        let critic = ScalarModel::from_policy(&random_model(3, Kind::Float), Device::Cpu).unwrap();
        learner = learner.with_critic(critic, AdamWConfig::default(), 1e-2);
    }
    let mut history = Vec::new();
    for step in 0..steps {
        engine
            .update_weights(step as u64 + 1, &learner.weights())
            .unwrap();
        let requests: Vec<GenerateRequest> = PROMPTS
            .map(|p| GenerateRequest {
                prompt: Prompt::Tokens(vec![p]),
                params: SamplingParams {
                    n: GROUP,
                    max_new_tokens: 1,
                    ignore_eos: true,
                    seed: Some(step as u64 * 100 + u64::from(p)),
                    ..SamplingParams::default()
                },
            })
            .collect();
        let mut done = Vec::new();
        engine.generate(&requests, &mut |e| done.push(e.unwrap()));
        done.sort_by_key(|c| (c.request, c.sample));
        let rewards: Vec<f64> = done.iter().map(&mut *reward).collect();
        let accuracy = done.iter().filter(|c| correct(c)).count() as f64 / done.len() as f64;
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        history.push((mean, accuracy));
        let rollouts: Vec<Rollout<'_>> = done
            .iter()
            .zip(&rewards)
            .map(|(c, &r)| Rollout {
                prompt: &c.prompt_ids,
                response: &c.token_ids,
                logprobs: &c.logprobs,
                reward: r,
                group: c.request as i64,
            })
            .collect();
        let mut batch = experience::build(&rollouts, 0, Device::Cpu).unwrap();
        batch.values = learner.critic_values(&batch);
        let targets = algorithm.targets(&batch).unwrap();
        let nothing_kept = targets
            .keep
            .as_ref()
            .is_some_and(|k| k.any().int64_value(&[]) == 0);
        if !nothing_kept {
            learner
                .update(algorithm.as_ref(), &batch, &targets)
                .unwrap();
        }
    }
    history
}

/// Mean of the first 3 and of the last 5 steps' (reward, accuracy).
fn start_and_end(history: &[(f64, f64)]) -> ((f64, f64), (f64, f64)) {
    let mean = |h: &[(f64, f64)]| {
        let n = h.len() as f64;
        (
            h.iter().map(|x| x.0).sum::<f64>() / n,
            h.iter().map(|x| x.1).sum::<f64>() / n,
        )
    };
    (mean(&history[..3]), mean(&history[history.len() - 5..]))
}

#[test]
fn every_algorithm_learns_the_task() {
    let right = |c: &Completion| if correct(c) { 1.0 } else { 0.0 };
    for algorithm in [
        AlgorithmName::Grpo,
        AlgorithmName::Dapo,
        AlgorithmName::Rloo,
        AlgorithmName::ReinforcePp,
        AlgorithmName::Ppo,
    ] {
        let history = train(algorithm, 60, &mut { right });
        let ((start, _), (end, _)) = start_and_end(&history);
        eprintln!(
            "{algorithm}: mean reward over the first 3 steps {start:.3}, last 5 steps {end:.3}"
        );
        assert!(start < 0.3, "{algorithm} starts near chance: {start}");
        assert!(end >= 0.9, "{algorithm} reached only {end:.3}: {history:?}");
    }
}

#[test]
fn a_reward_blind_to_the_output_teaches_nothing() {
    let steps = 60;
    let mut coin = StdRng::seed_from_u64(7);
    let control = train(AlgorithmName::Grpo, steps, &mut |_| {
        if coin.random::<bool>() { 1.0 } else { 0.0 }
    });
    let (_, (_, accuracy)) = start_and_end(&control);
    let reward: f64 = control.iter().map(|h| h.0).sum::<f64>() / steps as f64;
    eprintln!(
        "control: task accuracy over the last 5 steps {accuracy:.3}, mean reward {reward:.3}"
    );
    assert!(
        accuracy < 0.3,
        "a reward that ignores the output taught the task: {accuracy}"
    );
    assert!(
        (0.4..0.6).contains(&reward),
        "coin-flip reward averages 0.5: {reward}"
    );
}

#[test]
fn grpo_learns_in_bf16_through_f32_master_weights() {
    let right = |c: &Completion| if correct(c) { 1.0 } else { 0.0 };
    let history = train_in(Kind::BFloat16, AlgorithmName::Grpo, 60, &mut { right });
    let ((start, _), (end, _)) = start_and_end(&history);
    eprintln!("grpo bf16: mean reward over the first 3 steps {start:.3}, last 5 steps {end:.3}");
    assert!(
        start < 0.3 && end >= 0.9,
        "bf16 GRPO: {start:.3} → {end:.3}"
    );
}
