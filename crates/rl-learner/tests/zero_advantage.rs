//! Sequences whose advantages are all zero add nothing to a policy-gradient loss, so the learner
//! leaves them out of its passes when the algorithm says so: the weights after each update must
//! be those of a learner that runs every sequence, including an update where every advantage is
//! zero (AdamW's momentum still moves the weights then), and the loss must see only the others.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use rl_algorithms::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
use rl_learner::Learner;
use tch::{Kind, Tensor};

fn learner(shared_prefix: bool) -> Learner {
    support::tiny_learner(Kind::Float, |s| {
        s.mini_batch_size = 6;
        s.entropy = false;
        s.shared_prefix = shared_prefix;
    })
}

/// −(advantage · log-prob) / tokens, with the advantage each group's reward minus its mean; it
/// counts the rows its loss sees.
struct GroupCentred {
    inert: bool,
    rows_seen: AtomicI64,
}

impl Algorithm for GroupCentred {
    fn name(&self) -> &str {
        "group_centred"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
        let rewards = Vec::<f32>::try_from(&batch.rewards).unwrap();
        let groups = Vec::<i64>::try_from(&batch.groups).unwrap();
        let centred: Vec<f32> = (0..rewards.len())
            .map(|i| {
                let mine: Vec<f32> = (0..rewards.len())
                    .filter(|&j| groups[j] == groups[i])
                    .map(|j| rewards[j])
                    .collect();
                rewards[i] - mine.iter().sum::<f32>() / mine.len() as f32
            })
            .collect();
        Ok(Targets {
            advantages: Tensor::from_slice(&centred).unsqueeze(1) * &batch.mask,
            returns: None,
            keep: None,
            metrics: vec![],
        })
    }

    fn loss(&self, x: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
        self.rows_seen
            .fetch_add(x.logprobs.size()[0], Ordering::Relaxed);
        let loss = -(x.logprobs * x.advantages * x.mask).sum(Kind::Float) / x.minibatch_tokens;
        Ok(Loss {
            loss,
            metrics: vec![],
        })
    }

    fn zero_advantage_is_inert(&self) -> bool {
        self.inert
    }
}

fn max_difference(a: &Learner, b: &Learner) -> f64 {
    a.weights()
        .iter()
        .zip(b.weights())
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn sequences_without_advantage_are_skipped_and_the_update_is_the_same() {
    for shared_prefix in [false, true] {
        let (mut all, mut skipping) = (learner(shared_prefix), learner(shared_prefix));
        let mut runs_all = GroupCentred {
            inert: false,
            rows_seen: AtomicI64::new(0),
        };
        let mut skips = GroupCentred {
            inert: true,
            rows_seen: AtomicI64::new(0),
        };
        // Group 1 agrees in the first update; every group agrees in the second.
        let batches = [
            [1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
            [1.0, 1.0, 0.0, 0.0, 1.0, 1.0],
            [0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        ];
        let mut moved = Vec::new();
        for rewards in batches {
            let b = support::three_groups(rewards, -1.0);
            let before: Vec<Tensor> = skipping.weights().iter().map(|(_, t)| t.copy()).collect();
            let (t1, t2) = (runs_all.targets(&b).unwrap(), skips.targets(&b).unwrap());
            let stats = all.update(&runs_all, &b, &t1).unwrap();
            let skipped = skipping.update(&skips, &b, &t2).unwrap();
            assert_eq!(stats.steps, 1);
            assert_eq!(skipped.steps, 1);
            let diff = max_difference(&all, &skipping);
            assert!(
                diff < 1e-6,
                "weights differ by {diff} (packing {shared_prefix})"
            );
            let agreeing = rewards.chunks(2).filter(|g| g[0] == g[1]).count() as f64 / 3.0;
            assert_eq!(skipped.metrics["actor/zero_advantage_frac"], agreeing);
            let change = before
                .iter()
                .zip(skipping.weights())
                .map(|(x, (_, y))| (x - y).abs().max().double_value(&[]))
                .fold(0.0, f64::max);
            moved.push(change);
        }
        assert!(
            moved.iter().all(|&m| m > 0.0),
            "every update moves: {moved:?}"
        );
        assert_eq!(runs_all.rows_seen.load(Ordering::Relaxed), 18);
        // Two live groups in the first and third updates, none in the second.
        assert_eq!(skips.rows_seen.load(Ordering::Relaxed), 8);
    }
}
