//! Reward-model scoring throughput: a BERT reward model (all-MiniLM-L6-v2 with a fresh head, or a
//! random model of its shape when the checkpoint is absent) scores `batch` texts of `seq` tokens
//! under no_grad; prints one JSON line with the median time and samples/s.
//!
//! `cargo bench -p rl-model --bench reward_model -- [--batch 32] [--seq 128] [--reps 5]
//!  [--device auto|cpu|cuda] [--dtype f32|bf16 (default bf16 on CUDA, f32 on CPU)] [--model DIR]`
//!
//! The model: `--model DIR`, else `$RL_MINILM_DIR` (scripts/fetch-minilm.sh prints it), else
//! random weights of MiniLM's shape (the GPU machine has no checkpoint unless one is carried).

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use rl_model::heads::ScalarModel;
use rl_test_support::bench::TorchMode;
use tch::{Cuda, Kind, Tensor};

/// all-MiniLM-L6-v2's shape (its HF config.json).
const MINILM: &str = r#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 384,
  "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 12,
  "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}"#;

/// Reward-model scoring throughput (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    torch: TorchMode,
    /// Texts per pass [32 / 2].
    #[arg(long)]
    batch: Option<i64>,
    /// Tokens per text [128 / 16].
    #[arg(long)]
    seq: Option<i64>,
    /// Timed passes after one warm-up [5 / 1].
    #[arg(long)]
    reps: Option<usize>,
    /// The backbone's HF directory [$RL_MINILM_DIR, else random weights of MiniLM's shape].
    #[arg(long, env = "RL_MINILM_DIR")]
    model: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let batch = args.batch.unwrap_or(args.torch.mode.pick(2, 32));
    let seq = args.seq.unwrap_or(args.torch.mode.pick(16, 128));
    let reps = args.reps.unwrap_or(args.torch.mode.pick(1, 5));
    let device = rl_model::resolve_device(args.torch.device, "--device").unwrap();
    let kind = rl_model::resolve_kind(args.torch.dtype, device);
    let dir = args.model;
    let sync = || {
        if device.is_cuda() {
            Cuda::synchronize(0);
        }
    };

    tch::manual_seed(0);
    let (mut model, weights) = match &dir {
        Some(dir) => (
            ScalarModel::from_backbone_dir(dir, device).unwrap(),
            dir.display().to_string(),
        ),
        None => (
            ScalarModel::from_config(serde_json::from_str(MINILM).unwrap(), device).unwrap(),
            "random".to_owned(),
        ),
    };
    model.vs.set_kind(kind);
    // `[CLS] text [SEP]` rows of ordinary word-piece ids (1000.. skips the special tokens).
    let ids = Tensor::randint_low(1000, 30522, [batch, seq], (Kind::Int64, device));
    let _ = ids.narrow(1, 0, 1).fill_(101);
    let _ = ids.narrow(1, seq - 1, 1).fill_(102);
    let mask = Tensor::ones([batch, seq], (Kind::Int64, device));

    let mut times = Vec::new();
    let mut checksum = 0.0;
    for rep in 0..=reps {
        sync();
        let start = Instant::now();
        let scores = tch::no_grad(|| model.rewards(&ids, &mask));
        sync();
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64()); // rep 0 warms up
        }
        checksum = scores.mean(Kind::Float).double_value(&[]);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    assert!(checksum.is_finite(), "scores are not finite");
    println!(
        "{}",
        serde_json::json!({
            "impl": "rl (tch)", "model": "all-MiniLM-L6-v2 reward model", "weights": weights,
            "batch": batch, "seq": seq,
            "device": format!("{device:?}"), "dtype": format!("{kind:?}"),
            "threads": tch::get_num_threads(),
            "median_s": median, "samples_per_s": batch as f64 / median,
            "mean_score": checksum,
        })
    );
}
