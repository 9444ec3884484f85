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

#[path = "../../bench-args.rs"]
mod bench_args;

use std::time::Instant;

use bench_args::BenchArgs;

use rl_model::{
    TokenStats, TrainingPass, arch::ArchConfig, backward_token_loss, cuda_driver,
    logprobs::token_logprobs,
};
use tch::{Cuda, Kind, Tensor, nn::VarStore};

/// SmolLM2-135M-Instruct's shape (HF config.json).
const SMOLLM2: &str = r#"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
  "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true}"#;

fn main() {
    let args = BenchArgs::from_env();
    if args.flag("--help") {
        println!(
            "options: --batch N --seq N --device auto|cpu|cuda --dtype f32|bf16 --reps N --chunk N --config FILE"
        );
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, and
    // then it is a quick smoke test of the same code path.
    let smoke = args.smoke();
    let batch: i64 = args.get("--batch", if smoke { 2 } else { 64 });
    let seq: i64 = args.get("--seq", if smoke { 16 } else { 512 });
    let reps: usize = args.get("--reps", if smoke { 1 } else { 5 });
    let chunk: i64 = args.get("--chunk", rl_model::logprobs::DEFAULT_CHUNK_TOKENS);
    let device = args.device();
    let kind = args.kind(device);
    let config_text = match args.get("--config", String::new()).as_str() {
        "" => SMOLLM2.to_owned(),
        path => std::fs::read_to_string(path).unwrap(),
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

    let mode = args.get("--mode", String::from("forward"));
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
