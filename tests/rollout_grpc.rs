//! `rl rollout-worker` as its own process: started on a free port over a tiny model, driven
//! through [`RemoteWorker`] (Generate, Health, UpdateWeights, the token), stopped with SIGTERM;
//! and every kind of bad input refused with a clear message and exit code 2.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::{Served, rl, stderr, tiny_word_model};
use rl_rollout::{
    GenerateRequest, Prompt, RolloutError, RolloutWorker, SamplingParams,
    remote::{ClientOptions, RemoteWorker},
};
use tch::{Device, Kind, Tensor};

const TOKEN_VAR: &str = "RL_TEST_ROLLOUT_TOKEN";
const TOKEN: &str = "test-secret-7f3a";

/// Starts `rl rollout-worker` over `model` on a free port, with the token.
fn start_worker(model: &Path, log: PathBuf) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
    command
        .args(["rollout-worker", "--listen", "127.0.0.1:0", "--model"])
        .arg(model)
        .args(["--device", "cpu", "--max-batch", "4", "--max-seq-len", "64"])
        .args(["--token-env", TOKEN_VAR])
        .env(TOKEN_VAR, TOKEN);
    let worker = Served::start(command, log);
    let line = &worker.line;
    assert!(
        line.contains("cpu") && line.contains("max batch 4") && line.contains("token required"),
        "{line}"
    );
    worker
}

fn greedy(prompt: Prompt, n: u32) -> GenerateRequest {
    GenerateRequest {
        prompt,
        params: SamplingParams {
            ignore_eos: true,
            ..SamplingParams::greedy(n)
        },
    }
}

#[test]
fn a_worker_process_serves_generate_health_and_weight_updates() {
    let (tmp, model) = tiny_word_model();
    let worker = start_worker(&model, tmp.path().join("worker.log"));
    let addr = worker.addr.clone();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let outsider = RemoteWorker::connect(&addr, ClientOptions::default())
            .await
            .unwrap();
        let err = outsider.info().await.unwrap_err();
        assert!(err.to_string().contains("Unauthenticated"), "{err}");

        let client = RemoteWorker::connect(
            &addr,
            ClientOptions {
                token: Some(TOKEN.into()),
                chunk_bytes: 4096,
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap();
        let info = client.info().await.unwrap();
        assert_eq!(
            (
                info.policy_version,
                info.device.as_str(),
                info.max_batch,
                info.max_seq_len
            ),
            (0, "cpu", 4, 64)
        );

        let generate = |requests: Vec<GenerateRequest>| async {
            let mut stream = client.generate(requests).await.unwrap();
            let mut events = Vec::new();
            while let Some(e) = stream.recv().await {
                events.push(e);
            }
            events.sort_by_key(|e| match e {
                Ok(c) => c.request,
                Err(e) => e.request,
            });
            events
        };
        let requests = || {
            vec![
                greedy(Prompt::Text("t5 t9 t14".into()), 4),
                greedy(Prompt::Tokens(vec![]), 4),
                greedy(Prompt::Tokens(vec![7, 8]), 3),
            ]
        };
        let before = generate(requests()).await;
        assert_eq!(before.len(), 3);
        let first = before[0].as_ref().unwrap();
        assert_eq!(
            (first.prompt_ids.as_slice(), first.token_ids.len()),
            (&[5, 9, 14][..], 4)
        );
        assert!(before[1].as_ref().unwrap_err().message.contains("empty"));
        assert_eq!(before[2].as_ref().unwrap().token_ids.len(), 3);

        tch::manual_seed(0);
        let head = Tensor::randn([128, 64], (Kind::Float, Device::Cpu));
        client
            .update_weights(1, vec![("lm_head.weight".into(), head.shallow_clone())])
            .await
            .unwrap();
        assert_eq!(client.info().await.unwrap().policy_version, 1);
        let after = generate(requests()).await;
        let first_after = after[0].as_ref().unwrap();
        assert_eq!(first_after.policy_version, 1);
        assert_ne!(
            first_after.token_ids, first.token_ids,
            "new weights, new output"
        );

        let stale = client
            .update_weights(1, vec![("lm_head.weight".into(), head)])
            .await
            .unwrap_err();
        assert!(
            matches!(&stale, RolloutError::Weights(m) if m.contains("version 1 is not newer")),
            "{stale}"
        );
    });
    worker.stop();
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let (tmp, model) = tiny_word_model();
    let model = model.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--model", "no/such/model"], "no model \"no/such/model\""),
        (
            &["--model", model, "--listen", "not-an-address"],
            "rollout worker: cannot listen on not-an-address",
        ),
        (
            &["--model", model, "--token-env", "RL_TEST_NO_SUCH_VARIABLE"],
            "RL_TEST_NO_SUCH_VARIABLE is unset",
        ),
        (
            &["--model", model, "--max-seq-len", "100000"],
            "max_seq_len = 100000 exceeds the model's context of 256 tokens",
        ),
        (&["--model", model, "--device", "cuda:7"], "cuda:7"),
        (
            &["--model", model, "--max-batch", "1000000000000"],
            "for '--max-batch <MAX_BATCH>': 1000000000000 is not in 1..=65536",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["rollout-worker"];
        all.extend_from_slice(args);
        for (flag, default) in [("--listen", "127.0.0.1:0"), ("--device", "cpu")] {
            if !args.contains(&flag) {
                all.extend([flag, default]);
            }
        }
        let out = rl(tmp.path(), &all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "rl {all:?}: {err}");
        assert!(err.contains(needle), "rl {all:?}: {err:?} lacks {needle:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
