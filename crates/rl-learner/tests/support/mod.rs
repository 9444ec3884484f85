//! What the learner's integration tests share: a tiny random Llama learner, a batch of three
//! groups, and ranks of a learner group run as processes.

#![allow(dead_code)] // each test binary uses its part

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use rl_algorithms::Experience;
use rl_core::config::LrSchedule;
use rl_learner::{
    AdamWConfig, Learner, UpdateSettings,
    experience::{self, Rollout},
};
use rl_model::arch::ArchConfig;
use tch::{Device, Kind, nn::VarStore};

/// A learner over a one-layer random Llama (vocabulary 16) computing in `kind`: lr 1e-2,
/// constant, grad clip 1.0, one epoch, mini-batches of 4 in micro-batches of 2, the entropy
/// computed, shared-prefix packing on; `adjust` changes any of these.
pub fn tiny_learner(kind: Kind, adjust: impl FnOnce(&mut UpdateSettings)) -> Learner {
    tch::manual_seed(0);
    let config = ArchConfig::from_json(serde_json::json!({"model_type": "llama", "vocab_size": 16,
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}))
    .expect("a valid tiny config");
    let mut vs = VarStore::new(Device::Cpu);
    let model = config.build(&vs.root()).expect("the tiny model builds");
    vs.set_kind(kind);
    let mut settings = UpdateSettings {
        lr: 1e-2,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: 10,
        grad_clip: 1.0,
        epochs: 1,
        mini_batch_size: 4,
        micro_batch_size: 2,
        micro_batch_tokens: None,
        entropy: true,
        temperature: 1.0,
        fp32_master_weights: true,
        is_cap: None,
        shared_prefix: true,
        seed: 0,
    };
    adjust(&mut settings);
    Learner::new(model, vs, AdamWConfig::default(), settings)
}

/// Three groups of two sequences (prompts of 2 to 4 tokens, responses of 1 to 3), sampled with
/// log-prob `sampled` per token; `rewards` per row.
pub fn three_groups(rewards: [f64; 6], sampled: f32) -> Experience {
    let prompts: [&[u32]; 3] = [&[3, 4, 5], &[6, 7], &[8, 9, 10, 11]];
    let responses: [&[u32]; 6] = [&[5, 6], &[7], &[5, 2, 9], &[9, 9], &[1], &[12, 13]];
    let logprobs: Vec<Vec<f32>> = responses.iter().map(|r| vec![sampled; r.len()]).collect();
    let rollouts: Vec<Rollout<'_>> = (0..6)
        .map(|i| Rollout {
            prompt: prompts[i / 2],
            response: responses[i],
            logprobs: &logprobs[i],
            reward: rewards[i],
            group: (i / 2) as i64,
            loss_mask: None,
        })
        .collect();
    experience::build(&rollouts, 0, Device::Cpu).expect("a valid batch")
}

/// Runs the ignored test `rank` of this test binary as `world` processes, ranks of one group
/// meeting on a free loopback port (the launcher variables set as torchrun sets them), and
/// asserts each exits 0 within `within` having printed `rank checks passed`.
pub fn run_ranks(world: usize, within: Duration) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let exe = std::env::current_exe().expect("this test binary");
    let mut children: Vec<_> = (0..world)
        .map(|rank| {
            Command::new(&exe)
                .args(["rank", "--exact", "--ignored", "--nocapture"])
                .env("WORLD_SIZE", world.to_string())
                .env("RANK", rank.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a rank")
        })
        .collect();
    let deadline = Instant::now() + within;
    while children
        .iter_mut()
        .any(|c| c.try_wait().expect("wait for a rank").is_none())
    {
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the ranks did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (rank, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("a rank's output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "rank {rank} failed:\n{text}");
        assert!(text.contains("rank checks passed"), "rank {rank}:\n{text}");
    }
}
