//! What the learner does with bad batches — a clear error before any step, or a logged, skipped
//! step — and in every case no NaN in the weights. Covers a batch with no response tokens,
//! tensors whose shapes disagree, all-equal rewards in every group, NaN log-probs, and a loss
//! whose gradient is not finite. And that a learner saved and restored (weights, optimiser
//! state, update count) continues exactly as if it had never stopped, and that a bf16 learner
//! told to keep no f32 master weights keeps none and still learns.

#![allow(clippy::unwrap_used)]

mod support;

use rl_algorithms::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
use rl_learner::{
    Learner, LearnerError,
    experience::{self, Rollout},
};
use tch::{Device, Kind, Tensor};

fn learner() -> Learner {
    learner_in(Kind::Float)
}

/// A tiny random learner whose model computes in `kind` (bf16: f32 master weights).
fn learner_in(kind: Kind) -> Learner {
    learner_with(kind, true)
}

/// [`learner_in`], with f32 master weights for a half-precision model only if `masters`.
fn learner_with(kind: Kind, masters: bool) -> Learner {
    support::tiny_learner(kind, |s| s.fp32_master_weights = masters)
}

/// A copy of every weight.
fn snapshot(l: &Learner) -> Vec<Tensor> {
    l.weights().iter().map(|(_, t)| t.detach().copy()).collect()
}

fn unchanged(before: &[Tensor], l: &Learner) -> bool {
    before
        .iter()
        .zip(l.weights())
        .all(|(a, (_, b))| a.equal(&b))
}

fn all_finite(l: &Learner) -> bool {
    l.weights()
        .iter()
        .all(|(_, t)| t.isfinite().all().int64_value(&[]) == 1)
}

/// −(advantage · log-prob): a plain policy gradient, or whatever `poison` makes of it.
struct Plain {
    poison: f64,
}

impl Algorithm for Plain {
    fn name(&self) -> &str {
        "plain"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let centred = &batch.rewards - batch.rewards.mean(Kind::Float);
        Ok(Targets {
            advantages: centred.unsqueeze(1) * &batch.mask,
            returns: None,
            keep: None,
            metrics: vec![],
        })
    }

    fn loss(&self, x: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        let loss = -(x.logprobs * x.advantages * x.mask).sum(Kind::Float) / x.minibatch_tokens;
        Ok(Loss {
            loss: loss * self.poison,
            metrics: vec![],
        })
    }
}

fn batch(rewards: [f64; 4], responses: [&[u32]; 4]) -> Experience {
    let logprobs: Vec<Vec<f32>> = responses.iter().map(|r| vec![-1.0; r.len()]).collect();
    let rollouts: Vec<Rollout<'_>> = (0..4)
        .map(|i| Rollout {
            prompt: &[3, 4],
            response: responses[i],
            logprobs: &logprobs[i],
            reward: rewards[i],
            group: (i / 2) as i64,
            loss_mask: None,
        })
        .collect();
    experience::build(&rollouts, 0, Device::Cpu).unwrap()
}

#[test]
fn a_batch_without_response_tokens_is_refused_before_any_step() {
    let mut l = learner();
    let before = snapshot(&l);
    let empty = batch([1.0, 0.0, 1.0, 0.0], [&[], &[], &[], &[]]);
    let mut algo = Plain { poison: 1.0 };
    let targets = algo.targets(&empty).unwrap();
    let err = l.update(&algo, &empty, &targets).unwrap_err();
    assert!(err.to_string().contains("no response tokens"), "{err}");
    assert!(unchanged(&before, &l));
}

