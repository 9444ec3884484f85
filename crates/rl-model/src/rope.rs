//! Rotary position embeddings (Su et al. 2021, <https://arxiv.org/abs/2104.09864>) in the
//! "rotate half" layout HF checkpoints use, with Llama-3 frequency scaling.

use serde::Deserialize;
use tch::{Kind, Tensor};

/// RoPE settings: HF `rope_theta` + `rope_scaling` (transformers 4) or `rope_parameters` (5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RopeParams {
    /// Base of the frequencies.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// `default` or `llama3`.
    #[serde(default = "default_type", alias = "type")]
    pub rope_type: String,
    /// Llama-3: context extension factor.
    pub factor: Option<f64>,
    /// Llama-3: wavelengths above `original / low_freq_factor` are scaled fully.
    pub low_freq_factor: Option<f64>,
    /// Llama-3: wavelengths below `original / high_freq_factor` are kept.
    pub high_freq_factor: Option<f64>,
    /// Llama-3: context length of pre-training.
    pub original_max_position_embeddings: Option<f64>,
}

fn default_theta() -> f64 {
    10_000.0
}

fn default_type() -> String {
    "default".into()
}

impl RopeParams {
    /// Inverse frequencies `[head_dim / 2]`, or why the parameters are unusable.
    pub fn inv_freq(&self, head_dim: usize) -> Result<Vec<f64>, String> {
        let base: Vec<f64> = (0..head_dim / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / head_dim as f64))
            .collect();
        match self.rope_type.as_str() {
            "default" => Ok(base),
            "llama3" => {
                let need = |v: Option<f64>, name: &str| {
                    v.ok_or_else(|| format!("rope_type llama3 needs {name}"))
                };
                let factor = need(self.factor, "factor")?;
                let low = need(self.low_freq_factor, "low_freq_factor")?;
                let high = need(self.high_freq_factor, "high_freq_factor")?;
                let original = need(
                    self.original_max_position_embeddings,
                    "original_max_position_embeddings",
                )?;
                Ok(base
                    .into_iter()
                    .map(|f| llama3_scale(f, factor, low, high, original))
                    .collect())
            }
            other => Err(format!(
                "rope_type {other:?} is not supported (default, llama3)"
            )),
        }
    }
}

/// Llama-3 scaling of one inverse frequency: long wavelengths are divided by `factor`, short ones
/// kept, and the band between interpolated smoothly.
fn llama3_scale(inv_freq: f64, factor: f64, low: f64, high: f64, original: f64) -> f64 {
    let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
    let (low_wavelen, high_wavelen) = (original / low, original / high);
    if wavelen < high_wavelen {
        inv_freq
    } else if wavelen > low_wavelen {
        inv_freq / factor
    } else {
        let smooth = (original / wavelen - low) / (high - low);
        (1.0 - smooth) * inv_freq / factor + smooth * inv_freq
    }
}

/// `cos` and `sin` tables `[b, 1, t, head_dim]` for `positions` `[b, t]`, in `kind`.
pub fn tables(inv_freq: &Tensor, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
    let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * inv_freq.view([1, 1, -1]); // [b, t, d/2]
    let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1); // [b, 1, t, d]
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

/// Rotates `x` `[b, heads, t, head_dim]` by the position tables.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let (x1, x2) = (x.narrow(-1, 0, half), x.narrow(-1, half, half));
    let rotated = Tensor::cat(&[&(-x2), &x1], -1);
    x * cos + rotated * sin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_short_and_divides_long_wavelengths() {
        let (factor, low, high, original) = (8.0, 1.0, 4.0, 8192.0);
        assert_eq!(llama3_scale(1.0, factor, low, high, original), 1.0);
        let long = 2.0 * std::f64::consts::PI / 10_000.0;
        assert!((llama3_scale(long, factor, low, high, original) - long / 8.0).abs() < 1e-15);
    }
}
