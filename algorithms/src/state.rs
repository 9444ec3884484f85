//! What the algorithms change as they run, for `Algorithm::state` and `load_state`: PPO's count
//! of updates (its critic warm-up) and the adaptive KL coefficient of the algorithms that put
//! the KL in the reward. Saved as a JSON object of plain numbers — `{"updates": 3,
//! "kl_coef": 0.1008}`, each key only where it applies, Null when nothing does — which a resumed
//! run restores exactly (the crate parses JSON with serde_json's `float_roundtrip`).

use crate::AlgorithmError;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{KlInReward, math::KlController};

/// The saved state as read back; a key is absent where it does not apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    updates: Option<u64>,
    kl_coef: Option<f64>,
}

/// The coefficient of `kl` if it adapts: fixed coefficients come from the config, not the run.
fn adaptive_coef(kl: Option<&KlInReward>) -> Option<f64> {
    match kl?.controller {
        KlController::Adaptive(c) => Some(c.value()),
        KlController::Fixed(_) => None,
    }
}

/// The state of an algorithm with `updates` (when it counts them) and the KL term `kl`.
pub(crate) fn save(updates: Option<u64>, kl: Option<&KlInReward>) -> Value {
    let mut map = Map::new();
    if let Some(updates) = updates {
        map.insert("updates".into(), updates.into());
    }
    if let Some(coef) = adaptive_coef(kl) {
        map.insert("kl_coef".into(), coef.into());
    }
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// Restores [`save`]'s `state` into `kl` and returns the saved update count (None when the
/// algorithm does not count, `counts` false). Nothing changes when it errs: a state with keys
/// this algorithm would not have written means its configuration differs from the saving run's.
pub(crate) fn load(
    name: &str,
    state: &Value,
    counts: bool,
    kl: Option<&mut KlInReward>,
) -> Result<Option<u64>, AlgorithmError> {
    let fail = |message: String| AlgorithmError {
        algorithm: name.to_owned(),
        message: format!("cannot restore the saved state {state}: {message}"),
    };
    let saved = if state.is_null() {
        Saved::default()
    } else {
        Saved::deserialize(state).map_err(|e| fail(e.to_string()))?
    };
    if counts != saved.updates.is_some() {
        return Err(fail(if counts {
            "it has no `updates` (the count of batches the critic warm-up needs)".into()
        } else {
            "it has `updates`, which this algorithm does not count".into()
        }));
    }
    let adaptive = match kl {
        Some(KlInReward {
            controller: KlController::Adaptive(c),
            ..
        }) => Some(c),
        _ => None,
    };
    match (adaptive, saved.kl_coef) {
        (Some(c), Some(coef)) => c.set_value(coef).map_err(|e| fail(e.to_string()))?,
        (Some(_), None) => {
            return Err(fail(
                "it has no `kl_coef`, but this run's KL coefficient adapts (kl_target > 0): \
                 resume with the saving run's [algorithm] KL settings"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "it has an adaptive `kl_coef`, but this run's KL coefficient is fixed or off: \
                 resume with the saving run's [algorithm] KL settings"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    Ok(saved.updates)
}

#[cfg(test)]
mod tests {
    use crate::{Algorithm, Targets};

    use super::*;
    use crate::fixtures::{adaptive_kl, batch, ppo, reinforce_pp};

    /// `state` written as JSON text and parsed back, as a checkpoint holds it.
    fn through_text(state: &Value) -> Value {
        serde_json::from_str(&state.to_string()).unwrap()
    }

    fn same(a: &Targets, b: &Targets) -> bool {
        a.advantages.equal(&b.advantages)
            && match (&a.returns, &b.returns) {
                (Some(x), Some(y)) => x.equal(y),
                (x, y) => x.is_none() && y.is_none(),
            }
            && a.metrics.len() == b.metrics.len()
            && a.metrics
                .iter()
                .zip(&b.metrics)
                .all(|((k, x), (l, y))| k == l && x.to_bits() == y.to_bits())
    }

    /// Two batches, save, a fresh algorithm from `build` loads the state, a third batch: the same
    /// targets and state, bit for bit, as three batches straight.
    fn resumes_exactly(build: impl Fn() -> Box<dyn Algorithm>) {
        let b = batch(true);
        let mut straight = build();
        let runs: Vec<Targets> = (0..3).map(|_| straight.targets(&b).unwrap()).collect();

        let mut first = build();
        for _ in 0..2 {
            first.targets(&b).unwrap();
        }
        let saved = through_text(&first.state());
        let mut resumed = build();
        resumed.load_state(&saved).unwrap();
        let third = resumed.targets(&b).unwrap();
        assert!(
            same(&third, &runs[2]),
            "{}: third batch differs",
            resumed.name()
        );
        assert!(!same(&runs[1], &runs[2]), "the state changes the targets");
        assert_eq!(resumed.state(), straight.state());
    }

    #[test]
    fn ppo_and_reinforce_pp_resume_exactly() {
        resumes_exactly(|| Box::new(ppo(Some(adaptive_kl()))));
        resumes_exactly(|| Box::new(reinforce_pp(Some(adaptive_kl()))));
        let mut p = ppo(Some(adaptive_kl()));
        p.targets(&batch(true)).unwrap();
        let state = p.state();
        assert_eq!(state["updates"], 1);
        assert_ne!(
            state["kl_coef"].as_f64(),
            Some(0.1),
            "the coefficient moved"
        );
    }

    #[test]
    fn states_that_do_not_fit_are_refused_and_change_nothing() {
        let mut p = ppo(Some(adaptive_kl()));
        let before = p.clone();
        for bad in [
            Value::Null,
            serde_json::json!({"updates": 3}),
            serde_json::json!({"updates": 3, "kl_coef": -1.0}),
            serde_json::json!({"updates": 3, "kl_coef": 0.1, "step": 1}),
        ] {
            assert!(p.load_state(&bad).is_err(), "{bad}");
            assert_eq!(p, before);
        }
        let err = reinforce_pp(None)
            .load_state(&serde_json::json!({"kl_coef": 0.2}))
            .unwrap_err();
        assert!(err.message.contains("fixed or off"), "{err}");
        // Nothing to save, nothing to restore.
        let mut plain = reinforce_pp(None);
        assert_eq!(plain.state(), Value::Null);
        plain.load_state(&Value::Null).unwrap();
    }

    #[test]
    fn coefficients_survive_json_text_bit_for_bit() {
        let mut c = crate::math::AdaptiveKlController::new(0.1, 6.0, 10000.0).unwrap();
        let mut seen = 0;
        for i in 0..2000u64 {
            c.update((i % 13) as f64, 1 + i % 257).unwrap();
            let mut values = vec![c.value()];
            // Arbitrary bit patterns as well (17 significant digits are common among them).
            values.push(f64::from_bits(
                0x3fb9_9999_9999_999a ^ i.wrapping_mul(0x9e37_79b9),
            ));
            for v in values {
                let back = through_text(&Value::from(v)).as_f64().unwrap();
                assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
                seen += 1;
            }
        }
        assert_eq!(seen, 4000);
    }
}
