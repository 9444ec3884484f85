//! Sampling parameters of one request, with the checks that turn bad values into clear errors.

use serde::{Deserialize, Serialize};

/// How to sample the completions of one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// Completions to sample (the prompt is prefilled once for all of them).
    pub n: u32,
    /// Softmax temperature; 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this mass, in (0, 1]; 1 = off.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; 0 = off.
    pub top_k: u32,
    /// Drop tokens less likely than `min_p` times the most likely one, in [0, 1]; 0 = off.
    pub min_p: f64,
    /// Most tokens generated per completion.
    pub max_new_tokens: u32,
    /// Stop after any of these token ids (kept in the output ids).
    pub stop_token_ids: Vec<u32>,
    /// Stop once the text contains any of these strings (cut from the returned text).
    pub stop: Vec<String>,
    /// Keep going past end-of-sequence tokens (fixed-length benchmarks).
    pub ignore_eos: bool,
    /// Seed of the request: completion `i` of a seeded request is the same whatever else is
    /// batched with it. None: a fresh random seed.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            max_new_tokens: 64,
            stop_token_ids: Vec::new(),
            stop: Vec::new(),
            ignore_eos: false,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of `max_new_tokens` tokens.
    pub fn greedy(max_new_tokens: u32) -> Self {
        Self {
            temperature: 0.0,
            max_new_tokens,
            ..Self::default()
        }
    }

    /// Whether every completion takes the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the values that do not depend on the model: each problem as `field = value: rule`.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(what);
            }
        };
        check(self.n >= 1, format!("n = {}: must be at least 1", self.n));
        check(
            self.temperature.is_finite() && (0.0..=100.0).contains(&self.temperature),
            format!("temperature = {}: must be in [0, 100]", self.temperature),
        );
        check(
            self.top_p > 0.0 && self.top_p <= 1.0,
            format!("top_p = {}: must be in (0, 1]", self.top_p),
        );
        check(
            (0.0..=1.0).contains(&self.min_p),
            format!("min_p = {}: must be in [0, 1]", self.min_p),
        );
        check(
            self.max_new_tokens >= 1,
            format!(
                "max_new_tokens = {}: must be at least 1",
                self.max_new_tokens
            ),
        );
        check(
            self.stop.iter().all(|s| !s.is_empty()),
            "stop: stop strings must not be empty".into(),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        let bad = SamplingParams {
            top_p: 0.0,
            max_new_tokens: 0,
            temperature: f64::NAN,
            ..SamplingParams::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.contains("top_p = 0: must be in (0, 1]"), "{err}");
        assert!(err.contains("max_new_tokens = 0"), "{err}");
        assert!(err.contains("temperature = NaN"), "{err}");
    }
}
