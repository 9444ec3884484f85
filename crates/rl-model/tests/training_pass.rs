//! The memory-lean training pass gives the same gradients as plain autograd through the full
//! log-softmax, for a policy-gradient loss with an entropy bonus, tied and untied heads alike, at
//! the plain and at a sampling temperature (the backward's recomputed logits are tempered too).

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::{collections::BTreeMap, path::Path};

use rl_model::{TokenStats, backward_token_loss, hf, token_logprobs};
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

            let (value, _) = backward_token_loss(
                loaded.model.as_ref(),
                &ids,
                &mask,
                temperature,
                true,
                7,
                |s| loss(s, &advantages),
            );
            let got = grads(&loaded.vs);
            assert!(
                (value.double_value(&[]) - expected_loss.double_value(&[])).abs() < 1e-6,
                "{name} at T = {temperature}: loss"
            );
            for (var, want) in &expected {
                let err = (&got[var] - want).abs().max().double_value(&[]);
                let scale = want.abs().max().double_value(&[]).max(1e-8);
                assert!(
                    err <= 1e-5 * scale.max(1.0),
                    "{name} at T = {temperature}: gradient of {var} differs by {err:e} (scale {scale:e})"
                );
            }
        }
    }
}
