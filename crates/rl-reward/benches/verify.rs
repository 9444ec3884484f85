//! Throughput of rule-based scoring in-process: batches of `batch` (default 256) math-style
//! replies scored by the numeric verifier, and by a weighted sum of it and the answer-tag
//! format check; prints one JSON line each with samples/s. The reward service must
//! reach 100,000 samples/s over loopback; this is the ceiling the verifier itself sets.
//!
//! `cargo bench -p rl-reward --bench verify -- [--batch 256] [--secs 2]` (one thread; the
//! 2-core development machine, 2026-11-25: 6.3 M samples/s numeric, 3.2 M with the format part)

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::time::{Duration, Instant};

use clap::Parser;
use rl_core::{RewardFn, Scoring, Task};
use rl_reward::{NumericMatch, Part, TagFormat, WeightedSum};
use rl_test_support::bench::Mode;

/// Replies of the shapes a policy writes: short answers, worked answers, tags, boxes, misses.
fn reply(i: usize) -> String {
    let (a, b) = (i % 97, i % 89);
    match i % 5 {
        0 => format!("{}", a + b),
        1 => format!("{a} + {b} = {}. The answer is {}.", a + b, a + b),
        2 => format!("<think>add {a} and {b}</think> <answer>{}</answer>", a + b),
        3 => format!(
            "Let me compute step by step: {a} plus {b} makes {}, so \\boxed{{{}}}",
            a + b,
            a + b
        ),
        _ => format!("I am not sure, maybe {}?", a + b + 1),
    }
}

/// Runs `reward` over `batch`es until `secs` have passed; samples per second.
fn measure(reward: &dyn RewardFn, batch: &[Scoring<'_>], secs: f64) -> f64 {
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut samples = 0usize;
    while samples == 0 || start.elapsed() < budget {
        let scores = reward.score(batch).unwrap();
        assert_eq!(scores.len(), batch.len());
        samples += batch.len();
    }
    samples as f64 / start.elapsed().as_secs_f64()
}

/// In-process rule-scoring throughput (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    mode: Mode,
    /// Samples per scoring call.
    #[arg(long = "batch", default_value_t = 256)]
    batch_size: usize,
    /// Seconds per measurement [2 / 0.05].
    #[arg(long)]
    secs: Option<f64>,
}

fn main() {
    let args = Args::parse();
    let smoke = args.mode.smoke();
    let batch_size = args.batch_size;
    let secs = args.secs.unwrap_or(args.mode.pick(0.05, 2.0));

    let tasks: Vec<Task> = (0..batch_size)
        .map(|i| {
            let (a, b) = (i % 97, i % 89);
            Task::single_turn(
                format!("{i}"),
                format!("What is {a} + {b}?"),
                Some((a + b).to_string()),
            )
        })
        .collect();
    let replies: Vec<String> = (0..batch_size).map(reply).collect();
    let batch: Vec<Scoring<'_>> = tasks
        .iter()
        .zip(&replies)
        .map(|(task, response)| Scoring { task, response })
        .collect();

    let numeric = NumericMatch::default();
    let weighted = WeightedSum::new(
        "math",
        vec![
            Part::new("correct", 1.0, NumericMatch::default()),
            Part::new("format", 0.1, TagFormat::new(["answer"]).unwrap()),
        ],
    )
    .unwrap();
    for (name, reward) in [
        ("numeric_match", &numeric as &dyn RewardFn),
        ("numeric_match+tag_format", &weighted),
    ] {
        let rate = measure(reward, &batch, secs);
        println!(
            "{{\"bench\": \"verify\", \"reward\": \"{name}\", \"batch\": {batch_size}, \"samples_per_s\": {rate:.0}, \"smoke\": {smoke}}}"
        );
    }
}
