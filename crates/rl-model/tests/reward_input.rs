//! Reward-model inputs: decoder rows rendered by the chat template and truncated from the left,
//! BERT rows as `[CLS] prompt [SEP] response [SEP]` losing prompt tokens first, right padding,
//! and the errors for an empty batch and a `max_len` too small.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use rl_model::{
    arch::ArchConfig,
    reward_input::{RewardText, encode_reward_batch},
    tokenizer::{Message, Tokenizer},
};
use tch::Tensor;

fn config(model_type: &str) -> ArchConfig {
    let json = match model_type {
        "llama" => serde_json::json!({"model_type": "llama", "vocab_size": 64, "hidden_size": 16,
            "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}),
        _ => serde_json::json!({"model_type": "bert", "vocab_size": 64, "hidden_size": 16,
            "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "max_position_embeddings": 32}),
    };
    ArchConfig::from_json(json).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

/// Words `t0..t63`; EOS (and so the pad) is `t9`; the template writes `t1 content t2` per turn.
fn decoder_tokenizer() -> Tokenizer {
    let mut tok = Tokenizer::numbered(64, 9).unwrap();
    tok.set_chat_template("{% for m in messages %}t1 {{ m.content }} t2 {% endfor %}")
        .unwrap();
    tok
}

#[test]
fn decoder_rows_are_the_rendered_chat_truncated_from_the_left() {
    let tok = decoder_tokenizer();
    let (short, long) = ([Message::user("t30")], [Message::user("t30 t31 t32 t33")]);
    let batch = [
        RewardText {
            prompt: &short,
            response: "t40",
        },
        RewardText {
            prompt: &long,
            response: "t41 t42",
        },
    ];
    let (ids, mask) = encode_reward_batch(&tok, &config("llama"), &batch, 8).unwrap();
    // Row 1 renders to 10 tokens; its last 8 are kept. Row 0 (6 tokens) is padded with t9.
    assert_eq!(
        rows(&ids),
        [
            vec![1, 30, 2, 1, 40, 2, 9, 9],
            vec![31, 32, 33, 2, 1, 41, 42, 2]
        ]
    );
    assert_eq!(rows(&mask), [vec![1, 1, 1, 1, 1, 1, 0, 0], vec![1; 8]]);
}

#[test]
fn bert_rows_lose_prompt_tokens_first_then_response_tokens() {
    let tok = Tokenizer::numbered(64, 9).unwrap();
    let with_cls = {
        // `[CLS]`/`[SEP]` as added tokens of the word-level vocabulary.
        let mut inner = tok.inner().clone();
        inner
            .add_special_tokens([
                tokenizers::AddedToken::from("[CLS]", true),
                tokenizers::AddedToken::from("[SEP]", true),
            ])
            .unwrap();
        Tokenizer::new(inner, tok.special_tokens().clone()).unwrap()
    };
    let (cls, sep) = (64, 65);
    let prompt = [
        Message::system("t50"), // not part of a BERT prompt
        Message::user("t10 t11 t12"),
        Message::assistant("t51"),
        Message::user("t13"),
    ];
    let sample = |response| RewardText {
        prompt: &prompt,
        response,
    };
    let bert = config("bert");
    let (ids, _) = encode_reward_batch(&with_cls, &bert, &[sample("t20 t21")], 64).unwrap();
    assert_eq!(rows(&ids), [vec![cls, 10, 11, 12, 13, sep, 20, 21, sep]]);
    let (ids, _) = encode_reward_batch(&with_cls, &bert, &[sample("t20 t21")], 7).unwrap();
    assert_eq!(rows(&ids), [vec![cls, 12, 13, sep, 20, 21, sep]]);
    let (ids, _) = encode_reward_batch(&with_cls, &bert, &[sample("t20 t21 t22 t23")], 5).unwrap();
    assert_eq!(rows(&ids), [vec![cls, sep, 20, 21, sep]]);

    let err = encode_reward_batch(&with_cls, &bert, &[sample("t20")], 2).unwrap_err();
    assert!(
        err.to_string()
            .contains("max_len 2 is too small for a bert"),
        "{err}"
    );
    let err = encode_reward_batch(&tok, &bert, &[sample("t20")], 16).unwrap_err();
    assert!(err.to_string().contains("no [CLS] token"), "{err}");
}

#[test]
fn an_empty_batch_is_an_error() {
    let err = encode_reward_batch(&decoder_tokenizer(), &config("llama"), &[], 8).unwrap_err();
    assert!(err.to_string().contains("batch is empty"), "{err}");
}
