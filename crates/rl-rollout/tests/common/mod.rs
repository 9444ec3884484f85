//! Helpers shared by rl-rollout's tests: the tiny model fixtures of rl-model with a word-level
//! tokenizer over their vocabulary, and an engine run collected into per-request results.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rl_model::tokenizer::Tokenizer;
use rl_rollout::{
    Completion, Engine, EngineConfig, Event, GenerateRequest, Prompt, RequestError, SamplingParams,
};
use tch::{Device, Kind};

/// `crates/rl-model/tests/fixtures/models/<name>`.
pub fn tiny_model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rl-model/tests/fixtures/models")
        .join(name)
}

/// An f32 CPU engine over the tiny fixture `name` (EOS: token 2).
pub fn tiny_engine(name: &str, config: EngineConfig) -> Engine {
    tiny_engine_with_eos(name, config, 2)
}

/// [`tiny_engine`] whose tokenizer's EOS is token `eos`.
pub fn tiny_engine_with_eos(name: &str, config: EngineConfig, eos: u32) -> Engine {
    engine_at(&tiny_model_dir(name), config, eos)
}

/// An f32 CPU engine over the HF folder `dir` of a tiny model, with EOS token `eos`.
pub fn engine_at(dir: &Path, config: EngineConfig, eos: u32) -> Engine {
    let loaded = rl_model::hf::load_dir(dir, Device::Cpu, Kind::Float).expect("tiny model loads");
    let vocab = loaded.model.lm_head().size()[0] as u32;
    Engine::new(
        loaded,
        Tokenizer::numbered(vocab, eos).expect("tokenizer"),
        config,
    )
    .expect("engine")
}

/// A request for the token-id `prompt`.
pub fn request(prompt: &[u32], params: SamplingParams) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Tokens(prompt.to_vec()),
        params,
    }
}

/// Greedy decoding of exactly `new_tokens` tokens (EOS ignored).
pub fn greedy(new_tokens: u32) -> SamplingParams {
    SamplingParams {
        ignore_eos: true,
        ..SamplingParams::greedy(new_tokens)
    }
}

/// Every event of one `generate` call, sorted by (request, sample).
pub fn run(
    engine: &mut Engine,
    requests: &[GenerateRequest],
) -> (Vec<Completion>, Vec<RequestError>) {
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    engine.generate(requests, &mut |event: Event| match event {
        Ok(c) => done.push(c),
        Err(e) => refused.push(e),
    });
    done.sort_by_key(|c| (c.request, c.sample));
    refused.sort_by_key(|e| e.request);
    (done, refused)
}
