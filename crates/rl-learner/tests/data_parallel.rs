//! Data parallelism across real processes: two learner ranks (this test binary run again as
//! the ignored test `rank`, one process each) join a Gloo group from the launcher variables and
//! train GRPO on the same batches, each running its share of every mini-batch. Each rank also
//! trains a learner alone on the whole batches; after every update:
//!
//! - the group's loss metrics equal the lone learner's within 1e-5 (f32, CPU): the same loss
//!   curve;
//! - the weights equal the lone learner's within 1e-5;
//! - every rank holds the same weights (equal fingerprints).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use rl_core::config::AlgorithmConfig;
use rl_learner::{
    Learner,
    group::{Backend, ProcessGroup, Rendezvous, fingerprint},
};
use tch::{Kind, Tensor};

#[test]
fn two_ranks_train_like_one_learner_on_the_whole_batch() {
    support::run_ranks(2, Duration::from_secs(300));
}

/// Mini-batches of 4 (so 4 + 2 rows per update) in micro-batches of 1.
fn learner() -> Learner {
    support::tiny_learner(Kind::Float, |s| {
        s.mini_batch_size = 4;
        s.micro_batch_size = 1;
    })
}

#[test]
#[ignore = "one rank: two_ranks_train_like_one_learner_on_the_whole_batch runs it in its own process"]
fn rank() {
    let rendezvous = Rendezvous::from_env()
        .unwrap()
        .expect("WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT, as the two-rank test sets them");
    let group = ProcessGroup::join(&rendezvous, Backend::Gloo, Duration::from_secs(60)).unwrap();
    let rank = group.rank();
    let mut ranked = learner().with_group(group);
    let mut alone = learner();
    let mut config = AlgorithmConfig::default();
    config.resolve();
    let mut algorithm = rl_algorithms::from_config(&config, 8).unwrap();
    let batches = [
        [1.0, 0.0, 1.0, 0.5, 0.0, 1.0],
        [0.0, 1.0, 0.25, 1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0, 1.0, 0.5, 0.0],
    ];
    for (update, rewards) in batches.into_iter().enumerate() {
        let b = support::three_groups(rewards, -2.5);
        let targets = algorithm.targets(&b).unwrap();
        let together = ranked.update(algorithm.as_ref(), &b, &targets).unwrap();
        let lone = alone.update(algorithm.as_ref(), &b, &targets).unwrap();
        assert_eq!(together.steps, 2);
        for key in ["actor/pg_loss", "actor/entropy", "actor/grad_norm"] {
            let (a, b) = (together.metrics[key], lone.metrics[key]);
            assert!(
                (a - b).abs() < 1e-5,
                "rank {rank}, update {update}: {key} {a} in the group, {b} alone"
            );
        }
        let diff = ranked
            .weights()
            .iter()
            .zip(alone.weights())
            .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
            .fold(0.0, f64::max);
        assert!(
            diff < 1e-5,
            "rank {rank}, update {update}: weights off by {diff}"
        );
        let weights: Vec<Tensor> = ranked.weights().into_iter().map(|(_, t)| t).collect();
        let mine = fingerprint(&weights).unwrap();
        let first = Tensor::from_slice(&[mine as i64]);
        let group = ranked.group().unwrap();
        group.broadcast(std::slice::from_ref(&first), 0).unwrap();
        assert_eq!(
            first.int64_value(&[0]) as u64,
            mine,
            "rank {rank}, update {update}: other weights than rank 0"
        );
    }
    println!("rank checks passed");
}
