//! The reward service in one process over loopback gRPC: `RewardServer` and `RemoteScorer`
//! (and raw tonic calls where the status code matters) — scores, limits, deadlines,
//! backpressure, retries, tokens, scorer failures and undecodable messages.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rl_core::{
    RewardError, RewardFn, Score, Scoring, Task,
    config::{RewardConfig, RewardKind},
};
use rl_proto::v1::{self as pb, reward_service_client::RewardServiceClient};
use rl_reward::{
    NumericMatch, Part, TagFormat, WeightedSum,
    remote::{ClientOptions, RemoteScorer, RewardServer, ServerOptions},
};
use tokio::runtime::Runtime;
use tonic::{Code, Request, Status, transport::Channel};

/// Reward = length of the response, part `len` the same; sleeps 1.5 s on "slow", NaN on
/// "nan", panics on "panic", fails on "fail"; reward = metadata `target` when present.
/// Records the size of every batch it sees.
#[derive(Default)]
struct Probe {
    batches: Mutex<Vec<usize>>,
}

impl RewardFn for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        self.batches.lock().unwrap().push(batch.len());
        let mut out = Vec::new();
        for s in batch {
            let reward = match s.response {
                "slow" => {
                    std::thread::sleep(Duration::from_millis(1500));
                    0.0
                }
                "nan" => f64::NAN,
                "panic" => panic!("probe told to panic"),
                "fail" => {
                    return Err(RewardError {
                        reward: "probe".into(),
                        message: "told to fail".into(),
                    });
                }
                r => s
                    .task
                    .metadata
                    .get("target")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(r.len() as f64),
            };
            out.push(Score {
                reward,
                parts: BTreeMap::from([("len".to_owned(), s.response.len() as f64)]),
            });
        }
        Ok(out)
    }
}

/// A server over `scorer` on a free port; the runtime keeps it alive.
fn serve(scorer: Arc<dyn RewardFn>, options: ServerOptions) -> (Runtime, String) {
    let runtime = Runtime::new().unwrap();
    let server = runtime
        .block_on(RewardServer::bind("127.0.0.1:0", options))
        .unwrap();
    let addr = server.local_addr().to_string();
    runtime.spawn(server.serve(scorer, std::future::pending()));
    (runtime, addr)
}

fn probe_server(options: ServerOptions) -> (Runtime, String, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let (rt, addr) = serve(probe.clone(), options);
    (rt, addr, probe)
}

fn raw(rt: &Runtime, addr: &str) -> RewardServiceClient<Channel> {
    rt.block_on(RewardServiceClient::connect(format!("http://{addr}")))
        .unwrap()
}

fn item(response: &str) -> pb::ScoreItem {
    pb::ScoreItem {
        task_id: "t".into(),
        messages: vec![pb::ChatMessage {
            role: "user".into(),
            content: "What is 2 + 2?".into(),
        }],
        answer: Some("4".into()),
        metadata: Default::default(),
        response: response.into(),
    }
}

fn score_raw(
    rt: &Runtime,
    addr: &str,
    items: Vec<pb::ScoreItem>,
    timeout: Option<Duration>,
) -> Result<pb::ScoreReply, Status> {
    let mut client = raw(rt, addr);
    let mut request = Request::new(pb::ScoreRequest { items });
    if let Some(t) = timeout {
        request.set_timeout(t);
    }
    rt.block_on(client.score(request)).map(|r| r.into_inner())
}

fn quick(attempts: u32) -> ClientOptions {
    ClientOptions {
        attempts,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..ClientOptions::default()
    }
}

fn tasks(n: usize) -> Vec<Task> {
    (0..n)
        .map(|i| {
            Task::single_turn(
                format!("{i}"),
                format!("What is {i} + 1?"),
                Some((i + 1).to_string()),
            )
        })
        .collect()
}

fn pairs<'a>(tasks: &'a [Task], replies: &'a [String]) -> Vec<Scoring<'a>> {
    tasks
        .iter()
        .zip(replies)
        .map(|(task, response)| Scoring { task, response })
        .collect()
}

