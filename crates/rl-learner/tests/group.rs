//! The learner group across real processes: two ranks (this test binary run again as the
//! ignored test `rank`, one process each) meet through libtorch's TCP store from the launcher
//! variables (`MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`) and, over Gloo:
//!
//! - sum and broadcast tensors of mixed shapes and dtypes;
//! - sum the gradients of their halves of a batch on a tiny Llama into the whole batch's
//!   gradient, within 1e-5 (f32, CPU);
//! - after the same step from those gradients, hold the same weights (equal fingerprints).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use rl_learner::group::{Backend, ProcessGroup, Rendezvous, fingerprint};
use rl_model::{arch::ArchConfig, logprobs::DEFAULT_CHUNK_TOKENS, token_logprobs};
use tch::{Device, Kind, Tensor, nn::VarStore};

#[test]
fn two_ranks_sum_broadcast_and_agree_on_gradients_and_weights() {
    support::run_ranks(2, Duration::from_secs(180));
}

#[test]
#[ignore = "one rank of the group: two_ranks_sum_broadcast_and_agree_on_gradients_and_weights runs it in its own process"]
fn rank() {
    let rendezvous = Rendezvous::from_env()
        .unwrap()
        .expect("WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT, as the two-rank test sets them");
    let group = ProcessGroup::join(&rendezvous, Backend::Gloo, Duration::from_secs(60)).unwrap();
    let (rank, world) = (group.rank(), group.world());
    assert_eq!(world, 2);

    // Sums and broadcasts of tensors of mixed shapes, as one flat buffer.
    let a = Tensor::full([2, 3], (rank + 1) as f64, (Kind::Float, Device::Cpu));
    let b = Tensor::from_slice(&[rank as f32, 10.0]);
    group
        .all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()])
        .unwrap();
    assert_eq!(Vec::<f32>::try_from(a.reshape([-1])).unwrap(), vec![3.0; 6]);
    assert_eq!(Vec::<f32>::try_from(&b).unwrap(), vec![1.0, 20.0]);
    let c = Tensor::from_slice(&[rank as f32 * 10.0 + 1.0]);
    group.broadcast(&[c.shallow_clone()], 0).unwrap();
    assert_eq!(Vec::<f32>::try_from(&c).unwrap(), vec![1.0]);
    let mixed = [
        Tensor::from_slice(&[1.5f32]),
        Tensor::from_slice(&[rank as i64 + 1]),
    ];
    group.all_reduce_sum(&mixed).unwrap();
    assert_eq!(mixed[0].double_value(&[0]), 3.0);
    assert_eq!(
        mixed[1].int64_value(&[0]),
        3,
        "each dtype travels on its own"
    );

    // The same random model on every rank (same seed), and the same batch of 4 sequences.
    tch::manual_seed(0);
    let config = ArchConfig::from_json(serde_json::json!({"model_type": "llama", "vocab_size": 16,
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}))
    .unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = config.build(&vs.root()).unwrap();
    let ids = Tensor::randint(16, [4, 6], (Kind::Int64, Device::Cpu));
    let mask = Tensor::ones([4, 6], (Kind::Int64, Device::Cpu));
    let params: Vec<Tensor> = vs.trainable_variables();
    let tokens = 4.0 * 5.0;
    // −(sum of the rows' log-probs) / all tokens of the batch, so shard losses add up.
    let gradient = |rows: &[i64]| {
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let index = Tensor::from_slice(rows);
        let stats = token_logprobs(
            model.as_ref(),
            &ids.index_select(0, &index),
            &mask.index_select(0, &index),
            1.0,
            false,
            DEFAULT_CHUNK_TOKENS,
        );
        (stats.logprobs.sum(Kind::Float) * (-1.0 / tokens)).backward();
        params.iter().map(|p| p.grad().copy()).collect::<Vec<_>>()
    };
    let whole = gradient(&[0, 1, 2, 3]);
    let shard: Vec<i64> = (0..4).filter(|i| *i as usize % world == rank).collect();
    let summed = gradient(&shard);
    group.all_reduce_sum(&summed).unwrap();
    for (w, s) in whole.iter().zip(&summed) {
        let diff = (w - s).abs().max().double_value(&[]);
        assert!(
            diff < 1e-5,
            "rank {rank}: data-parallel gradient off by {diff}"
        );
    }

    // The same step from the summed gradients leaves every rank with the same weights.
    tch::no_grad(|| {
        for (p, g) in params.iter().zip(&summed) {
            let mut p = p.shallow_clone();
            let _ = p.g_add_(&(g * -0.1));
        }
    });
    let mine = fingerprint(&params).unwrap();
    let theirs = Tensor::from_slice(&[mine as i64]);
    group.broadcast(&[theirs.shallow_clone()], 0).unwrap();
    assert_eq!(
        theirs.int64_value(&[0]) as u64,
        mine,
        "rank {rank} holds other weights"
    );
    group.barrier().unwrap();
    println!("rank checks passed");
}

#[test]
#[ignore = "needs a CUDA GPU and rl built with NCCL: scripts/gpu/check.sh nccl runs it"]
fn nccl_world_of_one_sums_and_broadcasts_cuda_tensors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rendezvous = Rendezvous {
        addr: "127.0.0.1".into(),
        port,
        rank: 0,
        world: 1,
        local_rank: 0,
        agent_store: false,
    };
    let group = ProcessGroup::join(&rendezvous, Backend::Nccl, Duration::from_secs(60)).unwrap();
    let gpu = Device::Cuda(0);
    let a = Tensor::full([3], 2.0, (Kind::Float, gpu));
    let b = Tensor::from_slice(&[7i64]).to_device(gpu);
    group
        .all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()])
        .unwrap();
    assert_eq!(
        Vec::<f32>::try_from(a.to_device(Device::Cpu)).unwrap(),
        [2.0; 3]
    );
    let c = Tensor::full([2, 2], 1.5, (Kind::BFloat16, gpu));
    group.broadcast(&[c.shallow_clone()], 0).unwrap();
    assert_eq!(
        c.to_kind(Kind::Float).sum(Kind::Float).double_value(&[]),
        6.0
    );
    assert_eq!(b.int64_value(&[0]), 7);
}
