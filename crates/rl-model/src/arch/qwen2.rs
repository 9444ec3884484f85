//! Qwen2: the Llama block with biases on the q/k/v projections (and RoPE base 1e6 by default
//! in its checkpoints). Same weight names as Llama, so it reuses [`super::llama`].

use super::llama;

/// Reads a Qwen2 `config.json` as the Llama config it is, with q/k/v bias on. Its
/// `sliding_window` applies only with `use_sliding_window`, which is not supported.
pub fn config(json: serde_json::Value) -> Result<llama::Config, String> {
    if json.get("use_sliding_window").and_then(|v| v.as_bool()) == Some(true) {
        return Err(
            "use_sliding_window = true (per-layer sliding windows) is not supported".into(),
        );
    }
    let mut cfg: llama::Config = serde_json::from_value(json).map_err(|e| e.to_string())?;
    cfg.attention_bias = true;
    cfg.sliding_window = None;
    Ok(cfg)
}
