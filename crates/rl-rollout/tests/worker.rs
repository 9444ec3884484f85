//! The in-process rollout worker: completions stream back through the trait, requests submitted
//! while a batch runs join it, weight updates wait for the batch and bump the version, a
//! dropped stream cancels only its own work, and a failed build is reported, not panicked.

#![allow(clippy::unwrap_used)]

mod common;

use rl_rollout::{
    EngineConfig, GenerateRequest, LocalWorker, Prompt, RolloutError, RolloutWorker, SamplingParams,
};
use tch::{Kind, Tensor};

fn spawn() -> LocalWorker {
    LocalWorker::spawn("test-worker", || {
        Ok(common::tiny_engine(
            "tiny-llama",
            EngineConfig {
                max_batch: 4,
                ..EngineConfig::default()
            },
        ))
    })
    .unwrap()
}

fn requests(n: usize, new_tokens: u32) -> Vec<GenerateRequest> {
    (0..n)
        .map(|i| GenerateRequest {
            prompt: Prompt::Tokens(vec![5 + i as u32, 9, 14]),
            params: SamplingParams {
                ignore_eos: true,
                ..SamplingParams::greedy(new_tokens)
            },
        })
        .collect()
}

async fn collect(mut stream: rl_rollout::worker::EventStream) -> Vec<rl_rollout::Event> {
    let mut events = Vec::new();
    while let Some(e) = stream.recv().await {
        events.push(e);
    }
    events
}

#[tokio::test]
async fn completions_stream_back_and_updates_bump_the_version() {
    let worker = spawn();
    let info = worker.info().await.unwrap();
    assert_eq!(
        (info.policy_version, info.device.as_str(), info.max_batch),
        (0, "cpu", 4)
    );

    let long = worker.generate(requests(6, 24)).await.unwrap();
    let short = worker.generate(requests(2, 3)).await.unwrap();
    let head = Tensor::randn([128, 64], (Kind::Float, tch::Device::Cpu));
    let update = worker.update_weights(5, vec![("lm_head.weight".into(), head)]);
    let (long, short, update) = tokio::join!(collect(long), collect(short), update);
    update.unwrap();
    assert_eq!(long.len(), 6);
    assert_eq!(short.len(), 2);
    for e in long.iter().chain(&short) {
        assert_eq!(
            e.as_ref().unwrap().policy_version,
            0,
            "submitted before the update"
        );
    }
    assert_eq!(worker.info().await.unwrap().policy_version, 5);
    let after = collect(worker.generate(requests(1, 3)).await.unwrap()).await;
    assert_eq!(after[0].as_ref().unwrap().policy_version, 5);

    let head = Tensor::randn([128, 64], (Kind::Float, tch::Device::Cpu));
    let bad = worker
        .update_weights(5, vec![("lm_head.weight".into(), head)])
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("version 5 is not newer"), "{bad}");
}

#[tokio::test]
async fn a_dropped_stream_cancels_its_work_and_others_are_served() {
    let worker = spawn();
    let abandoned = worker.generate(requests(8, 200)).await.unwrap();
    drop(abandoned);
    let kept = collect(worker.generate(requests(3, 5)).await.unwrap()).await;
    assert_eq!(kept.len(), 3);
    assert!(
        kept.iter()
            .all(|e| e.as_ref().unwrap().token_ids.len() == 5)
    );
}

#[test]
fn a_failing_build_is_an_error() {
    let err = LocalWorker::spawn("bad", || Err(RolloutError::Config("no such model".into())))
        .unwrap_err();
    assert!(err.to_string().contains("no such model"));
    let err = LocalWorker::spawn("panics", || panic!("boom")).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
}
