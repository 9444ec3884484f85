//! Token sampling from a batch of logits, each row with its own temperature, top-k, top-p,
//! min-p and random number: greedy, or inverse-CDF sampling of the truncated distribution. The
//! random numbers come from each completion's own generator, so a seeded completion draws the
//! same token whatever else is in the batch.

use tch::{Device, Kind, Tensor};

use crate::{RolloutError, SamplingParams};

/// One row's settings for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSampling {
    /// Temperature; 0 = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: i64,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = off.
    pub min_p: f32,
    /// Uniform in [0, 1): where on the CDF the token is drawn.
    pub uniform: f64,
}

impl RowSampling {
    /// The row settings of `params` with the random number `uniform`.
    pub fn new(params: &SamplingParams, uniform: f64) -> Self {
        Self {
            temperature: params.temperature as f32,
            top_k: i64::from(params.top_k),
            top_p: params.top_p as f32,
            min_p: params.min_p as f32,
            uniform,
        }
    }

    /// Settings for an idle batch row (its token is ignored).
    pub fn idle() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            uniform: 0.0,
        }
    }
}

/// Sampled tokens and their log-probabilities.
#[derive(Debug)]
pub struct Sampled {
    /// `[b]` i64 token ids.
    pub tokens: Tensor,
    /// `[b]` f32: `log_softmax(logits / T)` at the token (`T = 1` for greedy rows), before
    /// truncation.
    pub logprobs: Tensor,
}

impl Sampled {
    /// The `rows` tokens and their log-probs, read to the host. A failed read (a device error
    /// surfaces at this first synchronisation), a row count other than `rows` or a token
    /// outside `0..vocab` is an error: the caller fails the rows' requests rather than decode
    /// from made-up tokens.
    pub fn read(&self, rows: usize, vocab: i64) -> Result<Vec<(u32, f32)>, RolloutError> {
        let fail = |what: String| RolloutError::Engine(format!("cannot read sampled {what}"));
        let tokens = self
            .tokens
            .f_to_device(Device::Cpu)
            .and_then(|t| Vec::<i64>::try_from(&t))
            .map_err(|e| fail(format!("tokens: {e}")))?;
        let logprobs = self
            .logprobs
            .f_to_device(Device::Cpu)
            .and_then(|t| Vec::<f32>::try_from(&t))
            .map_err(|e| fail(format!("log-probs: {e}")))?;
        if tokens.len() != rows || logprobs.len() != rows {
            return Err(fail(format!(
                "rows: {} tokens and {} log-probs for {rows} rows",
                tokens.len(),
                logprobs.len()
            )));
        }
        tokens
            .into_iter()
            .zip(logprobs)
            .map(|(token, logprob)| match u32::try_from(token) {
                Ok(t) if token < vocab => Ok((t, logprob)),
                _ => Err(fail(format!(
                    "tokens: id {token} is outside the vocabulary of {vocab}"
                ))),
            })
            .collect()
    }
}

/// Draws one token per row of `logits` `[b, vocab]` with the settings `rows` (`b` of them).
pub fn sample(logits: &Tensor, rows: &[RowSampling]) -> Sampled {
    let device = logits.device();
    let logits = logits.to_kind(Kind::Float);
    let col = |f: &dyn Fn(&RowSampling) -> f32| {
        let v: Vec<f32> = rows.iter().map(f).collect();
        Tensor::from_slice(&v).to_device(device).unsqueeze(1)
    };
    let greedy: Vec<bool> = rows.iter().map(|r| r.temperature == 0.0).collect();
    // f32 logits over an f32 device tensor, as `rl_model::token_logprobs` divides them: the
    // learner then recomputes these log-probs bit for bit from the same logits.
    let tempered = if rows
        .iter()
        .all(|r| r.temperature == 0.0 || r.temperature == 1.0)
    {
        logits.shallow_clone()
    } else {
        &logits
            / col(&|r| {
                if r.temperature == 0.0 {
                    1.0
                } else {
                    r.temperature
                }
            })
    };
    let logp = tempered.log_softmax(-1, Kind::Float); // [b, vocab]

    let drawn = if greedy.iter().all(|&g| g) {
        None
    } else {
        Some(draw(&logp, rows, device))
    };
    let tokens = match drawn {
        None => logits.argmax(-1, false),
        Some(drawn) if greedy.iter().any(|&g| g) => {
            let greedy = Tensor::from_slice(&greedy).to_device(device);
            logits.argmax(-1, false).where_self(&greedy, &drawn)
        }
        Some(drawn) => drawn,
    };
    let logprobs = logp.gather(1, &tokens.unsqueeze(1), false).squeeze_dim(1);
    Sampled { tokens, logprobs }
}

