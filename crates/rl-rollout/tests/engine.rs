//! The engine on the tiny fixture models of every architecture: cached greedy decoding equals
//! recomputing the whole sequence each step, returned log-probs equal a teacher-forced pass,
//! continuous batching and prompt sharing change nothing, seeded samples do not depend on their
//! batch, stop conditions and bad requests behave, and weight updates are checked and applied.

#![allow(clippy::unwrap_used)]

mod common;

use common::{greedy, request, run, tiny_engine};
use rl_model::CausalLm;
use rl_rollout::{EngineConfig, FinishReason, SamplingParams};
use tch::{Kind, Tensor};

/// Greedy continuation by running the full sequence through the model at every step (no cache).
fn uncached_greedy(model: &dyn CausalLm, prompt: &[u32], new_tokens: usize) -> Vec<u32> {
    let _guard = tch::no_grad_guard();
    let mut ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
    for _ in 0..new_tokens {
        let input = Tensor::from_slice(&ids).unsqueeze(0);
        let hidden = model.hidden_states(&input, &input.ones_like());
        let last = hidden.select(1, ids.len() as i64 - 1);
        let logits = last.matmul(&model.lm_head().tr());
        ids.push(logits.argmax(-1, false).int64_value(&[0]));
    }
    ids[prompt.len()..].iter().map(|&t| t as u32).collect()
}

/// Teacher-forced log-probs of `completion` after `prompt`.
fn teacher_forced(model: &dyn CausalLm, prompt: &[u32], completion: &[u32]) -> Vec<f32> {
    let _guard = tch::no_grad_guard();
    let ids: Vec<i64> = prompt
        .iter()
        .chain(completion)
        .map(|&t| i64::from(t))
        .collect();
    let input = Tensor::from_slice(&ids).unsqueeze(0);
    let stats = rl_model::token_logprobs(model, &input, &input.ones_like(), 1.0, false, 4096);
    let all = Vec::<f32>::try_from(stats.logprobs.squeeze_dim(0).to_kind(Kind::Float)).unwrap();
    all[prompt.len() - 1..].to_vec()
}

/// The first position whose token has not appeared before it: where a stop can fire first.
fn first_fresh(tokens: &[u32]) -> usize {
    (1..tokens.len())
        .find(|&i| !tokens[..i].contains(&tokens[i]))
        .unwrap()
}

const PROMPTS: [&[u32]; 4] = [
    &[5, 9, 14],
    &[7, 3, 3, 8, 21, 40, 41],
    &[100, 4, 66, 12, 17, 90, 91, 92, 93, 5, 6, 2],
    &[11],
];

#[test]
fn cached_greedy_decoding_equals_full_recomputation_on_every_architecture() {
    for name in [
        "tiny-llama",
        "tiny-llama3-rope",
        "tiny-mistral",
        "tiny-qwen2",
        "tiny-gpt2",
    ] {
        let reference =
            rl_model::hf::load_dir(&common::tiny_model_dir(name), tch::Device::Cpu, Kind::Float)
                .unwrap();
        // Two slots for four prompts: finished slots are refilled mid-flight.
        let config = EngineConfig {
            max_batch: 2,
            ..EngineConfig::default()
        };
        let mut engine = tiny_engine(name, config);
        let requests: Vec<_> = PROMPTS
            .iter()
            .enumerate()
            .map(|(i, p)| request(p, greedy(10 + 4 * i as u32)))
            .collect();
        let (done, refused) = run(&mut engine, &requests);
        assert!(refused.is_empty(), "{name}: {refused:?}");
        assert_eq!(done.len(), PROMPTS.len(), "{name}");
        for (c, prompt) in done.iter().zip(PROMPTS) {
            let want = uncached_greedy(reference.model.as_ref(), prompt, c.token_ids.len());
            assert_eq!(c.token_ids, want, "{name}: prompt {prompt:?}");
            assert_eq!(c.token_ids.len(), 10 + 4 * c.request, "{name}");
            assert_eq!(c.finish_reason, FinishReason::Length);
            let forced = teacher_forced(reference.model.as_ref(), prompt, &c.token_ids);
            for (got, want) in c.logprobs.iter().zip(&forced) {
                assert!((got - want).abs() < 1e-4, "{name}: logprob {got} vs {want}");
            }
        }
    }
}

