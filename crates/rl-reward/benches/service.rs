//! Throughput of the reward service over loopback gRPC: an in-process `RewardServer` serving
//! rule-based scoring (numeric match + answer-tag format, as `benches/verify.rs`), and
//! `--clients` threads each scoring batches of `--batch` (default 256) through its own
//! `RemoteScorer`. Runs `--rounds` rounds of `--secs` and prints one JSON line with the median
//! samples/s. The bar is 100,000 samples/s on the 2-core development machine.
//!
//! `cargo bench -p rl-reward --bench service -- [--batch 256] [--clients 4] [--secs 2] [--rounds 5]`
//! (the 2-core development machine, 2026-11-25, idle: median 741,000 samples/s with 4 clients)

#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the right behaviour

use std::{
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use clap::Parser;
use rl_core::{RewardFn, Scoring, Task};
use rl_reward::{
    NumericMatch, Part, TagFormat, WeightedSum,
    remote::{ClientOptions, RemoteScorer, RewardServer, ServerOptions},
};
use rl_test_support::bench::Mode;

/// Replies of the shapes a policy writes: short answers, worked answers, tags, boxes, misses.
fn reply(i: usize) -> String {
    let (a, b) = (i % 97, i % 89);
    match i % 4 {
        0 => format!("{a} + {b} = {}. The answer is {}.", a + b, a + b),
        1 => format!("<think>add {a} and {b}</think> <answer>{}</answer>", a + b),
        2 => format!(
            "Step by step: {a} plus {b} makes {}, so \\boxed{{{}}}",
            a + b,
            a + b
        ),
        _ => format!("I am not sure, maybe {}?", a + b + 1),
    }
}

/// Reward-service throughput over loopback gRPC (defaults: full run / smoke run).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    mode: Mode,
    /// Samples per scoring call.
    #[arg(long = "batch", default_value_t = 256)]
    batch_size: usize,
    /// Client threads scoring at once.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds per round [2 / 0.1].
    #[arg(long)]
    secs: Option<f64>,
    /// Rounds [5 / 1].
    #[arg(long)]
    rounds: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let smoke = args.mode.smoke();
    let (batch_size, clients) = (args.batch_size, args.clients);
    let secs = args.secs.unwrap_or(args.mode.pick(0.1, 2.0));
    let rounds = args.rounds.unwrap_or(args.mode.pick(1, 5));

    let scorer: Arc<dyn RewardFn> = Arc::new(
        WeightedSum::new(
            "rule",
            vec![
                Part::new("correct", 1.0, NumericMatch::default()),
                Part::new("format", 0.1, TagFormat::new(["answer"]).unwrap()),
            ],
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(RewardServer::bind("127.0.0.1:0", ServerOptions::default()))
        .unwrap();
    let addr = server.local_addr().to_string();
    runtime.spawn(server.serve(scorer, std::future::pending()));

    let tasks: Arc<Vec<Task>> = Arc::new(
        (0..batch_size)
            .map(|i| {
                let (a, b) = (i % 97, i % 89);
                Task::single_turn(
                    format!("{i}"),
                    format!("What is {a} + {b}? Put the answer in <answer></answer>."),
                    Some((a + b).to_string()),
                )
            })
            .collect(),
    );
    let replies: Arc<Vec<String>> = Arc::new((0..batch_size).map(reply).collect());

    let mut rates = Vec::new();
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(clients + 1));
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (addr, tasks, replies, barrier) = (
                    addr.clone(),
                    tasks.clone(),
                    replies.clone(),
                    barrier.clone(),
                );
                std::thread::spawn(move || {
                    let remote = RemoteScorer::new(&addr, ClientOptions::default()).unwrap();
                    let batch: Vec<Scoring<'_>> = tasks
                        .iter()
                        .zip(replies.iter())
                        .map(|(task, response)| Scoring { task, response })
                        .collect();
                    remote.score(&batch).unwrap(); // connect and learn the limits first
                    barrier.wait();
                    let start = Instant::now();
                    let mut samples = 0usize;
                    while samples == 0 || start.elapsed() < Duration::from_secs_f64(secs) {
                        let scores = remote.score(&batch).unwrap();
                        assert_eq!(scores.len(), batch.len());
                        samples += batch.len();
                    }
                    (samples, start.elapsed())
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let samples: usize = threads.into_iter().map(|t| t.join().unwrap().0).sum();
        rates.push(samples as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{{\"bench\": \"reward_service\", \"batch\": {batch_size}, \"clients\": {clients}, \"rounds\": {rounds}, \"median_samples_per_s\": {median:.0}, \"min\": {:.0}, \"max\": {:.0}, \"smoke\": {smoke}}}",
        rates[0],
        rates[rates.len() - 1]
    );
}
