//! Samples of a stale policy (asynchronous rollouts, `UpdateSettings::is_cap`): the learner
//! takes the ratio against its own policy at the update's start and weighs each token by
//! `min(π_start / π_sampler, cap)`. Whether it gets those log-probs from the update's own pass
//! (one optimiser step) or from a pass before it (several), the weights after the update must
//! be those of a learner handed the same log-probs and weights by the caller, and the logged
//! weight statistics must be the batch's.

#![allow(clippy::unwrap_used)]

mod support;

use rl_algorithms::{Experience, math::truncated_is_weights};
use rl_core::config::AlgorithmConfig;
use rl_learner::{Learner, UpdateSettings};
use tch::{Kind, Tensor};

const CAP: f64 = 1.2;

/// Serialises model creation: `manual_seed` is global and the tests run in parallel.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn learner(adjust: impl FnOnce(&mut UpdateSettings)) -> Learner {
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    support::tiny_learner(Kind::Float, |s| {
        s.entropy = false;
        s.shared_prefix = false;
        adjust(s);
    })
}

/// `batch` with the old log-probs `start` and the weights `weights`, as a caller sets them.
fn given(batch: &Experience, start: Tensor, weights: Tensor) -> Experience {
    Experience {
        input_ids: batch.input_ids.shallow_clone(),
        attention_mask: batch.attention_mask.shallow_clone(),
        mask: batch.mask.shallow_clone(),
        old_logprobs: start,
        ref_logprobs: None,
        values: None,
        rewards: batch.rewards.shallow_clone(),
        groups: batch.groups.shallow_clone(),
        is_weights: Some(weights),
    }
}

/// Largest difference between the two learners' weights.
fn apart(a: &Learner, b: &Learner) -> f64 {
    a.weights()
        .iter()
        .zip(b.weights())
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

fn check(adjust: fn(&mut UpdateSettings), steps: u64) {
    let mut config = AlgorithmConfig::default();
    config.resolve();
    let mut algorithm = rl_algorithms::from_config(&config, 8).unwrap();
    // The tiny policy starts uniform (log-prob ln 1/16 at every token); the sampler's were
    // lower by 0.1 per position, so the ratios run from e^0.1 to e^0.4 and the cap of 1.2 bites
    // on some tokens only.
    let mut batch = support::three_groups([1.0, 0.0, 1.0, 0.5, 0.0, 1.0], 0.0);
    let n = batch.mask.size()[1];
    let lower = Tensor::arange(n, (Kind::Float, tch::Device::Cpu)) * 0.1;
    batch.old_logprobs = (-(16f64.ln()) - lower).unsqueeze(0) * &batch.mask;
    let targets = algorithm.targets(&batch).unwrap();

    let mut corrected = learner(|s| {
        adjust(s);
        s.is_cap = Some(CAP);
    });
    let mut by_hand = learner(adjust);
    let start = by_hand.logprobs(&batch);
    let w = truncated_is_weights(&start, &batch.old_logprobs, &batch.mask, CAP).unwrap();
    assert!(
        w.capped_frac > 0.0 && w.capped_frac < 1.0,
        "{}",
        w.capped_frac
    );
    let (mean, capped) = (w.mean, w.capped_frac);
    let handed = given(&batch, start, w.weights);

    let stats = corrected
        .update(algorithm.as_ref(), &batch, &targets)
        .unwrap();
    let reference = by_hand
        .update(algorithm.as_ref(), &handed, &targets)
        .unwrap();
    assert_eq!((stats.steps, reference.steps), (steps, steps));
    let diff = apart(&corrected, &by_hand);
    assert!(diff < 1e-5, "weights off by {diff}");
    let logged = (
        stats.metrics["rollout/is_weight_mean"],
        stats.metrics["rollout/is_capped_frac"],
    );
    assert!(
        (logged.0 - mean).abs() < 1e-5 && (logged.1 - capped).abs() < 1e-5,
        "logged {logged:?}, the batch's ({mean}, {capped})"
    );
    // Without the correction the update differs: the weights are doing something.
    let mut plain = learner(adjust);
    plain.update(algorithm.as_ref(), &batch, &targets).unwrap();
    assert!(apart(&plain, &by_hand) > 1e-4);
}

#[test]
fn with_one_step_the_update_s_own_pass_gives_the_weights() {
    check(|s| s.mini_batch_size = 6, 1);
}

#[test]
fn with_several_steps_a_pass_before_the_update_gives_them() {
    check(|s| s.mini_batch_size = 3, 2);
}