/// Inverse-CDF draw from `exp(logp)` `[b, vocab]` truncated by each row's min-p, top-k, top-p.
fn draw(logp: &Tensor, rows: &[RowSampling], device: Device) -> Tensor {
    let vocab = logp.size()[1];
    let column = |v: Vec<f64>| {
        Tensor::from_slice(&v)
            .to_device(device)
            .to_kind(Kind::Float)
            .unsqueeze(1)
    };
    let mut probs = logp.exp();
    if rows.iter().any(|r| r.min_p > 0.0) {
        let min_p = column(rows.iter().map(|r| f64::from(r.min_p)).collect());
        let floor = probs.amax(-1, true) * min_p;
        probs = probs.where_self(&probs.ge_tensor(&floor), &probs.zeros_like());
    }
    let uniform: Vec<f64> = rows
        .iter()
        .map(|r| r.uniform.clamp(0.0, 1.0 - 1e-7))
        .collect();
    let uniform = Tensor::from_slice(&uniform)
        .to_device(device)
        .to_kind(Kind::Float)
        .unsqueeze(1);
    let truncates = rows
        .iter()
        .any(|r| r.top_p < 1.0 || (r.top_k > 0 && r.top_k < vocab));
    if !truncates {
        return inverse_cdf(&probs, &uniform);
    }
    // Sorted descending, the k-th and later tokens and those after the top-p mass go.
    let (sorted, order) = probs.sort(-1, true);
    let rank = Tensor::arange(vocab, (Kind::Int64, device)).unsqueeze(0);
    let top_k: Vec<i64> = rows
        .iter()
        .map(|r| if r.top_k > 0 { r.top_k } else { vocab })
        .collect();
    let top_k = Tensor::from_slice(&top_k).to_device(device).unsqueeze(1);
    let top_p = column(rows.iter().map(|r| f64::from(r.top_p)).collect());
    let mass_before = sorted.cumsum(-1, Kind::Float) - &sorted;
    let keep = rank.lt_tensor(&top_k).logical_and(
        &mass_before.lt_tensor(&(&top_p * sorted.sum_dim_intlist(-1, true, Kind::Float))),
    );
    let sorted = sorted.where_self(&keep, &sorted.zeros_like());
    order
        .gather(1, &inverse_cdf(&sorted, &uniform).unsqueeze(1), false)
        .squeeze_dim(1)
}