#[test]
fn sampled_logprobs_match_a_teacher_forced_pass_at_the_same_temperature() {
    let reference = rl_model::hf::load_dir(
        &common::tiny_model_dir("tiny-llama"),
        tch::Device::Cpu,
        Kind::Float,
    )
    .unwrap();
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    let params = SamplingParams {
        n: 3,
        seed: Some(1),
        max_new_tokens: 16,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    let (done, _) = run(&mut engine, &[request(PROMPTS[1], params)]);
    assert_eq!(done.len(), 3);
    assert_ne!(
        done[0].token_ids, done[1].token_ids,
        "samples of one prompt differ"
    );
    for c in &done {
        let forced = teacher_forced(reference.model.as_ref(), PROMPTS[1], &c.token_ids);
        for (got, want) in c.logprobs.iter().zip(&forced) {
            assert!((got - want).abs() < 1e-4, "logprob {got} vs {want}");
        }
    }
}

#[test]
fn a_seeded_sample_is_the_same_alone_and_in_a_crowded_batch() {
    let seeded = SamplingParams {
        n: 2,
        seed: Some(42),
        top_p: 0.9,
        max_new_tokens: 20,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    let (alone, _) = run(&mut engine, &[request(PROMPTS[2], seeded.clone())]);

    // 63 other requests (189 completions) through 16 slots.
    let mut crowd: Vec<_> = (0..63)
        .map(|i| {
            let params = SamplingParams {
                max_new_tokens: 5 + i % 20,
                temperature: 0.7,
                n: 3,
                ..SamplingParams::default()
            };
            request(PROMPTS[i as usize % 4], params)
        })
        .collect();
    crowd.insert(7, request(PROMPTS[2], seeded));
    let mut small = tiny_engine(
        "tiny-llama",
        EngineConfig {
            max_batch: 16,
            ..EngineConfig::default()
        },
    );
    let (done, _) = run(&mut small, &crowd);
    let in_crowd: Vec<_> = done.iter().filter(|c| c.request == 7).collect();
    assert_eq!(in_crowd.len(), 2);
    for (a, b) in alone.iter().zip(in_crowd) {
        assert_eq!(a.token_ids, b.token_ids, "sample {}", a.sample);
    }
}

#[test]
fn stop_tokens_and_stop_strings_end_a_completion_early() {
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    let (free, _) = run(&mut engine, &[request(PROMPTS[0], greedy(12))]);
    let tokens = &free[0].token_ids;
    let at = first_fresh(tokens);

    let by_id = SamplingParams {
        stop_token_ids: vec![tokens[at]],
        ..greedy(12)
    };
    let by_text = SamplingParams {
        stop: vec![format!("t{}", tokens[at])],
        ..greedy(12)
    };
    let (done, _) = run(
        &mut engine,
        &[request(PROMPTS[0], by_id), request(PROMPTS[0], by_text)],
    );
    for c in &done {
        assert_eq!(c.finish_reason, FinishReason::Stop);
        assert_eq!(c.token_ids, tokens[..=at], "ids keep the stop token");
    }
    let words: Vec<String> = tokens[..at].iter().map(|t| format!("t{t}")).collect();
    assert_eq!(
        done[1].text.trim_end(),
        words.join(" "),
        "text is cut before the stop string"
    );
}

#[test]
fn eos_ends_a_completion_unless_ignored() {
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    let (free, _) = run(&mut engine, &[request(PROMPTS[0], greedy(12))]);
    let tokens = &free[0].token_ids;
    let at = first_fresh(tokens);
    let mut engine =
        common::tiny_engine_with_eos("tiny-llama", EngineConfig::default(), tokens[at]);
    let eos_stops = SamplingParams {
        ignore_eos: false,
        ..greedy(12)
    };
    let (done, _) = run(
        &mut engine,
        &[
            request(PROMPTS[0], eos_stops),
            request(PROMPTS[0], greedy(12)),
        ],
    );
    assert_eq!(done[0].token_ids, tokens[..=at], "EOS is kept in the ids");
    assert_eq!(done[0].finish_reason, FinishReason::Stop);
    assert_eq!(
        done[1].token_ids, *tokens,
        "ignore_eos runs to max_new_tokens"
    );
    assert_eq!(done[1].finish_reason, FinishReason::Length);
}

#[test]
fn bad_requests_are_refused_one_by_one_and_the_rest_are_served() {
    let mut engine = tiny_engine(
        "tiny-llama",
        EngineConfig {
            max_seq_len: Some(32),
            ..EngineConfig::default()
        },
    );
    let long: Vec<u32> = (0..40).map(|i| i % 100 + 3).collect();
    let requests = vec![
        request(&[], greedy(4)),
        request(&long, greedy(4)),
        request(PROMPTS[0], greedy(30)),
        request(
            PROMPTS[0],
            SamplingParams {
                max_new_tokens: 0,
                ..greedy(4)
            },
        ),
        request(
            PROMPTS[0],
            SamplingParams {
                top_p: 1.5,
                ..SamplingParams::default()
            },
        ),
        request(
            PROMPTS[0],
            SamplingParams {
                stop_token_ids: vec![999],
                ..greedy(4)
            },
        ),
        request(&[5, 500], greedy(4)),
        request(PROMPTS[1], greedy(4)),
    ];
    let (done, refused) = run(&mut engine, &requests);
    let messages: Vec<(usize, &str)> = refused
        .iter()
        .map(|e| (e.request, e.message.as_str()))
        .collect();
    let expect = [
        (0, "the prompt is empty"),
        (1, "the prompt has 40 tokens; the context holds 32"),
        (
            2,
            "max_new_tokens = 30 with a 3-token prompt exceeds the context of 32 tokens: use at most 29",
        ),
        (3, "max_new_tokens = 0: must be at least 1"),
        (4, "top_p = 1.5: must be in (0, 1]"),
        (5, "unknown stop token id 999"),
        (6, "prompt token id 500 is outside the vocabulary of 128"),
    ];
    assert_eq!(messages.len(), expect.len(), "{messages:?}");
    for ((got_i, got), (want_i, want)) in messages.iter().zip(expect) {
        assert_eq!(*got_i, want_i);
        assert!(
            got.contains(want),
            "request {got_i}: {got:?} lacks {want:?}"
        );
    }
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].request, 7);
    assert_eq!(done[0].token_ids.len(), 4);
}

