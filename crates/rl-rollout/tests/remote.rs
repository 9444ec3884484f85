//! The gRPC rollout service in one process: a [`RolloutServer`] on 127.0.0.1:0 over a
//! tiny-model [`LocalWorker`], driven through [`RemoteWorker`] (and, for malformed messages, the
//! raw generated client). Remote completions equal local ones, bad requests and bad weight
//! updates are refused alone, chunked updates land exactly, the token and the message cap are
//! enforced, and a client that walks away does not stop the server.

#![allow(clippy::unwrap_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::{greedy, request};
use rl_proto::v1 as pb;
use rl_rollout::{
    Completion, EngineConfig, Event, GenerateRequest, LocalWorker, Prompt, RequestError,
    RolloutError, RolloutWorker, SamplingParams, WorkerInfo,
    remote::{ClientOptions, RemoteWorker, RolloutServer, ServerOptions},
    worker::{BoxFuture, EventStream, NamedTensors},
};
use tch::{Device, Kind, Tensor};
use tokio::sync::mpsc;

fn local() -> Arc<LocalWorker> {
    let worker = LocalWorker::spawn("test-worker", || {
        Ok(common::tiny_engine(
            "tiny-llama",
            EngineConfig {
                max_batch: 4,
                ..EngineConfig::default()
            },
        ))
    })
    .unwrap();
    Arc::new(worker)
}

/// Serves `worker` on a free port until the test's runtime ends; returns the address.
async fn serve(worker: Arc<dyn RolloutWorker>, options: ServerOptions) -> String {
    let server = RolloutServer::bind("127.0.0.1:0", options).await.unwrap();
    let addr = server.local_addr().to_string();
    tokio::spawn(server.serve(worker, std::future::pending()));
    addr
}

async fn connect(addr: &str, options: ClientOptions) -> RemoteWorker {
    RemoteWorker::connect(addr, options).await.unwrap()
}

/// A mixed batch: token and text prompts, greedy and seeded sampling with n = 2.
fn mixed() -> Vec<GenerateRequest> {
    vec![
        request(&[5, 9, 14], greedy(6)),
        GenerateRequest {
            prompt: Prompt::Text("t7 t3 t3 t40".into()),
            params: greedy(4),
        },
        request(
            &[11, 12],
            SamplingParams {
                n: 2,
                temperature: 1.0,
                top_k: 20,
                seed: Some(7),
                max_new_tokens: 5,
                ..SamplingParams::default()
            },
        ),
        request(&[30, 31, 32, 33], greedy(3)),
    ]
}

async fn collect(mut stream: EventStream) -> (Vec<Completion>, Vec<RequestError>) {
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    while let Some(event) = stream.recv().await {
        match event {
            Ok(c) => done.push(c),
            Err(e) => refused.push(e),
        }
    }
    done.sort_by_key(|c| (c.request, c.sample));
    refused.sort_by_key(|e| e.request);
    (done, refused)
}

