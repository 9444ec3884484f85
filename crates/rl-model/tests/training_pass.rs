//! The memory-lean training pass gives the same gradients as plain autograd through the full
//! log-softmax, for a policy-gradient loss with an entropy bonus, tied and untied heads alike, at
//! the plain and at a sampling temperature (the backward's recomputed logits are tempered too);
//! scoring only the response tokens, with each group's prompt encoded once (shared-prefix
//! packing), gives the gradients of the per-row pass.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::{collections::BTreeMap, path::Path};

use rl_model::{TokenStats, TrainingPass, backward_token_loss, hf, token_logprobs};
use tch::{Device, Kind, Tensor};

/// A PPO-like loss: −mean(advantage · log p) − 0.01 · mean(entropy) over real tokens.
fn loss(stats: &TokenStats, advantages: &Tensor) -> Tensor {
    let mask = stats.mask.to_kind(Kind::Float);
    let n = mask.sum(Kind::Float);
    let pg = -(&stats.logprobs * advantages * &mask).sum(Kind::Float) / &n;
    let bonus = (stats.entropy.as_ref().unwrap() * &mask).sum(Kind::Float) / &n;
    pg - bonus * 0.01
}

fn grads(vs: &tch::nn::VarStore) -> BTreeMap<String, Tensor> {
    let grads = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.grad().copy()))
        .collect();
    for (_, mut t) in vs.variables() {
        t.zero_grad();
    }
    grads
}

/// Every gradient within 1e-5 of the expected one (relative to its largest entry when above 1).
fn assert_same_grads(
    got: &BTreeMap<String, Tensor>,
    expected: &BTreeMap<String, Tensor>,
    what: &str,
) {
    for (var, want) in expected {
        let err = (&got[var] - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]).max(1e-8);
        assert!(
            err <= 1e-5 * scale.max(1.0),
            "{what}: gradient of {var} differs by {err:e} (scale {scale:e})"
        );
    }
}

#[test]
fn chunked_backward_matches_autograd() {
    for name in ["tiny-llama", "tiny-llama3-rope", "tiny-gpt2"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models")
            .join(name);
        let loaded = hf::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
        tch::manual_seed(0);
        let ids = Tensor::randint(128, [3, 24], (Kind::Int64, Device::Cpu));
        let mask = Tensor::ones([3, 24], (Kind::Int64, Device::Cpu));
        let _ = mask.narrow(1, 18, 6).get(1).fill_(0); // a right-padded row
        let _ = mask.narrow(1, 0, 5).get(2).fill_(0); // a left-padded row
        let advantages = Tensor::randn([3, 23], (Kind::Float, Device::Cpu));

        for temperature in [1.0, 0.7] {
            let stats = token_logprobs(loaded.model.as_ref(), &ids, &mask, temperature, true, 4096);
            let expected_loss = loss(&stats, &advantages);
            expected_loss.backward();
            let expected = grads(&loaded.vs);

            let pass = TrainingPass {
                temperature,
                with_entropy: true,
                chunk_tokens: 7,
                ..TrainingPass::default()
            };
            let (value, _) = backward_token_loss(loaded.model.as_ref(), &ids, &mask, &pass, |s| {
                loss(s, &advantages)
            });
            let got = grads(&loaded.vs);
            assert!(
                (value.double_value(&[]) - expected_loss.double_value(&[])).abs() < 1e-6,
                "{name} at T = {temperature}: loss"
            );
            assert_same_grads(&got, &expected, &format!("{name} at T = {temperature}"));
        }
    }
}

/// Two groups of three: each group one prompt (5 and 8 tokens) and responses of 1 to 7 tokens,
/// right-padded, in an interleaved row order. Returns ids, attention mask and response mask.
fn grouped_batch(vocab: i64) -> (Tensor, Tensor, Tensor) {
    let prompts: [Vec<i64>; 2] = [
        (0..5).map(|i| (7 * i + 3) % vocab).collect(),
        (0..8).map(|i| (11 * i + 5) % vocab).collect(),
    ];
    let rows = [(0, 4), (1, 1), (0, 7), (1, 5), (0, 2), (1, 3)]; // (group, response length)
    let t = 8 + 7;
    let (mut ids, mut attention, mut response) = (
        vec![0i64; 6 * t],
        vec![0i64; 6 * t],
        vec![0f32; 6 * (t - 1)],
    );
    for (r, &(g, len)) in rows.iter().enumerate() {
        let prompt = &prompts[g];
        for (j, &id) in prompt.iter().enumerate() {
            ids[r * t + j] = id;
            attention[r * t + j] = 1;
        }
        for k in 0..len {
            let j = prompt.len() + k;
            ids[r * t + j] = ((13 * r + 17 * k + 1) as i64) % vocab;
            attention[r * t + j] = 1;
            response[r * (t - 1) + j - 1] = 1.0;
        }
    }
    let shape = [6, t as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&attention).view(shape),
        Tensor::from_slice(&response).view([6, t as i64 - 1]),
    )
}

#[test]
fn shared_prefix_pass_gives_the_per_row_gradients() {
    for name in ["tiny-llama", "tiny-llama3-rope", "tiny-gpt2"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models")
            .join(name);
        let loaded = hf::load_dir(&dir, Device::Cpu, Kind::Float).unwrap();
        let model = loaded.model.as_ref();
        let (ids, mask, response) = grouped_batch(model.lm_head().size()[0]);
        tch::manual_seed(1);
        let advantages = Tensor::randn(response.size(), (Kind::Float, Device::Cpu));
        let scored_loss = |s: &TokenStats| {
            let n = response.sum(Kind::Float);
            let pg = -(&s.logprobs * &advantages * &response).sum(Kind::Float) / &n;
            let bonus = (s.entropy.as_ref().unwrap() * &response).sum(Kind::Float) / &n;
            pg - bonus * 0.01
        };

        // Plain autograd over every position, the loss reading the responses only.
        let stats = token_logprobs(model, &ids, &mask, 0.7, true, 4096);
        let expected_loss = scored_loss(&stats);
        expected_loss.backward();
        let expected = grads(&loaded.vs);

        // Chunks of 5 positions recompute their logits in the backward; one chunk of 4096 keeps them.
        for (shared_prefix, chunk_tokens) in [(false, 5), (true, 5), (true, 4096)] {
            let pass = TrainingPass {
                scored: Some(&response),
                temperature: 0.7,
                with_entropy: true,
                chunk_tokens,
                shared_prefix,
            };
            let (value, stats) = backward_token_loss(model, &ids, &mask, &pass, scored_loss);
            let got = grads(&loaded.vs);
            let what = format!("{name}, shared_prefix = {shared_prefix}, chunk {chunk_tokens}");
            assert!(
                (value.double_value(&[]) - expected_loss.double_value(&[])).abs() < 1e-6,
                "{what}: loss"
            );
            assert!(
                stats.mask.to_kind(Kind::Float).equal(&response),
                "{what}: the scored positions are the responses"
            );
            assert_same_grads(&got, &expected, &what);
        }
    }
}