/// Scores `replies` (one task each) through `remote`, which must fail with every needle.
fn assert_fails(remote: &RemoteScorer, replies: &[String], needles: &[&str]) {
    let tasks = tasks(replies.len());
    let err = remote
        .score(&pairs(&tasks, replies))
        .unwrap_err()
        .to_string();
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn remote_scores_equal_local_scores() {
    let rule: Arc<dyn RewardFn> = Arc::new(
        WeightedSum::new(
            "rule",
            vec![
                Part::new("correct", 1.0, NumericMatch::default()),
                Part::new("format", 0.5, TagFormat::new(["answer"]).unwrap()),
            ],
        )
        .unwrap(),
    );
    let (_rt, addr) = serve(rule.clone(), ServerOptions::default());
    let tasks = tasks(6);
    // Right, wrong, tagged, empty (allowed: scored like any reply), unicode, long.
    let replies: Vec<String> = vec![
        "1".into(),
        "The answer is 3".into(),
        "<answer>3</answer>".into(),
        String::new(),
        "ünïcødé → 5 ✓".into(),
        "x".repeat(10_000) + " 6",
    ];
    let batch = pairs(&tasks, &replies);
    let remote = RemoteScorer::new(&addr, quick(1)).unwrap();
    let got = remote.score(&batch).unwrap();
    assert_eq!(got, rule.score(&batch).unwrap());
    assert_eq!(got[3].reward, 0.0, "the empty reply scores 0");
    assert!(got[0].reward > 0.0 && got[2].parts["format"] > 0.0);
    assert_eq!(remote.score(&[]).unwrap(), vec![]);
    let health = remote.health().unwrap();
    assert_eq!(health.scorer, "rule");
    assert_eq!(health.max_items, 4096);
}

#[test]
fn metadata_and_messages_reach_the_scorer() {
    let (_rt, addr, _) = probe_server(ServerOptions::default());
    let mut task = Task::single_turn("m", "p", None);
    task.metadata = serde_json::json!({"target": 42, "numbers": [1, 2]});
    let replies = ["abc".to_owned()];
    let remote = RemoteScorer::new(&addr, quick(1)).unwrap();
    let got = remote
        .score(&pairs(std::slice::from_ref(&task), &replies))
        .unwrap();
    assert_eq!(got[0].reward, 42.0);
    assert_eq!(got[0].parts["len"], 3.0);
}

#[test]
fn a_client_deadline_gives_deadline_exceeded_and_the_server_goes_on() {
    let (rt, addr, _) = probe_server(ServerOptions::default());
    let start = Instant::now();
    let err = score_raw(
        &rt,
        &addr,
        vec![item("slow")],
        Some(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("not scored in time"), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(1200));
    let reply = score_raw(&rt, &addr, vec![item("ok")], None).unwrap();
    assert_eq!(reply.results.len(), 1);

    // Through RemoteScorer: retried, then a clear error.
    let options = ClientOptions {
        timeout: Duration::from_millis(200),
        ..quick(2)
    };
    let remote = RemoteScorer::new(&addr, options).unwrap();
    assert_fails(
        &remote,
        &["slow".to_owned()],
        &[
            addr.as_str(),
            "2 attempts",
            "DeadlineExceeded",
            "reward.timeout_s",
        ],
    );
}

#[test]
fn the_server_limit_per_request_gives_deadline_exceeded() {
    let options = ServerOptions {
        max_request_time: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let (rt, addr, _) = probe_server(options);
    let err = score_raw(&rt, &addr, vec![item("slow")], None).unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("200 ms"), "{err:?}");
    assert!(score_raw(&rt, &addr, vec![item("ok")], None).is_ok());
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let options = ServerOptions {
        max_concurrency: 1,
        max_queue: 0,
        ..ServerOptions::default()
    };
    let (rt, addr, _) = probe_server(options);
    let mut busy = raw(&rt, &addr);
    let running = rt.spawn(async move {
        busy.score(pb::ScoreRequest {
            items: vec![item("slow")],
        })
        .await
    });
    let mut health = raw(&rt, &addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rt
        .block_on(health.health(pb::RewardHealthRequest {}))
        .unwrap()
        .into_inner()
        .in_flight
        == 0
    {
        assert!(Instant::now() < deadline, "the slow batch never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    let err = score_raw(&rt, &addr, vec![item("ok")], None).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("--max-queue"), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "not refused promptly"
    );
    let h = rt
        .block_on(health.health(pb::RewardHealthRequest {}))
        .unwrap()
        .into_inner();
    assert_eq!((h.in_flight, h.capacity, h.max_queue), (1, 1, 0));
    assert!(rt.block_on(running).unwrap().is_ok());
    assert!(score_raw(&rt, &addr, vec![item("ok")], None).is_ok());
}

#[test]
fn retries_reach_a_server_that_comes_up_late() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        let rt = Runtime::new().unwrap();
        let server = rt
            .block_on(RewardServer::bind(
                &format!("127.0.0.1:{port}"),
                ServerOptions::default(),
            ))
            .unwrap();
        rt.block_on(async {
            let stop = tokio::time::sleep(Duration::from_secs(5));
            server.serve(Arc::new(Probe::default()), stop).await
        })
        .unwrap();
    });
    let options = ClientOptions {
        attempts: 10,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        ..ClientOptions::default()
    };
    let remote = RemoteScorer::new(&addr, options).unwrap();
    let tasks = tasks(2);
    let replies = ["ab".to_owned(), "abcd".to_owned()];
    let got = remote.score(&pairs(&tasks, &replies)).unwrap();
    assert_eq!((got[0].reward, got[1].reward), (2.0, 4.0));
    drop(remote);
    late.join().unwrap();
}

#[test]
fn an_unreachable_server_fails_after_the_attempts_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let remote = RemoteScorer::new(&addr, quick(3)).unwrap();
    assert_fails(
        &remote,
        &["x".to_owned()],
        &[
            addr.as_str(),
            "3 attempts",
            "Unavailable",
            "rl reward-server",
        ],
    );
}

