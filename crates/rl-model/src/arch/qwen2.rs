//! Qwen2: the Llama block with biases on the q/k/v projections (and RoPE base 1e6 by default
//! in its checkpoints). Same weight names as Llama, so it reuses [`super::llama`].

use super::llama;

/// Reads a Qwen2 `config.json` as the Llama config it is, with q/k/v bias on.
pub fn config(json: serde_json::Value) -> Result<llama::Config, serde_json::Error> {
    let mut cfg: llama::Config = serde_json::from_value(json)?;
    cfg.attention_bias = true;
    Ok(cfg)
}
