//! Small pieces the algorithm files share: error conversion, the one path to the advantage
//! math, reward metrics, the KL penalty as a per-token reward term.

use crate::{AlgorithmError, Experience};
use tch::{Kind, Tensor};

use crate::math::{
    AdvantageEstimator, AdvantageInput, AdvantageParams, Advantages, KlController, KlEstimator,
    MathError, advantage, token_kl,
};

/// Turns the math's errors into the algorithm's, naming it.
pub(crate) fn err(name: &str) -> impl Fn(MathError) -> AlgorithmError + '_ {
    move |e| AlgorithmError {
        algorithm: name.to_owned(),
        message: e.to_string(),
    }
}

/// The advantages of `batch` by `estimator`, from `scores` `[b]` (the batch's rewards, or as an
/// algorithm shaped them) and an optional `[b, t]` per-token penalty (KL in the reward): the one
/// way every algorithm reaches [`advantage::compute`]. Also returns each sample's advantage `[b]`
/// for the metrics: its tokens' mean where the estimator varies it over tokens.
pub(crate) fn estimate(
    name: &str,
    estimator: AdvantageEstimator,
    batch: &Experience,
    scores: &Tensor,
    token_penalty: Option<&Tensor>,
    params: &AdvantageParams,
) -> Result<(Advantages, Tensor), AlgorithmError> {
    let input = AdvantageInput {
        scores,
        mask: &batch.mask,
        token_penalty,
        values: batch.values.as_ref(),
        group_ids: Some(&batch.groups),
    };
    let mut out = advantage::compute(estimator, &input, params).map_err(err(name))?;
    let per_sample = out
        .per_sample
        .take()
        .unwrap_or_else(|| sequence_mean(&out.advantages, &batch.mask));
    Ok((out, per_sample))
}

/// `reward/mean`, `reward/std` and the advantage statistics of `[b]` per-sample advantages.
pub(crate) fn metrics(batch: &Experience, per_sample: &Tensor) -> Vec<(String, f64)> {
    let rewards = batch.rewards.to_kind(Kind::Double);
    let adv = per_sample.to_kind(Kind::Double);
    vec![
        (
            "reward/mean".into(),
            rewards.mean(Kind::Double).double_value(&[]),
        ),
        ("reward/std".into(), rewards.std(false).double_value(&[])),
        (
            "critic/advantages/mean".into(),
            adv.mean(Kind::Double).double_value(&[]),
        ),
        ("critic/advantages/max".into(), adv.max().double_value(&[])),
        ("critic/advantages/min".into(), adv.min().double_value(&[])),
    ]
}

/// Named metric values.
pub(crate) type Metrics = Vec<(String, f64)>;

/// The KL penalty in the reward: its estimator and its (fixed or adaptive) coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct KlInReward {
    /// Estimator of the per-token KL.
    pub estimator: KlEstimator,
    /// The coefficient; an adaptive one moves towards its target KL after each batch.
    pub controller: KlController,
}

/// The error of a KL term whose reference log-probs were not computed: training on without it
/// would drop the penalty silently.
pub(crate) fn missing_reference(name: &str) -> AlgorithmError {
    AlgorithmError {
        algorithm: name.to_owned(),
        message: "a KL penalty is configured but the reference model's log-probs are missing \
                  (Experience::ref_logprobs): compute them with the reference model whenever \
                  needs().reference is true"
            .into(),
    }
}

/// `coef · KL(rollout policy ‖ reference)` per token `[b, n]` for algorithms that put the KL
/// in the reward, with metrics `kl/ref` (mean raw KL per token) and `kl/coef`; then updates an
/// adaptive coefficient with this batch's KL. None when there is no KL term or its coefficient
/// is 0. A KL term without the batch's reference log-probs is an error.
pub(crate) fn kl_penalty(
    name: &str,
    batch: &Experience,
    kl: Option<&mut KlInReward>,
) -> Result<Option<(Tensor, Metrics)>, AlgorithmError> {
    let Some(kl) = kl else {
        return Ok(None);
    };
    let reference = batch
        .ref_logprobs
        .as_ref()
        .ok_or_else(|| missing_reference(name))?;
    if kl.controller.value() <= 0.0 {
        return Ok(None);
    }
    let per_token = token_kl(&batch.old_logprobs, reference, &batch.mask, kl.estimator)
        .map_err(err(name))?
        .detach();
    let tokens = batch.mask.sum(Kind::Double).double_value(&[]).max(1.0);
    let mean = (&per_token * &batch.mask)
        .sum(Kind::Double)
        .double_value(&[])
        / tokens;
    let coef = kl.controller.value();
    let metrics = vec![("kl/ref".to_owned(), mean), ("kl/coef".to_owned(), coef)];
    let samples = batch.rewards.size()[0] as u64;
    kl.controller.update(mean, samples).map_err(err(name))?;
    Ok(Some((per_token * coef, metrics)))
}

/// Whether a KL term is configured with a positive coefficient.
pub(crate) fn kl_on(kl: Option<(KlEstimator, f64)>) -> bool {
    kl.is_some_and(|(_, coef)| coef > 0.0)
}

/// Mean of `per_token` `[b, n]` over each row's valid tokens → `[b]` (0 for empty rows).
pub(crate) fn sequence_mean(per_token: &Tensor, mask: &Tensor) -> Tensor {
    let tokens = mask.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    (per_token * mask).sum_dim_intlist(1, false, Kind::Float) / tokens
}

#[cfg(test)]
mod tests {
    use crate::Algorithm;

    use crate::fixtures::{adaptive_kl, batch, ppo, reinforce_pp};

    #[test]
    fn a_kl_in_the_reward_without_reference_logprobs_is_an_error() {
        let algorithms: [Box<dyn Algorithm>; 2] = [
            Box::new(ppo(Some(adaptive_kl()))),
            Box::new(reinforce_pp(Some(adaptive_kl()))),
        ];
        for mut algorithm in algorithms {
            assert!(algorithm.needs().reference);
            let err = algorithm.targets(&batch(false)).unwrap_err();
            assert_eq!(err.algorithm, algorithm.name());
            assert!(
                err.message
                    .contains("the reference model's log-probs are missing"),
                "{err}"
            );
            let targets = algorithm.targets(&batch(true)).unwrap();
            assert!(targets.metrics.iter().any(|(k, _)| k == "kl/coef"));
        }
        // No KL term: no reference needed.
        assert!(reinforce_pp(None).targets(&batch(false)).is_ok());
    }
}