#[test]
fn non_retryable_errors_fail_at_once() {
    let options = ServerOptions {
        token: Some("s3cret".into()),
        max_item_bytes: 100,
        ..ServerOptions::default()
    };
    let (_rt, addr, probe) = probe_server(options);
    let slow_retries = ClientOptions {
        attempts: 5,
        backoff: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    let tasks = tasks(2);
    let replies = ["ok".to_owned(), "y".repeat(200)];

    let start = Instant::now();
    let no_token = RemoteScorer::new(&addr, slow_retries.clone()).unwrap();
    assert_fails(
        &no_token,
        &replies,
        &["1 attempt", "Unauthenticated", "RL_REWARD_TOKEN"],
    );

    let with_token = ClientOptions {
        token: Some("s3cret".into()),
        ..slow_retries
    };
    let remote = RemoteScorer::new(&addr, with_token).unwrap();
    assert_fails(
        &remote,
        &replies,
        &["1 attempt", "InvalidArgument", "item 1", "--max-item-kib"],
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a non-retryable error was retried"
    );
    assert!(
        probe.batches.lock().unwrap().is_empty(),
        "the scorer saw a refused batch"
    );
    // The right token and sizes pass.
    assert_eq!(
        remote.score(&pairs(&tasks[..1], &replies[..1])).unwrap()[0].reward,
        2.0
    );
}

#[test]
fn tokens_are_required_and_accepted() {
    let options = ServerOptions {
        token: Some("s3cret".into()),
        ..ServerOptions::default()
    };
    let (rt, addr, _) = probe_server(options);
    let err = score_raw(&rt, &addr, vec![item("a")], None).unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("reward server needs"), "{err:?}");
    let wrong = RemoteScorer::new(
        &addr,
        ClientOptions {
            token: Some("guess".into()),
            ..quick(1)
        },
    )
    .unwrap();
    assert!(wrong.health().is_err());
    let right = RemoteScorer::new(
        &addr,
        ClientOptions {
            token: Some("s3cret".into()),
            ..quick(1)
        },
    )
    .unwrap();
    assert_eq!(right.health().unwrap().scorer, "probe");
    assert!(
        RemoteScorer::new(
            &addr,
            ClientOptions {
                token: Some("has space".into()),
                ..quick(1)
            }
        )
        .is_err()
    );
}

#[test]
fn scorer_failures_fail_that_request_only() {
    let (rt, addr, _) = probe_server(ServerOptions::default());
    for (reply, needle) in [
        ("nan", "non-finite reward (NaN)"),
        ("fail", "told to fail"),
        ("panic", "panicked"),
    ] {
        let err = score_raw(&rt, &addr, vec![item("ok"), item(reply)], None).unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err:?}");
        assert!(err.message().contains(needle), "{needle:?}: {err:?}");
        if reply == "nan" {
            assert!(err.message().contains("item 1"), "{err:?}");
        }
        let ok = score_raw(&rt, &addr, vec![item("ok")], None).unwrap();
        assert_eq!(ok.results.len(), 1, "the next request after {reply:?}");
    }
    let remote = RemoteScorer::new(&addr, quick(3)).unwrap();
    let tasks = tasks(1);
    let err = remote
        .score(&pairs(&tasks, &["nan".to_owned()]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 attempt") && err.contains("non-finite"),
        "{err}"
    );
}