#[test]
fn tensors_whose_shapes_disagree_are_named() {
    let mut l = learner();
    let b = batch([1.0, 0.0, 1.0, 0.0], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut algo = Plain { poison: 1.0 };
    let mut targets = algo.targets(&b).unwrap();
    targets.advantages = Tensor::zeros([4, 7], (Kind::Float, Device::Cpu));
    let err = l.update(&algo, &b, &targets).unwrap_err();
    assert!(matches!(err, LearnerError::Batch(_)));
    assert!(
        err.to_string()
            .contains("advantages has shape [4, 7]; with input_ids [4, 4] it must be [4, 3]"),
        "{err}"
    );
}

#[test]
fn all_equal_rewards_give_no_update_and_no_nan() {
    let mut l = learner();
    let before = snapshot(&l);
    let b = batch([1.0; 4], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut algo = Plain { poison: 1.0 };
    let targets = algo.targets(&b).unwrap();
    let stats = l.update(&algo, &b, &targets).unwrap();
    assert_eq!(stats.steps, 1);
    assert!(unchanged(&before, &l), "zero advantages move nothing");
    assert!(all_finite(&l));
}

#[test]
fn a_non_finite_gradient_skips_the_step_and_keeps_the_weights() {
    let mut l = learner();
    let before = snapshot(&l);
    let b = batch([1.0, 0.0, 1.0, 0.0], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut algo = Plain { poison: f64::NAN };
    let targets = algo.targets(&b).unwrap();
    let stats = l.update(&algo, &b, &targets).unwrap();
    assert_eq!((stats.steps, stats.skipped), (0, 1));
    assert!(unchanged(&before, &l));
    // The next good batch trains normally.
    let good = Plain { poison: 1.0 };
    let stats = l.update(&good, &b, &targets).unwrap();
    assert_eq!((stats.steps, stats.skipped), (1, 0));
    assert!(!unchanged(&before, &l) && all_finite(&l));
    assert!(stats.metrics["actor/grad_norm"] > 0.0);
}

#[test]
fn nan_rewards_and_nan_logprobs_are_clear_errors() {
    let logprobs = [-1.0f32];
    let r = Rollout {
        prompt: &[3],
        response: &[4],
        logprobs: &logprobs,
        reward: f64::NAN,
        group: 0,
        loss_mask: None,
    };
    let err = experience::build(&[r], 0, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("reward NaN"), "{err}");

    let mut l = learner();
    let before = snapshot(&l);
    let b = batch([1.0, 0.0, 1.0, 0.0], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut config = rl_core::config::AlgorithmConfig::default();
    config.resolve();
    let mut grpo = rl_algorithms::from_config(&config, 64).unwrap();
    let mut poisoned = b;
    let _ = poisoned.old_logprobs.fill_(f64::NAN);
    let targets = grpo.targets(&poisoned).unwrap();
    let err = l.update(grpo.as_ref(), &poisoned, &targets).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("nan") || err.to_string().contains("finite"),
        "{err}"
    );
    assert!(unchanged(&before, &l));
}

#[test]
fn a_restored_learner_continues_exactly_where_it_stopped() {
    for kind in [Kind::Float, Kind::BFloat16] {
        restore_and_continue(kind);
    }
}

/// Save after 2 updates, restore into a fresh learner, 1 more update == 3 straight updates.
fn restore_and_continue(kind: Kind) {
    let b = batch([1.0, 0.0, 0.5, 0.0], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut algo = Plain { poison: 1.0 };
    let targets = algo.targets(&b).unwrap();
    let mut straight = learner_in(kind);
    for _ in 0..3 {
        straight.update(&algo, &b, &targets).unwrap();
    }

    let mut first = learner_in(kind);
    for _ in 0..2 {
        first.update(&algo, &b, &targets).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (weights_file, state_file) = (
        dir.path().join("w.safetensors"),
        dir.path().join("s.safetensors"),
    );
    Tensor::write_safetensors(&first.weights(), &weights_file).unwrap();
    Tensor::write_safetensors(&first.state(), &state_file).unwrap();
    drop(first);

    let mut resumed = learner_in(kind);
    let weights: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&weights_file)
            .unwrap()
            .into_iter()
            .collect();
    tch::no_grad(|| {
        for (name, mut dst) in resumed.weights() {
            dst.copy_(&weights[&name]);
        }
    });
    resumed
        .load_state(&Tensor::read_safetensors(&state_file).unwrap())
        .unwrap();
    resumed.update(&algo, &b, &targets).unwrap();
    for ((name, a), (_, b)) in straight.weights().iter().zip(resumed.weights()) {
        assert!(
            a.equal(&b),
            "{kind:?}: {name} differs after save, restore and one more update"
        );
    }
}

#[test]
fn without_master_weights_a_bf16_learner_updates_its_own_weights() {
    let mut l = learner_with(Kind::BFloat16, false);
    let before = snapshot(&l);
    let b = batch([1.0, 0.0, 0.5, 0.0], [&[5, 6], &[7], &[5], &[9, 9]]);
    let mut algo = Plain { poison: 1.0 };
    let targets = algo.targets(&b).unwrap();
    let stats = l.update(&algo, &b, &targets).unwrap();
    assert_eq!(stats.steps, 1);
    assert!(!unchanged(&before, &l) && all_finite(&l));
    assert!(l.weights().iter().all(|(_, t)| t.kind() == Kind::BFloat16));
    let state = l.state();
    assert!(
        state.iter().all(|(n, _)| !n.starts_with("master.")),
        "no f32 copy: {:?}",
        state.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // With masters the same learner holds one f32 copy per weight.
    let with = learner_with(Kind::BFloat16, true).state();
    assert!(with.iter().any(|(n, _)| n.starts_with("master.")));
}
