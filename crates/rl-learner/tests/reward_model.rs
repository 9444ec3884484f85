//! Bradley–Terry training of a tiny random reward model: it learns a preference that is in the
//! data (chosen rows end in one token, rejected rows in another) to near-perfect held-out
//! accuracy, and does not "learn" one that is not (labels by coin flip) — the control that
//! keeps the first result honest.

#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng, rngs::StdRng};
use rl_core::config::LrSchedule;
use rl_learner::{AdamWConfig, PairBatch, RewardModelSettings, RewardModelTrainer};
use rl_model::heads::ScalarModel;
use tch::{Device, Tensor};

const GOOD: i64 = 5;
const BAD: i64 = 9;

/// Serialises model creation: `manual_seed` is global and the tests run in parallel.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn model(seed: i64) -> ScalarModel {
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    let config = serde_json::json!({"model_type": "llama", "vocab_size": 16, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": false});
    ScalarModel::from_config(config, Device::Cpu).unwrap()
}

/// `pairs` pairs of 6-token rows with a shared random prefix of length 2..=5 (right-padded
/// with 0): chosen rows end in GOOD, rejected in BAD — or, with `coin_flip`, either way round
/// at random.
fn batch(rng: &mut StdRng, pairs: usize, coin_flip: bool) -> PairBatch {
    let t = 6;
    let (mut ids, mut mask) = (vec![0i64; 2 * pairs * t], vec![0i64; 2 * pairs * t]);
    for p in 0..pairs {
        let len = rng.random_range(2..=5);
        let prefix: Vec<i64> = (0..len - 1).map(|_| rng.random_range(1..16)).collect();
        let (mut good, mut bad) = (GOOD, BAD);
        if coin_flip && rng.random_bool(0.5) {
            std::mem::swap(&mut good, &mut bad);
        }
        for (row, last) in [(p, good), (pairs + p, bad)] {
            for (i, &tok) in prefix.iter().chain([last].iter()).enumerate() {
                ids[row * t + i] = tok;
                mask[row * t + i] = 1;
            }
        }
    }
    let shape = [2 * pairs as i64, t as i64];
    PairBatch {
        input_ids: Tensor::from_slice(&ids).reshape(shape),
        attention_mask: Tensor::from_slice(&mask).reshape(shape),
    }
}

/// (held-out accuracy, loss) before and after 40 steps of 16 pairs.
fn train(coin_flip: bool) -> ((f64, f64), (f64, f64)) {
    let settings = RewardModelSettings {
        lr: 3e-3,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: 40,
        grad_clip: 1.0,
        adam: AdamWConfig::default(),
    };
    let mut trainer = RewardModelTrainer::new(model(1), settings);
    let mut rng = StdRng::seed_from_u64(7);
    let held_out = [
        batch(&mut rng, 64, coin_flip),
        batch(&mut rng, 64, coin_flip),
    ];
    let before = trainer.evaluate(&held_out).unwrap();
    for _ in 0..40 {
        // Two micro-batches of 8: gradient accumulation is part of what is tested.
        let micro = [batch(&mut rng, 8, coin_flip), batch(&mut rng, 8, coin_flip)];
        let stats = trainer.step(&micro).unwrap();
        assert_eq!(stats.pairs, 16);
        assert!(!stats.skipped && stats.grad_norm.is_finite());
    }
    let after = trainer.evaluate(&held_out).unwrap();
    assert_eq!(after.pairs, 128);
    ((before.accuracy, before.loss), (after.accuracy, after.loss))
}

#[test]
fn a_preference_in_the_data_is_learned() {
    let ((_, loss0), (accuracy, loss)) = train(false);
    assert!(accuracy >= 0.97, "held-out accuracy {accuracy}");
    assert!(loss < 0.2 && loss < loss0, "loss {loss0} -> {loss}");
}

#[test]
fn coin_flip_preferences_stay_at_chance() {
    let (_, (accuracy, loss)) = train(true);
    assert!(
        (0.3..=0.7).contains(&accuracy),
        "held-out accuracy {accuracy}"
    );
    assert!(loss > 0.6, "loss {loss}");
}

#[test]
fn malformed_batches_are_refused_and_leave_no_gradient() {
    let settings = RewardModelSettings {
        lr: 1e-3,
        schedule: LrSchedule::Constant,
        warmup_steps: 0,
        total_steps: 1,
        grad_clip: 0.0,
        adam: AdamWConfig::default(),
    };
    let mut trainer = RewardModelTrainer::new(model(2), settings);
    let odd = PairBatch {
        input_ids: Tensor::zeros([3, 4], (tch::Kind::Int64, Device::Cpu)),
        attention_mask: Tensor::ones([3, 4], (tch::Kind::Int64, Device::Cpu)),
    };
    let err = trainer.step(&[odd]).err().unwrap();
    assert!(err.to_string().contains("[2b, t]"), "{err}");
    assert!(trainer.step(&[]).is_err());
    assert_eq!(trainer.steps(), 0);
}
