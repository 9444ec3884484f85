//! Log-prob pass throughput and memory: a random model of a given shape (default SmolLM2-135M)
//! scores `batch × seq` tokens; prints one JSON line with the median time, tokens/s and device
//! memory. `benches/logprobs_vs_torch.py` runs it beside a naive PyTorch eager version.
//!
//! `cargo bench -p rl-model --bench logprobs -- [--batch 64] [--seq 512] [--device auto|cpu|cuda]
//!  [--dtype bf16|f32 (default bf16 on CUDA, f32 on CPU)] [--reps 5] [--chunk 4096] [--config config.json] [--mode forward|train|train-autograd]`
//!
//! Modes: `forward` scores under no_grad; `train` runs the memory-lean training pass
//! (`backward_token_loss`); `train-autograd` the same loss through plain autograd.

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::time::Instant;

use clap::Parser;
use rl_model::{
    TokenStats, TrainingPass, arch::ArchConfig, backward_token_loss, cuda_driver,
    logprobs::token_logprobs,
};
use rl_test_support::bench::TorchMode;
use tch::{Cuda, Kind, Tensor, nn::VarStore};

/// SmolLM2-135M-Instruct's shape (HF config.json).
const SMOLLM2: &str = r#"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
  "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true}"#;

/// Log-prob pass throughput and memory (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    torch: TorchMode,
    /// Sequences per pass [64 / 2].
    #[arg(long)]
    batch: Option<i64>,
    /// Tokens per sequence [512 / 16].
    #[arg(long)]
    seq: Option<i64>,
    /// Timed passes after one warm-up [5 / 1].
    #[arg(long)]
    reps: Option<usize>,
    /// Tokens per chunk of the vocabulary projection.
    #[arg(long, default_value_t = rl_model::logprobs::DEFAULT_CHUNK_TOKENS)]
    chunk: i64,
    /// HF config.json of the model shape [SmolLM2-135M].
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// forward (no_grad), train (the memory-lean training pass) or train-autograd.
    #[arg(long = "mode", default_value = "forward", value_parser = ["forward", "train", "train-autograd"])]
    pass: String,
}

fn main() {
    let args = Args::parse();
    let batch = args.batch.unwrap_or(args.torch.mode.pick(2, 64));
    let seq = args.seq.unwrap_or(args.torch.mode.pick(16, 512));
    let reps = args.reps.unwrap_or(args.torch.mode.pick(1, 5));
    let chunk = args.chunk;
    let device = rl_model::resolve_device(args.torch.device, "--device").unwrap();
    let kind = rl_model::resolve_kind(args.torch.dtype, device);
    let config_text = match &args.config {
        None => SMOLLM2.to_owned(),
        Some(path) => std::fs::read_to_string(path).unwrap(),
    };
    let sync = || {
        if device.is_cuda() {
            Cuda::synchronize(0);
        }
    };

    let _ = Tensor::zeros([1], (Kind::Float, device)); // create the CUDA context before measuring
    sync();
    let mem_before = cuda_driver::memory_in_use();
    let config = ArchConfig::from_json(serde_json::from_str(&config_text).unwrap()).unwrap();
    let mut vs = VarStore::new(device);
    let model = config.build(&vs.root()).unwrap();
    vs.set_kind(kind);
    tch::manual_seed(0);
    let vocab = model.lm_head().size()[0];
    let ids = Tensor::randint(vocab, [batch, seq], (Kind::Int64, device));
    let mask = Tensor::ones([batch, seq], (Kind::Int64, device));

    let mode = &args.pass;
    // A policy-gradient loss: −mean(log p) over all tokens.
    let loss = |s: &TokenStats| -s.logprobs.mean(Kind::Float);
    let mut times = Vec::new();
    let mut checksum = 0.0;
    for rep in 0..=reps {
        sync();
        let start = Instant::now();
        let score = || token_logprobs(model.as_ref(), &ids, &mask, 1.0, false, chunk);
        let value = match mode.as_str() {
            "train" => {
                let pass = TrainingPass {
                    chunk_tokens: chunk,
                    ..TrainingPass::default()
                };
                backward_token_loss(model.as_ref(), &ids, &mask, &pass, loss).0
            }
            "train-autograd" => {
                let value = loss(&score());
                value.backward();
                value
            }
            _ => tch::no_grad(|| loss(&score())),
        };
        sync();
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64()); // rep 0 warms up
        }
        checksum = value.double_value(&[]);
        for (_, mut t) in vs.variables() {
            t.zero_grad();
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mem_after = cuda_driver::memory_in_use();
    let peak = mem_before.zip(mem_after).map(|(b, a)| a.saturating_sub(b));
    let tokens = (batch * seq) as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "rl (tch)",
            "mode": mode,
            "batch": batch, "seq": seq, "chunk": chunk,
            "device": format!("{device:?}"), "dtype": format!("{kind:?}"),
            "median_s": median, "tokens_per_s": tokens / median,
            "device_mem_bytes": peak,
            "loss": checksum,
        })
    );
}