/// Index where the running sum of `weights` `[b, n]` first exceeds `uniform` `[b, 1]` times the
/// row total: a draw proportional to the weights (zero-weight entries are never chosen).
fn inverse_cdf(weights: &Tensor, uniform: &Tensor) -> Tensor {
    let cdf = weights.cumsum(-1, Kind::Float);
    let target = cdf.narrow(1, cdf.size()[1] - 1, 1) * uniform;
    let index = cdf
        .le_tensor(&target)
        .sum_dim_intlist(-1, false, Kind::Int64);
    index.clamp_max(cdf.size()[1] - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(temperature: f32, top_k: i64, top_p: f32, min_p: f32, uniform: f64) -> RowSampling {
        RowSampling {
            temperature,
            top_k,
            top_p,
            min_p,
            uniform,
        }
    }

    fn logits(probs: &[f64]) -> Tensor {
        Tensor::from_slice(probs)
            .log()
            .to_kind(Kind::Float)
            .unsqueeze(0)
    }

    fn token(probs: &[f64], r: RowSampling) -> i64 {
        sample(&logits(probs), &[r]).tokens.int64_value(&[0])
    }

    #[test]
    fn inverse_cdf_picks_the_token_whose_interval_holds_the_uniform() {
        let p = [0.1, 0.2, 0.3, 0.4];
        for (u, want) in [
            (0.0, 0),
            (0.05, 0),
            (0.15, 1),
            (0.35, 2),
            (0.65, 3),
            (0.99, 3),
        ] {
            assert_eq!(token(&p, row(1.0, 0, 1.0, 0.0, u)), want, "u = {u}");
        }
    }

    #[test]
    fn greedy_takes_the_argmax_and_reports_its_untempered_logprob() {
        let p = [0.1, 0.6, 0.3];
        let s = sample(&logits(&p), &[row(0.0, 0, 1.0, 0.0, 0.99)]);
        assert_eq!(s.tokens.int64_value(&[0]), 1);
        assert!((s.logprobs.double_value(&[0]) - 0.6f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn top_k_top_p_and_min_p_renormalise_over_the_kept_tokens() {
        let p = [0.1, 0.2, 0.3, 0.4];
        // top_k = 2 keeps 3 (0.4) then 2 (0.3), mass 0.7: u = 0.5 draws at 0.35 → token 3,
        // u = 0.6 at 0.42 → token 2.
        assert_eq!(token(&p, row(1.0, 2, 1.0, 0.0, 0.5)), 3);
        assert_eq!(token(&p, row(1.0, 2, 1.0, 0.0, 0.6)), 2);
        // top_p = 0.5: 0.4 alone is short of 0.5, so 0.3 joins (mass before it 0.4 < 0.5); 0.2 not.
        assert_eq!(token(&p, row(1.0, 0, 0.5, 0.0, 0.99)), 2);
        // min_p = 0.4 drops tokens under 0.16: token 0 goes, so u = 0 picks token 1.
        assert_eq!(token(&p, row(1.0, 0, 1.0, 0.4, 0.0)), 1);
    }

    #[test]
    fn logprobs_are_of_the_tempered_untruncated_distribution() {
        let p = [0.1, 0.2, 0.3, 0.4];
        let s = sample(&logits(&p), &[row(2.0, 1, 1.0, 0.0, 0.3)]);
        assert_eq!(s.tokens.int64_value(&[0]), 3);
        let tempered: Vec<f64> = p.iter().map(|x: &f64| x.sqrt()).collect();
        let want = (tempered[3] / tempered.iter().sum::<f64>()).ln();
        assert!((s.logprobs.double_value(&[0]) - want).abs() < 1e-6);
    }

    #[test]
    fn reading_checks_the_shape_rows_and_vocabulary() {
        let s = sample(&logits(&[0.1, 0.6, 0.3]), &[row(0.0, 0, 1.0, 0.0, 0.0)]);
        let read = s.read(1, 3).unwrap_or_default();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].0, 1);
        let message = |s: &Sampled, rows, vocab| {
            s.read(rows, vocab)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(message(&s, 2, 3).contains("1 tokens and 1 log-probs for 2 rows"));
        assert!(message(&s, 1, 1).contains("id 1 is outside the vocabulary of 1"));
        let flat = Sampled {
            tokens: s.tokens.unsqueeze(0),
            logprobs: s.logprobs.shallow_clone(),
        };
        assert!(message(&flat, 1, 3).contains("cannot read sampled tokens"));
    }

    #[test]
    fn rows_are_independent_of_their_neighbours() {
        let p = [0.25, 0.25, 0.25, 0.25];
        let alone = token(&p, row(1.0, 0, 1.0, 0.0, 0.6));
        let batch = Tensor::cat(&[logits(&[0.7, 0.1, 0.1, 0.1]), logits(&p)], 0);
        let s = sample(
            &batch,
            &[row(0.0, 0, 1.0, 0.0, 0.0), row(1.0, 0, 1.0, 0.0, 0.6)],
        );
        assert_eq!(s.tokens.int64_value(&[1]), alone);
        assert_eq!(s.tokens.int64_value(&[0]), 0);
    }
}
