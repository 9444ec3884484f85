//! Policy-update throughput and memory: a random model of a given shape (default SmolLM2-135M)
//! takes GRPO updates on `batch` sequences of `seq` tokens (the last `response` of them the
//! response), one optimiser step per update with micro-batches of `micro` sequences; prints one
//! JSON line with the median time per update, tokens/s and device memory.
//! `benches/update_vs_torch.py` runs it beside a plain PyTorch eager loop doing the same.
//!
//! `cargo bench -p rl-learner --bench update -- [--batch 64] [--seq 320] [--response 256]
//!  [--micro 16] [--device auto|cpu|cuda] [--dtype bf16|f32] [--reps 3] [--config config.json]`

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::time::Instant;

use clap::Parser;
use rl_algorithms::Algorithm;
use rl_algorithms::{
    ActorObjective, Grpo,
    math::{LossAggregation, PpoClip},
};
use rl_core::config::LrSchedule;
use rl_learner::{
    AdamWConfig, Learner, UpdateSettings,
    experience::{self, Rollout},
};
use rl_model::{arch::ArchConfig, cuda_driver};
use rl_test_support::bench::TorchMode;
use tch::{Cuda, Device, Kind, Tensor, nn::VarStore};

/// SmolLM2-135M-Instruct's shape (HF config.json).
const SMOLLM2: &str = r#"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
  "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true}"#;

/// A small shape for the smoke run under `cargo test --all-targets`.
const TINY: &str = r#"{"model_type": "llama", "vocab_size": 64, "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "tie_word_embeddings": true}"#;

/// Policy-update throughput and memory (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    torch: TorchMode,
    /// Sequences per update [64 / 4].
    #[arg(long)]
    batch: Option<usize>,
    /// Tokens per sequence [320 / 12].
    #[arg(long)]
    seq: Option<usize>,
    /// Response tokens at the end of each sequence [256 / 8].
    #[arg(long)]
    response: Option<usize>,
    /// Sequences per micro-batch [16 / 2].
    #[arg(long)]
    micro: Option<usize>,
    /// Timed updates after one warm-up [3 / 1].
    #[arg(long)]
    reps: Option<usize>,
    /// HF config.json of the model shape [SmolLM2-135M / a tiny llama].
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let mode = &args.torch.mode;
    let device = rl_model::resolve_device(args.torch.device, "--device").unwrap();
    let kind = rl_model::resolve_kind(args.torch.dtype, device);
    let batch = args.batch.unwrap_or(mode.pick(4, 64));
    let seq = args.seq.unwrap_or(mode.pick(12, 320));
    let response = args.response.unwrap_or(mode.pick(8, 256));
    let micro = args.micro.unwrap_or(mode.pick(2, 16));
    let reps = args.reps.unwrap_or(mode.pick(1, 3));
    let config_text = match &args.config {
        None => mode.pick(TINY, SMOLLM2).to_owned(),
        Some(path) => std::fs::read_to_string(path).unwrap(),
    };
    let sync = || {
        if device.is_cuda() {
            Cuda::synchronize(0);
        }
    };

    let _ = Tensor::zeros([1], (Kind::Float, device)); // the CUDA context, before measuring
    sync();
    let mem_before = cuda_driver::memory_in_use();
    tch::manual_seed(0);
    let config = ArchConfig::from_json(serde_json::from_str(&config_text).unwrap()).unwrap();
    let mut vs = VarStore::new(device);
    let model = config.build(&vs.root()).unwrap();
    vs.set_kind(kind);
    let vocab = model.lm_head().size()[0];
    let settings = UpdateSettings {
        lr: 1e-6,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: 1000,
        grad_clip: 1.0,
        epochs: 1,
        mini_batch_size: batch,
        micro_batch_size: micro,
        micro_batch_tokens: None,
        entropy: false,
        temperature: 1.0,
        fp32_master_weights: true,
        is_cap: None,
        shared_prefix: true,
        seed: 0,
    };
    let mut learner = Learner::new(model, vs, AdamWConfig::default(), settings);
    let mut grpo = Grpo {
        objective: ActorObjective {
            clip: PpoClip {
                eps_low: 0.2,
                eps_high: 0.2,
                dual_clip: None,
            },
            aggregation: LossAggregation::TokenMean,
            kl: None,
            entropy_coef: 0.0,
        },
        scale_by_std: true,
    };
    let ids = Tensor::randint(
        vocab,
        [batch as i64, seq as i64],
        (Kind::Int64, Device::Cpu),
    );
    let ids: Vec<u32> = Vec::<i64>::try_from(ids.view([-1]))
        .unwrap()
        .iter()
        .map(|&t| t as u32)
        .collect();
    let logprobs = vec![-2.0f32; response];
    let rollouts: Vec<Rollout<'_>> = (0..batch)
        .map(|i| {
            let row = &ids[i * seq..(i + 1) * seq];
            Rollout {
                prompt: &row[..seq - response],
                response: &row[seq - response..],
                logprobs: &logprobs,
                reward: (i % 2) as f64,
                group: (i / 8) as i64,
                loss_mask: None,
            }
        })
        .collect();
    let experience = experience::build(&rollouts, 0, device).unwrap();
    let targets = grpo.targets(&experience).unwrap();

    let mut run = || {
        sync();
        let start = Instant::now();
        learner.update(&grpo, &experience, &targets).unwrap();
        sync();
        start.elapsed().as_secs_f64()
    };
    run(); // warm-up: kernels, allocator, optimiser state
    let mut times: Vec<f64> = (0..reps).map(|_| run()).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mem_after = cuda_driver::memory_in_use();
    let tokens = (batch * seq) as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "rl",
            "device": format!("{device:?}"),
            "dtype": format!("{kind:?}"),
            "batch": batch,
            "seq": seq,
            "micro": micro,
            "median_s": median,
            "tokens_per_s": tokens / median,
            "device_memory_gib": match (mem_before, mem_after) {
                (Some(b), Some(a)) => Some((a.saturating_sub(b)) as f64 / (1u64 << 30) as f64),
                _ => None,
            },
        })
    );
}