#[test]
fn weight_updates_are_checked_then_applied_in_place_with_their_version() {
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    let (before, _) = run(&mut engine, &[request(PROMPTS[1], greedy(8))]);
    assert_eq!(before[0].policy_version, 0);
    let head = Tensor::randn([128, 64], (Kind::Float, tch::Device::Cpu));

    let err = |r: Result<(), rl_rollout::RolloutError>| r.unwrap_err().to_string();
    let msg = err(engine.update_weights(
        1,
        &[(
            "lm_head.weight".into(),
            Tensor::zeros([3, 3], (Kind::Float, tch::Device::Cpu)),
        )],
    ));
    assert!(
        msg.contains("lm_head.weight: shape [3, 3] sent, the model's is [128, 64]"),
        "{msg}"
    );
    let msg = err(engine.update_weights(1, &[("no.such.weight".into(), head.shallow_clone())]));
    assert!(msg.contains("no weight named \"no.such.weight\""), "{msg}");
    let msg = err(engine.update_weights(0, &[("lm_head.weight".into(), head.shallow_clone())]));
    assert!(
        msg.contains("version 0 is not newer than the current version 0"),
        "{msg}"
    );
    assert_eq!(
        engine.policy_version(),
        0,
        "refused updates leave the version"
    );

    engine
        .update_weights(3, &[("lm_head.weight".into(), head.to_kind(Kind::Double))])
        .unwrap();
    assert_eq!(engine.policy_version(), 3);
    let (after, _) = run(&mut engine, &[request(PROMPTS[1], greedy(8))]);
    assert_eq!(after[0].policy_version, 3);
    assert_ne!(
        after[0].token_ids, before[0].token_ids,
        "the new head changes the output"
    );
}

#[test]
fn fixed_shape_decode_of_the_cuda_graph_path_gives_the_same_tokens() {
    // 5 prompts through 6 slots: busy batches of 5, 4, 3 … run as 6, 4, 4 … rows.
    let requests: Vec<_> = (0..5)
        .map(|i| request(PROMPTS[i % 4], greedy(6 + 3 * i as u32)))
        .collect();
    let config = EngineConfig {
        max_batch: 6,
        ..EngineConfig::default()
    };
    for name in ["tiny-llama", "tiny-mistral", "tiny-gpt2"] {
        let (eager, _) = run(&mut tiny_engine(name, config.clone()), &requests);
        let mut fixed = tiny_engine(name, config.clone()).with_fixed_shape_decode();
        let (fixed, _) = run(&mut fixed, &requests);
        assert_eq!(eager.len(), 5);
        for (a, b) in eager.iter().zip(&fixed) {
            assert_eq!(a.token_ids, b.token_ids, "{name}: request {}", a.request);
            for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
                assert!((x - y).abs() < 1e-5, "{name}: {x} vs {y}");
            }
        }
    }
}