#[test]
fn limits_are_enforced_with_messages_naming_the_item() {
    let options = ServerOptions {
        max_items: 3,
        max_item_bytes: 1000,
        ..ServerOptions::default()
    };
    let (rt, addr, _) = probe_server(options);
    let cases = [
        (vec![], "the batch is empty: send 1 to 3 items"),
        (
            vec![item("a"); 4],
            "the batch has 4 items; this server takes at most 3",
        ),
        (
            vec![item("a"), item(&"z".repeat(2000))],
            "item 1 (task \"t\") holds",
        ),
    ];
    for (items, needle) in cases {
        let err = score_raw(&rt, &addr, items, None).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(needle), "{needle:?}: {err:?}");
    }
    // Bad items are refused alone; the others are scored.
    let mut robot = item("abc");
    robot.messages[0].role = "robot".into();
    let mut bad_meta = item("abc");
    bad_meta.metadata.insert("target".into(), "{oops".into());
    let reply = score_raw(&rt, &addr, vec![robot, item(""), bad_meta], None).unwrap();
    let results: Vec<_> = reply
        .results
        .into_iter()
        .map(|r| r.result.unwrap())
        .collect();
    use pb::score_result::Result as R;
    assert!(
        matches!(&results[0], R::Error(e) if e.contains("item 0: message 0 has role \"robot\""))
    );
    assert!(matches!(&results[1], R::Score(s) if s.reward == 0.0));
    assert!(
        matches!(&results[2], R::Error(e) if e.contains("item 2: metadata \"target\" is not JSON"))
    );
}

#[test]
fn big_batches_are_split_to_the_server_cap() {
    let options = ServerOptions {
        max_items: 10,
        ..ServerOptions::default()
    };
    let (_rt, addr, probe) = probe_server(options);
    let tasks = tasks(25);
    let replies: Vec<String> = (0..25).map(|i| "x".repeat(i)).collect();
    let remote = RemoteScorer::new(&addr, quick(1)).unwrap();
    let got = remote.score(&pairs(&tasks, &replies)).unwrap();
    let rewards: Vec<f64> = got.iter().map(|s| s.reward).collect();
    assert_eq!(rewards, (0..25).map(f64::from).collect::<Vec<_>>());
    assert_eq!(*probe.batches.lock().unwrap(), vec![10, 10, 5]);
}

/// `ScoreRequest` with `bytes` where the proto has `string`: lets a test send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRequest {
    #[prost(message, repeated, tag = "1")]
    items: Vec<RawItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawItem {
    #[prost(bytes = "vec", tag = "5")]
    response: Vec<u8>,
}

#[test]
fn invalid_utf8_is_refused_clearly_and_the_server_survives() {
    let (rt, addr, probe) = probe_server(ServerOptions::default());
    let channel = rt
        .block_on(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect(),
        )
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let request = RawRequest {
        items: vec![RawItem {
            response: vec![b'o', 0xff, 0xfe, b'k'],
        }],
    };
    let err = rt
        .block_on(async {
            grpc.ready().await.unwrap();
            grpc.unary::<_, pb::ScoreReply, _>(
                Request::new(request),
                "/rl.v1.RewardService/Score".parse().unwrap(),
                tonic_prost::ProstCodec::default(),
            )
            .await
        })
        .unwrap_err();
    assert!(
        err.message().contains("UTF-8") && err.message().contains("response"),
        "{err:?}"
    );
    assert!(probe.batches.lock().unwrap().is_empty());
    let health = raw(&rt, &addr);
    let mut health = health;
    assert!(
        rt.block_on(health.health(pb::RewardHealthRequest {}))
            .is_ok()
    );
    assert!(score_raw(&rt, &addr, vec![item("ok")], None).is_ok());
}

#[test]
fn connect_builds_the_remote_kind_from_the_config() {
    let (_rt, addr, _) = probe_server(ServerOptions::default());
    let rule = RewardConfig::default();
    let err = rl_reward::remote::connect(&rule).unwrap_err().to_string();
    assert!(err.contains("not a remote reward"), "{err}");
    let config = RewardConfig {
        kind: RewardKind::Remote,
        url: Some(format!("http://{addr}")),
        attempts: 1,
        ..RewardConfig::default()
    };
    let remote = rl_reward::remote::connect(&config).unwrap();
    let tasks = tasks(1);
    assert_eq!(
        remote.score(&pairs(&tasks, &["abc".to_owned()])).unwrap()[0].reward,
        3.0
    );
}
