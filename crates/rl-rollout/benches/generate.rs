//! Generation throughput of the engine: a random model of a given shape (default SmolLM2-135M)
//! samples `batch` completions of `new` tokens from `prompt`-token prompts at temperature 1,
//! EOS ignored; prints one JSON line with the median wall time and generated tokens/s.
//! `benches/generate_vs_transformers.py` runs it beside transformers' `generate`.
//!
//! `cargo bench -p rl-rollout --bench generate -- [--batch 16] [--prompt 64] [--new 256]
//!  [--device auto|cpu|cuda] [--dtype f32|bf16] [--reps 3] [--mixed] [--graphs] [--config config.json]`
//!
//! `--graphs`: on CUDA, replay decode steps as CUDA graphs (experimental, off by default).
//!
//! `--mixed`: `4 × batch` requests through `batch` slots, each stopping after a length drawn
//! uniformly from 16..=new (seeded): what continuous batching keeps of the fixed-length rate.

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::time::Instant;

use clap::Parser;
use rl_model::{hf::LoadedModel, tokenizer::Tokenizer};
use rl_rollout::{Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};
use rl_test_support::bench::TorchMode;
use tch::{Cuda, Device, Kind, Tensor};

/// SmolLM2-135M-Instruct's shape (HF config.json).
const SMOLLM2: &str = r#"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
  "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
  "tie_word_embeddings": true, "max_position_embeddings": 8192}"#;

/// Generation throughput (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    torch: TorchMode,
    /// Completions sampled together [16 / 2].
    #[arg(long)]
    batch: Option<i64>,
    /// Tokens per prompt [64 / 8].
    #[arg(long)]
    prompt: Option<i64>,
    /// New tokens per completion [256 / 4].
    #[arg(long)]
    new: Option<u32>,
    /// Timed runs after one warm-up [3 / 1].
    #[arg(long)]
    reps: Option<usize>,
    /// `4 × batch` requests of seeded random lengths through `batch` slots.
    #[arg(long)]
    mixed: bool,
    /// On CUDA, replay decode steps as CUDA graphs.
    #[arg(long)]
    graphs: bool,
    /// HF config.json of the model shape [SmolLM2-135M].
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let device = rl_model::resolve_device(args.torch.device, "--device").unwrap();
    let kind = rl_model::resolve_kind(args.torch.dtype, device);
    let batch = args.batch.unwrap_or(args.torch.mode.pick(2, 16));
    let prompt = args.prompt.unwrap_or(args.torch.mode.pick(8, 64));
    let new = args.new.unwrap_or(args.torch.mode.pick(4, 256));
    let reps = args.reps.unwrap_or(args.torch.mode.pick(1, 3));
    let (mixed, graphs) = (args.mixed, args.graphs);
    let config_text = match &args.config {
        None => SMOLLM2.to_owned(),
        Some(path) => std::fs::read_to_string(path).unwrap(),
    };
    let sync = || {
        if device.is_cuda() {
            Cuda::synchronize(0);
        }
    };

    tch::manual_seed(0);
    let config_json: serde_json::Value = serde_json::from_str(&config_text).unwrap();
    let loaded = LoadedModel::random(config_json, device, kind).unwrap();
    let vocab = loaded.model.lm_head().size()[0];
    let engine_config = EngineConfig {
        max_batch: batch,
        max_seq_len: Some(prompt + i64::from(new)),
        cuda_graphs: graphs,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(
        loaded,
        Tokenizer::numbered(vocab as u32, 0).unwrap(),
        engine_config,
    )
    .unwrap();

    let count = if mixed { 4 * batch } else { batch };
    let shortest = 16.min(i64::from(new));
    let lengths = Tensor::randint_low(
        shortest,
        i64::from(new) + 1,
        [count],
        (Kind::Int64, Device::Cpu),
    );
    let requests: Vec<GenerateRequest> = (0..count)
        .map(|i| {
            let ids = Tensor::randint(vocab, [prompt], (Kind::Int64, Device::Cpu));
            let ids = Vec::<i64>::try_from(ids).unwrap();
            GenerateRequest {
                prompt: Prompt::Tokens(ids.iter().map(|&t| t as u32).collect()),
                params: SamplingParams {
                    max_new_tokens: if mixed {
                        lengths.int64_value(&[i]) as u32
                    } else {
                        new
                    },
                    ignore_eos: true,
                    seed: Some(i as u64),
                    ..SamplingParams::default()
                },
            }
        })
        .collect();

    let mut run = |requests: &[GenerateRequest]| {
        sync();
        let start = Instant::now();
        let mut tokens = 0usize;
        engine.generate(requests, &mut |e| tokens += e.unwrap().token_ids.len());
        sync();
        (start.elapsed().as_secs_f64(), tokens)
    };
    run(&requests[..1]); // warm-up: kernels, allocator
    let mut times = Vec::new();
    let mut tokens = 0;
    for _ in 0..reps {
        let (secs, n) = run(&requests);
        times.push(secs);
        tokens = n;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "impl": "rl",
            "mode": if mixed { "mixed" } else { "fixed" },
            "cuda_graphs": device.is_cuda() && graphs,
            "device": format!("{device:?}"),
            "dtype": format!("{kind:?}"),
            "batch": batch,
            "requests": count,
            "prompt": prompt,
            "new": new,
            "tokens": tokens,
            "median_s": median,
            "tokens_per_s": tokens as f64 / median,
        })
    );
}
