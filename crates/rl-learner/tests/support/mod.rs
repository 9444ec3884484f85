//! What the learner's integration tests share: a tiny random Llama learner.

use rl_core::config::LrSchedule;
use rl_learner::{AdamWConfig, Learner, UpdateSettings};
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
        shared_prefix: true,
        seed: 0,
    };
    adjust(&mut settings);
    Learner::new(model, vs, AdamWConfig::default(), settings)
}