async fn run(
    worker: &dyn RolloutWorker,
    requests: Vec<GenerateRequest>,
) -> (Vec<Completion>, Vec<RequestError>) {
    collect(worker.generate(requests).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_completions_equal_the_local_workers() {
    let worker = local();
    let addr = serve(worker.clone(), ServerOptions::default()).await;
    let remote = connect(&addr, ClientOptions::default()).await;

    let (want, none) = run(worker.as_ref(), mixed()).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(want.len(), 5);
    let (got, refused) = run(&remote, mixed()).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(got, want);
    assert_eq!(
        got[1].prompt_ids,
        [7, 3, 3, 40],
        "the text prompt is tokenized"
    );

    assert_eq!(remote.info().await.unwrap(), worker.info().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_refused_alone() {
    let worker = local();
    let addr = serve(worker.clone(), ServerOptions::default()).await;
    let remote = connect(&addr, ClientOptions::default()).await;

    let requests = vec![
        request(&[5, 9], greedy(3)),
        request(&[], greedy(3)),
        request(
            &[5, 9],
            SamplingParams {
                top_p: 0.0,
                ..greedy(3)
            },
        ),
        request(&[6], greedy(4)),
    ];
    let (done, refused) = run(&remote, requests).await;
    let done: Vec<_> = done
        .iter()
        .map(|c| (c.request, c.token_ids.len()))
        .collect();
    assert_eq!(done, [(0, 3), (3, 4)]);
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].request, 1);
    assert!(refused[0].message.contains("empty"), "{:?}", refused[0]);
    assert_eq!(refused[1].request, 2);
    assert!(
        refused[1].message.contains("top_p = 0: must be in (0, 1]"),
        "{:?}",
        refused[1]
    );

    // A message the domain types cannot express (no prompt at all), through the raw client:
    // refused under its own index while the requests around it complete under theirs.
    let mut raw =
        pb::rollout_service_client::RolloutServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    let good = |ids: Vec<u32>| pb::PromptRequest {
        prompt: Some(pb::prompt_request::Prompt::Tokens(pb::TokenIds { ids })),
        params: None,
    };
    let message = pb::GenerateRequest {
        requests: vec![
            good(vec![5, 9]),
            pb::PromptRequest::default(),
            good(vec![6]),
        ],
    };
    let mut stream = raw.generate(message).await.unwrap().into_inner();
    let mut events = Vec::new();
    while let Some(e) = stream.message().await.unwrap() {
        events.push(e.event.unwrap());
    }
    let mut seen: Vec<(u32, bool)> = events
        .iter()
        .map(|e| match e {
            pb::generate_event::Event::Completion(c) => (c.request, true),
            pb::generate_event::Event::Error(e) => {
                assert!(e.message.contains("no prompt"), "{e:?}");
                (e.request, false)
            }
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [(0, true), (1, false), (2, true)]);
}

/// A random tensor shaped like the model's `name`, in `kind`.
fn random(shape: &[i64], kind: Kind, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Float, Device::Cpu)).to_kind(kind)
}

/// `len` ones in `kind`, the middle one `value`.
fn with_one(len: i64, kind: Kind, value: f64) -> Tensor {
    let t = Tensor::ones([len], (kind, Device::Cpu));
    let _ = t.get(len / 2).fill_(value);
    t
}

fn new_weights() -> NamedTensors {
    vec![
        // 32 KiB in f32: split into 33 chunks of at most 1000 bytes.
        ("lm_head.weight".into(), random(&[128, 64], Kind::Float, 1)),
        (
            "model.embed_tokens.weight".into(),
            random(&[128, 64], Kind::BFloat16, 2),
        ),
    ]
}

fn probe() -> Vec<GenerateRequest> {
    vec![
        request(&[5, 9, 14], greedy(8)),
        request(&[21, 22], greedy(8)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_weight_updates_are_applied_like_local_ones() {
    let served = local();
    let addr = serve(served.clone(), ServerOptions::default()).await;
    let small_chunks = ClientOptions {
        chunk_bytes: 1000,
        ..ClientOptions::default()
    };
    let remote = connect(&addr, small_chunks).await;
    let reference = local();

    let (before, _) = run(&remote, probe()).await;
    remote.update_weights(1, new_weights()).await.unwrap();
    reference.update_weights(1, new_weights()).await.unwrap();
    assert_eq!(remote.info().await.unwrap().policy_version, 1);

    let (after, _) = run(&remote, probe()).await;
    let (want, _) = run(reference.as_ref(), probe()).await;
    assert_eq!(after, want, "the reassembled weights are the ones sent");
    assert!(after.iter().all(|c| c.policy_version == 1));
    let ids = |cs: &[Completion]| cs.iter().map(|c| c.token_ids.clone()).collect::<Vec<_>>();
    assert_ne!(ids(&after), ids(&before), "new weights, new output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_updates_keep_the_old_weights() {
    let worker = local();
    let addr = serve(worker.clone(), ServerOptions::default()).await;
    let remote = connect(&addr, ClientOptions::default()).await;
    remote.update_weights(3, new_weights()).await.unwrap();
    let (before, _) = run(&remote, probe()).await;

    let head = || random(&[128, 64], Kind::Float, 9);
    let cases: Vec<(u64, NamedTensors, &str)> = vec![
        (
            4,
            vec![
                ("lm_head.weight".into(), head()),
                ("model.norm.weight".into(), random(&[65], Kind::Float, 3)),
            ],
            "model.norm.weight: shape [65] sent, the model's is [64]",
        ),
        (
            4,
            vec![
                ("lm_head.weight".into(), head()),
                ("no.such.weight".into(), head()),
            ],
            "the model has no weight named \"no.such.weight\"",
        ),
        (
            3,
            vec![("lm_head.weight".into(), head())],
            "version 3 is not newer than the current version 3",
        ),
        (
            4,
            vec![
                ("lm_head.weight".into(), head()),
                (
                    "model.norm.weight".into(),
                    with_one(64, Kind::Float, f64::NAN),
                ),
            ],
            "model.norm.weight: 1 of its 64 values are NaN or infinite",
        ),
        (
            4,
            vec![(
                "model.embed_tokens.weight".into(),
                with_one(128 * 64, Kind::BFloat16, f64::INFINITY).view([128, 64]),
            )],
            "model.embed_tokens.weight: 1 of its 8192 values are NaN or infinite",
        ),
        (4, vec![], "the update is empty"),
    ];
    for (version, tensors, needle) in cases {
        let err = remote.update_weights(version, tensors).await.unwrap_err();
        let RolloutError::Weights(message) = &err else {
            panic!("not a refused update: {err}");
        };
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        assert_eq!(remote.info().await.unwrap().policy_version, 3);
        assert_eq!(
            run(&remote, probe()).await.0,
            before,
            "the old weights stay"
        );
    }
}

/// A two-slot worker over the tiny Llama with a 32768-token context (same weights), in a
/// temporary folder: one completion that long decodes for minutes on a CPU.
fn long_context_worker() -> (tempfile::TempDir, Arc<LocalWorker>) {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = common::tiny_model_dir("tiny-llama");
    std::fs::copy(
        fixture.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let config = std::fs::read_to_string(fixture.join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["max_position_embeddings"] = 32768.into();
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    let dir = tmp.path().to_owned();
    let worker = LocalWorker::spawn("long-worker", move || {
        let config = EngineConfig {
            max_batch: 2,
            max_seq_len: Some(32768),
            ..EngineConfig::default()
        };
        Ok(common::engine_at(&dir, config, 2))
    })
    .unwrap();
    (tmp, Arc::new(worker))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_generate_frees_the_worker_for_updates_and_new_calls() {
    let (_tmp, worker) = long_context_worker();
    let addr = serve(worker, ServerOptions::default()).await;
    let remote = connect(&addr, ClientOptions::default()).await;
    let long = SamplingParams {
        n: 2,
        ..greedy(30_000)
    };
    let mut stream = remote
        .generate(vec![request(&[5, 9, 14], long)])
        .await
        .unwrap();
    // Let both slots start decoding, then walk away: the call is cancelled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(stream.try_recv().is_err(), "the long call is still running");
    drop(stream);

    // An update waits for the batch in flight, and the cancelled batch is gone within a
    // decode step or two: seconds at most, where finishing it would take minutes.
    let prompt = Duration::from_secs(20);
    let update = tokio::time::timeout(prompt, remote.update_weights(1, new_weights())).await;
    update
        .expect("the update waited for the cancelled generation")
        .unwrap();
    // Both slots are free again: a new call fills them and finishes.
    let (done, refused) = tokio::time::timeout(prompt, run(&remote, probe()))
        .await
        .expect("a new call waited for the cancelled generation");
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|c| c.policy_version == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required() {
    let options = ServerOptions {
        token: Some("s3cret-token".into()),
        ..ServerOptions::default()
    };
    let addr = serve(local(), options).await;
    for token in [None, Some("wrong-token")] {
        let client = connect(
            &addr,
            ClientOptions {
                token: token.map(Into::into),
                ..ClientOptions::default()
            },
        )
        .await;
        let errors = [
            client.info().await.unwrap_err(),
            client.generate(probe()).await.unwrap_err(),
            client.update_weights(1, new_weights()).await.unwrap_err(),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(
                matches!(err, RolloutError::Remote { .. })
                    && text.contains("Unauthenticated")
                    && text.contains(&addr),
                "{text}"
            );
        }
    }
    let client = connect(
        &addr,
        ClientOptions {
            token: Some("s3cret-token".into()),
            ..ClientOptions::default()
        },
    )
    .await;
    assert_eq!(client.info().await.unwrap().policy_version, 0);
    assert_eq!(run(&client, probe()).await.0.len(), 2);
}

/// A worker that reports each time the server lets go of a Generate stream before its end.
struct Watched {
    inner: Arc<LocalWorker>,
    released: mpsc::UnboundedSender<()>,
}

impl RolloutWorker for Watched {
    fn generate(
        &self,
        requests: Vec<GenerateRequest>,
    ) -> BoxFuture<'_, Result<EventStream, RolloutError>> {
        Box::pin(async move {
            let mut inner = self.inner.generate(requests).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let released = self.released.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tx.closed() => {
                            let _ = released.send(());
                            return;
                        }
                        event = inner.recv() => match event {
                            Some(event) => {
                                let _ = tx.send(event);
                            }
                            None => return,
                        },
                    }
                }
            });
            Ok(rx)
        })
    }

    fn update_weights(
        &self,
        version: u64,
        tensors: NamedTensors,
    ) -> BoxFuture<'_, Result<(), RolloutError>> {
        self.inner.update_weights(version, tensors)
    }

    fn info(&self) -> BoxFuture<'_, Result<WorkerInfo, RolloutError>> {
        self.inner.info()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_its_stream_does_not_stop_the_server() {
    let (released, mut releases) = mpsc::unbounded_channel();
    let watched = Watched {
        inner: local(),
        released,
    };
    let addr = serve(Arc::new(watched), ServerOptions::default()).await;
    {
        let quitter = connect(&addr, ClientOptions::default()).await;
        let mut requests = vec![request(&[5], greedy(1))];
        requests.extend((0..7).map(|i| request(&[6 + i], greedy(240))));
        let mut stream = quitter.generate(requests).await.unwrap();
        let first: Event = stream.recv().await.unwrap();
        assert_eq!(first.unwrap().request, 0);
        // The stream and the connection go away mid-batch.
    }
    // The server lets go of the worker's stream, which cancels the rest of that batch
    // (tests/worker.rs: a dropped stream cancels its work).
    let released = tokio::time::timeout(Duration::from_secs(30), releases.recv()).await;
    assert_eq!(
        released,
        Ok(Some(())),
        "the server kept the abandoned stream"
    );

    let other = connect(&addr, ClientOptions::default()).await;
    let (done, refused) = run(&other, probe()).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|c| c.token_ids.len() == 8));
    assert!(
        releases.try_recv().is_err(),
        "a finished stream is not a release"
    );
}

/// A worker whose Generate streams end before any completion.
struct Quitting(Arc<LocalWorker>);

impl RolloutWorker for Quitting {
    fn generate(
        &self,
        _: Vec<GenerateRequest>,
    ) -> BoxFuture<'_, Result<EventStream, RolloutError>> {
        Box::pin(async { Ok(mpsc::unbounded_channel().1) })
    }

    fn update_weights(&self, v: u64, t: NamedTensors) -> BoxFuture<'_, Result<(), RolloutError>> {
        self.0.update_weights(v, t)
    }

    fn info(&self) -> BoxFuture<'_, Result<WorkerInfo, RolloutError>> {
        self.0.info()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_early_fails_each_request_left() {
    let addr = serve(Arc::new(Quitting(local())), ServerOptions::default()).await;
    let remote = connect(&addr, ClientOptions::default()).await;
    let requests = vec![
        request(&[5], greedy(2)),
        request(&[6], SamplingParams { n: 3, ..greedy(2) }),
    ];
    let (done, refused) = run(&remote, requests).await;
    assert!(done.is_empty());
    let got: Vec<_> = refused
        .iter()
        .map(|e| (e.request, e.message.as_str()))
        .collect();
    let early = format!("remote rollout worker {addr} ended the stream early");
    assert_eq!(
        got,
        [
            (
                0,
                format!("{early}; 1 completion(s) of this request did not arrive").as_str()
            ),
            (
                1,
                format!("{early}; 3 completion(s) of this request did not arrive").as_str()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_refused() {
    let cap = 16 << 10;
    let options = ServerOptions {
        max_message_bytes: cap,
        ..ServerOptions::default()
    };
    let addr = serve(local(), options).await;
    let client = |chunk_bytes| {
        connect(
            &addr,
            ClientOptions {
                chunk_bytes,
                ..ClientOptions::default()
            },
        )
    };
    let remote = client(cap * 2).await;

    let huge = vec![GenerateRequest {
        prompt: Prompt::Text("t5 ".repeat(cap)),
        params: greedy(2),
    }];
    let err = remote.generate(huge).await.unwrap_err();
    assert!(
        matches!(err, RolloutError::Remote { .. })
            && err.to_string().contains("ResourceExhausted")
            && err.to_string().contains("--max-message-mib"),
        "{err}"
    );
    // lm_head is 32 KiB: one chunk is over the cap, 8 KiB chunks are not.
    let err = remote.update_weights(1, new_weights()).await.unwrap_err();
    assert!(err.to_string().contains("ResourceExhausted"), "{err}");
    assert_eq!(remote.info().await.unwrap().policy_version, 0);

    let chunked = client(8 << 10).await;
    chunked.update_weights(1, new_weights()).await.unwrap();
    assert_eq!(chunked.info().await.unwrap().policy_version, 1);
    assert_eq!(run(&remote, probe()).await.0.len(), 2, "still serving");
}

#[tokio::test]
async fn bad_addresses_are_clear_errors() {
    let err = RolloutServer::bind("not-an-address", ServerOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rollout worker: cannot listen on not-an-address: "),
        "{err}"
    );
    let taken = RolloutServer::bind("127.0.0.1:0", ServerOptions::default())
        .await
        .unwrap();
    let port = taken.local_addr().port().to_string();
    let err = RolloutServer::bind(&port, ServerOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("free port"), "{err}");

    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = RemoteWorker::connect(&free.to_string(), ClientOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("remote rollout worker {free}: ")),
        "{err}"
    );
}