/// Runs `requests` on a two-slot tiny engine whose read of sampled tokens fails after `good`
/// good ones. On its own thread, so a panic or an engine that never goes idle fails the test
/// instead of stalling it.
fn run_with_a_failed_read(
    good: u32,
    requests: Vec<rl_rollout::GenerateRequest>,
) -> (Vec<rl_rollout::Completion>, Vec<rl_rollout::RequestError>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = EngineConfig {
            max_batch: 2,
            ..EngineConfig::default()
        };
        let mut engine = tiny_engine("tiny-llama", config);
        engine.fail_sample_read_after(good);
        let out = run(&mut engine, &requests);
        let _ = tx.send((out, engine.is_idle()));
    });
    let (out, idle) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the engine panicked or never finished");
    assert!(idle, "the engine still holds work");
    out
}

#[test]
fn a_failed_read_of_sampled_tokens_fails_its_batch_and_the_rest_is_served() {
    let requests = || {
        vec![
            request(PROMPTS[0], greedy(10)),
            request(PROMPTS[1], SamplingParams { n: 2, ..greedy(10) }),
            request(PROMPTS[3], greedy(4)),
        ]
    };
    // Prefill of requests 0 and 1 (two slots), two decode steps, then a failed decode read:
    // both requests in the batch fail, the third one is served after them.
    let (done, refused) = run_with_a_failed_read(3, requests());
    let failed: Vec<_> = refused.iter().map(|e| e.request).collect();
    assert_eq!(failed, [0, 1]);
    assert!(
        refused[0].message.contains("cannot read sampled tokens"),
        "{}",
        refused[0].message
    );
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].request, done[0].token_ids.len()), (2, 4));

    // The first read fails: the prefill's requests fail; request 1's second sample, which
    // waited for a slot, goes with it.
    let (done, refused) = run_with_a_failed_read(0, requests());
    let failed: Vec<_> = refused.iter().map(|e| e.request).collect();
    assert_eq!(failed, [0, 1]);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].token_ids.len(), 4);
}

#[test]
fn the_cache_grows_with_the_work_not_with_the_limits() {
    // Defaults: 64 slots of the model's whole context (256 positions).
    let mut engine = tiny_engine("tiny-llama", EngineConfig::default());
    assert_eq!((engine.max_batch(), engine.max_seq_len()), (64, 256));
    // 2 layers × keys and values × 2 heads × 16 dims × 4 bytes.
    let per_token = rl_model::CacheShape {
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
    }
    .bytes_per_token(Kind::Float);
    assert_eq!(engine.cache_bytes(), 0, "nothing before any work");

    let (done, _) = run(&mut engine, &[request(&[5, 9, 14, 20], greedy(8))]);
    assert_eq!(done.len(), 1);
    // One slot of one 64-position read block, not 64 × 256.
    assert_eq!(engine.cache_bytes(), 64 * per_token);

    // Eight prompts in flight and longer completions: it grows to what they use.
    let requests: Vec<_> = (0..8).map(|i| request(&[5 + i, 9], greedy(100))).collect();
    let (done, _) = run(&mut engine, &requests);
    assert_eq!(done.len(), 8);
    assert!(done.iter().all(|c| c.token_ids.len() == 100));
    assert_eq!(engine.cache_bytes(), 8 * 128 * per_token);
}

#[test]
fn an_absurd_max_batch_is_a_clear_error() {
    let loaded = rl_model::hf::load_dir(
        &common::tiny_model_dir("tiny-llama"),
        tch::Device::Cpu,
        Kind::Float,
    )
    .unwrap();
    let tokenizer = rl_model::tokenizer::Tokenizer::numbered(128, 2).unwrap();
    let config = EngineConfig {
        max_batch: 1_000_000_000_000,
        ..EngineConfig::default()
    };
    let err = rl_rollout::Engine::new(loaded, tokenizer, config).unwrap_err();
    assert!(
        err.to_string()
            .contains("max_batch = 1000000000000: completions decoded together must be 1 to 65536"),
        "{err}"
    );
}
