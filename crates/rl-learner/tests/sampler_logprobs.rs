//! The learner scores sampled tokens under the distribution the rollout engine sampled them
//! from: a tiny random Llama samples a batch (prompts of different lengths, several completions
//! each, continuous batching) at temperatures 1, 0.7 and 0 (greedy), and the learner's
//! log-probs of the built experience — `token_logprobs` on the whole batch and
//! `Learner::logprobs` micro-batch by micro-batch — equal the engine's within 1e-5 on every
//! response token. Scoring a T = 0.7 batch at T = 1 misses by far more, so a learner that
//! ignored the temperature would fail. `--nocapture` prints the largest difference and how many
//! log-probs are bit-identical.

#![allow(clippy::unwrap_used)]

use rl_algorithms::Experience;
use rl_core::config::LrSchedule;
use rl_learner::{
    AdamWConfig, Learner, UpdateSettings,
    experience::{self, Rollout},
};
use rl_model::{
    hf::LoadedModel, logprobs::DEFAULT_CHUNK_TOKENS, token_logprobs, tokenizer::Tokenizer,
};
use rl_rollout::{Completion, Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use tch::{Device, Kind, Tensor};

const VOCAB: u32 = 64;
const EOS: u32 = 2;
const PROMPTS: [&[u32]; 4] = [
    &[5, 9, 14],
    &[7, 3, 3, 8, 21, 40, 41],
    &[11],
    &[60, 4, 33, 12, 17],
];

/// A random f32 Llama on the CPU (deterministic for a seed) whose head is random too (an
/// untied head starts at zero, a uniform policy on which every temperature agrees), spread
/// enough that the temperature matters.
fn random_llama(seed: i64) -> LoadedModel {
    tch::manual_seed(seed);
    let config_json = serde_json::json!({"model_type": "llama", "vocab_size": VOCAB,
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
        "tie_word_embeddings": false});
    let loaded = LoadedModel::random(config_json, Device::Cpu, Kind::Float).unwrap();
    let _ = tch::no_grad(|| loaded.model.lm_head().shallow_clone().normal_(0.0, 0.3));
    loaded
}

/// A learner over a fresh random policy scoring at `temperature`, 3 rows per micro-batch.
fn learner(temperature: f64) -> Learner {
    let policy = random_llama(1);
    let settings = UpdateSettings {
        lr: 1e-3,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: 1,
        grad_clip: 1.0,
        epochs: 1,
        mini_batch_size: 16,
        micro_batch_size: 3,
        micro_batch_tokens: None,
        entropy: false,
        temperature,
        fp32_master_weights: true,
        is_cap: None,
        shared_prefix: true,
        seed: 0,
    };
    Learner::new(policy.model, policy.vs, AdamWConfig::default(), settings)
}

/// Three seeded completions of each prompt at `temperature`, 6 to 9 new tokens.
fn sample(engine: &mut Engine, temperature: f64) -> Vec<Completion> {
    let requests: Vec<GenerateRequest> = PROMPTS
        .iter()
        .enumerate()
        .map(|(i, p)| GenerateRequest {
            prompt: Prompt::Tokens(p.to_vec()),
            params: SamplingParams {
                n: 3,
                temperature,
                max_new_tokens: 6 + i as u32,
                seed: Some(7 + i as u64),
                ..SamplingParams::default()
            },
        })
        .collect();
    let mut done = Vec::new();
    engine.generate(&requests, &mut |e| done.push(e.unwrap()));
    done.sort_by_key(|c| (c.request, c.sample));
    done
}

/// (largest |difference|, bit-identical count, count) of `logprobs` `[b, t-1]` against the
/// batch's rollout log-probs over its response tokens.
fn compare(logprobs: &Tensor, batch: &Experience) -> (f32, usize, usize) {
    let response = batch.mask.gt(0.5);
    let got = Vec::<f32>::try_from(logprobs.masked_select(&response)).unwrap();
    let want = Vec::<f32>::try_from(batch.old_logprobs.masked_select(&response)).unwrap();
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    let identical = got
        .iter()
        .zip(&want)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    (max, identical, want.len())
}

#[test]
fn the_learner_scores_sampled_tokens_as_the_sampler_did() {
    let mut engine = Engine::new(
        random_llama(2),
        Tokenizer::numbered(VOCAB, EOS).unwrap(),
        EngineConfig {
            max_batch: 4, // 12 completions through 4 slots: refilled mid-flight
            ..EngineConfig::default()
        },
    )
    .unwrap();
    for (version, temperature) in [(1, 1.0), (2, 0.7), (3, 0.0)] {
        let learner = learner(temperature);
        engine.update_weights(version, &learner.weights()).unwrap();
        let done = sample(&mut engine, temperature);
        let rollouts: Vec<Rollout<'_>> = done
            .iter()
            .map(|c| Rollout {
                prompt: &c.prompt_ids,
                response: &c.token_ids,
                logprobs: &c.logprobs,
                reward: 0.0,
                group: c.request as i64,
                loss_mask: None,
            })
            .collect();
        let batch = experience::build(&rollouts, EOS, Device::Cpu).unwrap();
        let score = |t: f64| {
            let stats = tch::no_grad(|| {
                token_logprobs(
                    learner.model(),
                    &batch.input_ids,
                    &batch.attention_mask,
                    t,
                    false,
                    DEFAULT_CHUNK_TOKENS,
                )
            });
            stats.logprobs
        };

        let (max, identical, total) = compare(&score(temperature), &batch);
        eprintln!(
            "T = {temperature}: token_logprobs vs engine: max |diff| {max:e}, {identical}/{total} bit-identical"
        );
        assert!(total > 20, "{total} response tokens");
        assert!(max <= 1e-5, "T = {temperature}: max |diff| {max:e}");

        let (max, identical, _) = compare(&learner.logprobs(&batch), &batch);
        eprintln!(
            "T = {temperature}: Learner::logprobs vs engine: max |diff| {max:e}, {identical}/{total} bit-identical"
        );
        assert!(
            max <= 1e-5,
            "T = {temperature}: Learner::logprobs, max |diff| {max:e}"
        );

        if temperature == 0.7 {
            let (untempered, _, _) = compare(&score(1.0), &batch);
            eprintln!("T = 0.7 scored at T = 1: max |diff| {untempered:e}");
            assert!(untempered > 1e-3, "max |diff| {untempered:e}");
        }
    }
}
