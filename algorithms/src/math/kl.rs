//! KL divergence to the frozen reference model, estimated per token from log-probs of the
//! sampled tokens, and the controllers of its coefficient.
//!
//! - Estimators: Schulman, "Approximating KL Divergence", <http://joschu.net/blog/kl-approx.html>.
//! - Adaptive coefficient: Ziegler et al. 2019, <https://arxiv.org/abs/1909.08593>, §2.2.
//!
//! Tokens are sampled from the policy π, so with `log r = ref_logp - logp` (r = π_ref/π) the
//! blog's estimators of KL(π ‖ π_ref) are, per token:
//!
//! | estimator | formula | |
//! |---|---|---|
//! | `k1` | `-log r = logp - ref_logp` | unbiased, high variance, can be negative |
//! | `k2` | `½ (log r)²` | biased, low variance, ≥ 0 |
//! | `k3` | `r - 1 - log r = exp(ref_logp - logp) - (ref_logp - logp) - 1` | unbiased, low variance, ≥ 0 |

use rl_core::config::KlEstimator;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::check;
use super::error::Result;

/// Bound on `|ref_logp - logp|` before `exp` in k3, so a far-off token stays finite.
pub const MAX_KL_LOG_RATIO: f64 = 20.0;

/// Per-token estimate of KL(π ‖ π_ref), `[b, t]` f32, 0 at invalid positions: `logp` `[b, t]`
/// log-probs of the sampled tokens under the policy (differentiable: put it in the loss, as
/// GRPO does, or detach and subtract `kl_coef ·` it from the token rewards, as PPO does),
/// `ref_logp` `[b, t]` under the reference model, `mask` `[b, t]`. The metric `kl/ref` is its
/// masked mean. Errors on mismatched shapes or NaN/inf at a valid position.
pub fn token_kl(
    logp: &Tensor,
    ref_logp: &Tensor,
    mask: &Tensor,
    estimator: KlEstimator,
) -> Result<Tensor> {
    let inputs = [("logp", logp), ("ref_logp", ref_logp)];
    let (valid, _) = check::token_inputs(mask, &inputs, "a KL estimate", 0)?;
    let diff = check::zero_invalid(logp, &valid) - check::zero_invalid(&ref_logp.detach(), &valid);
    let kl = match estimator {
        KlEstimator::K1 => diff,
        KlEstimator::K2 => diff.square() * 0.5,
        KlEstimator::K3 => {
            let log_r = (-diff).clamp(-MAX_KL_LOG_RATIO, MAX_KL_LOG_RATIO);
            log_r.exp() - &log_r - 1.0
        }
    };
    Ok(kl.masked_fill(&valid.logical_not(), 0.0))
}

/// A KL coefficient must be finite and ≥ 0 (`algorithm.kl_coef`).
fn check_coef(coef: f64) -> Result<()> {
    check::param(
        "kl_coef",
        coef,
        coef >= 0.0 && coef.is_finite(),
        "must be finite and >= 0",
    )
}

/// A KL coefficient that never changes (`algorithm.kl_coef`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FixedKlController {
    coef: f64,
}

impl FixedKlController {
    /// A fixed coefficient `coef ≥ 0`.
    pub fn new(coef: f64) -> Result<Self> {
        check_coef(coef)?;
        Ok(Self { coef })
    }

    /// The coefficient.
    pub fn value(&self) -> f64 {
        self.coef
    }
}

/// Ziegler et al.'s adaptive coefficient: steers the measured KL towards `target` by
///
/// ```text
/// e    = clip(KL / target - 1, -0.2, 0.2)
/// coef ← coef · (1 + e · n_steps / horizon)
/// ```
///
/// after each batch of `n_steps` samples (the paper's horizon: 10000). Its state is the
/// coefficient: the algorithms' `Algorithm::state` saves it, [`set_value`](Self::set_value)
/// restores it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveKlController {
    coef: f64,
    target: f64,
    horizon: f64,
}

impl AdaptiveKlController {
    /// Starts at `init_coef ≥ 0`, aiming at `target > 0`, adapting over `horizon > 0` samples.
    pub fn new(init_coef: f64, target: f64, horizon: f64) -> Result<Self> {
        let finite = |x: f64| x.is_finite();
        check_coef(init_coef)?;
        check::param(
            "kl_target",
            target,
            target > 0.0 && finite(target),
            "must be finite and > 0",
        )?;
        check::param(
            "kl_horizon",
            horizon,
            horizon > 0.0 && finite(horizon),
            "must be finite and > 0",
        )?;
        Ok(Self {
            coef: init_coef,
            target,
            horizon,
        })
    }

    /// The coefficient.
    pub fn value(&self) -> f64 {
        self.coef
    }

    /// The KL it aims at.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Sets the coefficient to a saved `coef ≥ 0` (resuming a run); an invalid one is an
    /// error and leaves it unchanged.
    pub fn set_value(&mut self, coef: f64) -> Result<()> {
        check_coef(coef)?;
        self.coef = coef;
        Ok(())
    }

    /// Updates the coefficient from the KL measured on a batch of `n_steps` samples. A NaN or
    /// infinite `current_kl` is an error and leaves the coefficient unchanged.
    pub fn update(&mut self, current_kl: f64, n_steps: u64) -> Result<()> {
        check::param(
            "current_kl",
            current_kl,
            current_kl.is_finite(),
            "must be finite",
        )?;
        let error = (current_kl / self.target - 1.0).clamp(-0.2, 0.2);
        self.coef *= 1.0 + error * n_steps as f64 / self.horizon;
        Ok(())
    }
}

/// The KL coefficient's controller: fixed or adaptive (data, not a trait object).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlController {
    /// A constant coefficient.
    Fixed(FixedKlController),
    /// Ziegler et al.'s proportional controller.
    Adaptive(AdaptiveKlController),
}

impl KlController {
    /// The current coefficient.
    pub fn value(&self) -> f64 {
        match self {
            Self::Fixed(c) => c.value(),
            Self::Adaptive(c) => c.value(),
        }
    }

    /// Feeds the KL measured on a batch of `n_steps` samples; a fixed controller ignores it.
    pub fn update(&mut self, current_kl: f64, n_steps: u64) -> Result<()> {
        match self {
            Self::Fixed(_) => Ok(()),
            Self::Adaptive(c) => c.update(current_kl, n_steps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::error::MathError;
    use crate::math::testutil::{PAD, assert_close, t2};
    use tch::Kind;

    // logp = [-1, -2, -0.5], ref_logp = [-1.5, -1, -0.5]: logp - ref = [0.5, -1, 0],
    // log r = ref - logp = [-0.5, 1, 0]. The fourth position is padding (NaN in both).
    fn batch() -> [Tensor; 3] {
        let logp = t2(&[&[-1.0, -2.0, -0.5, PAD]]);
        let ref_logp = t2(&[&[-1.5, -1.0, -0.5, PAD]]);
        let mask = t2(&[&[1.0, 1.0, 1.0, 0.0]]);
        [logp, ref_logp, mask]
    }

    #[test]
    fn estimators_by_hand() {
        let [logp, ref_logp, mask] = batch();
        let kl = |e| token_kl(&logp, &ref_logp, &mask, e).unwrap();
        // k1 = logp - ref.
        assert_close(&kl(KlEstimator::K1), &[0.5, -1.0, 0.0, 0.0]);
        // k2 = ½ (logp - ref)²: 0.125, 0.5, 0.
        assert_close(&kl(KlEstimator::K2), &[0.125, 0.5, 0.0, 0.0]);
        // k3 = e^{log r} - log r - 1: e^-0.5 + 0.5 - 1 = 0.1065307; e - 1 - 1 = 0.7182818; 0.
        assert_close(&kl(KlEstimator::K3), &[0.1065307, 0.7182818, 0.0, 0.0]);
    }

    #[test]
    fn k3_gradient_by_hand() {
        // d/dlogp [e^{ref - logp} - (ref - logp) - 1] = 1 - e^{ref - logp}:
        //   1 - e^-0.5 = 0.3934693;  1 - e = -1.7182818;  0.
        let [logp, ref_logp, mask] = batch();
        let logp = logp.set_requires_grad(true);
        token_kl(&logp, &ref_logp, &mask, KlEstimator::K3)
            .unwrap()
            .sum(Kind::Float)
            .backward();
        assert_close(&logp.grad(), &[0.3934693, -1.7182818, 0.0, 0.0]);
    }

    #[test]
    fn k3_is_finite_for_far_off_tokens() {
        // ref - logp = 100 → clamped to 20: e^20 - 20 - 1.
        let kl = token_kl(
            &t2(&[&[-100.0]]),
            &t2(&[&[0.0]]),
            &t2(&[&[1.0]]),
            KlEstimator::K3,
        )
        .unwrap();
        assert_close(
            &(kl / 20f64.exp()),
            &[((20f64.exp() - 21.0) / 20f64.exp()) as f32],
        );
    }

    #[test]
    fn nan_at_a_valid_position_is_an_error() {
        let [logp, _, mask] = batch();
        let ref_logp = t2(&[&[f32::NAN, -1.0, -0.5, 0.0]]);
        let err = token_kl(&logp, &ref_logp, &mask, KlEstimator::K1).unwrap_err();
        assert!(
            matches!(err, MathError::NonFinite { name: "ref_logp" }),
            "{err}"
        );
    }

    #[test]
    fn adaptive_controller_by_hand() {
        let mut c = AdaptiveKlController::new(0.1, 6.0, 10000.0).unwrap();
        // KL 9: 9/6 - 1 = 0.5, clipped to 0.2 → coef = 0.1 · (1 + 0.2 · 256 / 10000) = 0.100512.
        c.update(9.0, 256).unwrap();
        assert!((c.value() - 0.100512).abs() < 1e-12, "{}", c.value());
        // KL 5.4: 5.4/6 - 1 = -0.1 → coef = 0.100512 · (1 - 0.1 · 1000 / 10000) = 0.09950688.
        c.update(5.4, 1000).unwrap();
        assert!((c.value() - 0.09950688).abs() < 1e-12, "{}", c.value());
        // NaN leaves it unchanged.
        assert!(c.update(f64::NAN, 10).is_err());
        assert!((c.value() - 0.09950688).abs() < 1e-12);
    }

    #[test]
    fn controllers_validate_and_round_trip() {
        assert!(AdaptiveKlController::new(0.1, 0.0, 10000.0).is_err());
        assert!(AdaptiveKlController::new(0.1, 6.0, 0.0).is_err());
        assert!(FixedKlController::new(-0.1).is_err());
        let mut fixed = KlController::Fixed(FixedKlController::new(0.05).unwrap());
        fixed.update(100.0, 1000).unwrap();
        assert_eq!(fixed.value(), 0.05);
        let mut adaptive =
            KlController::Adaptive(AdaptiveKlController::new(0.1, 6.0, 10000.0).unwrap());
        adaptive.update(9.0, 256).unwrap();
        let json = serde_json::to_string(&adaptive).unwrap();
        assert_eq!(
            serde_json::from_str::<KlController>(&json).unwrap(),
            adaptive
        );
    }
}
