//! The built-in environments of `rl`, one file each, and how a config picks them:
//! [`by_name`] builds the `[env]` environment, [`rule_reward`] the `reward.kind = "rule"`
//! scorer for it (the environment's verifier, plus a format reward, weighted and scaled as
//! `[reward]` says).
//!
//! | `env.name` | task | verifier |
//! |---|---|---|
//! | `arithmetic` | generated integer arithmetic ([`Arithmetic`]) | [`rl_reward::NumericMatch`] |
//! | `countdown` | reach a target from given numbers ([`Countdown`]) | [`CountdownReward`] |
//! | `jsonl` | question/answer records from a file ([`Jsonl`]), e.g. GSM8K | [`rl_reward::NumericMatch`] |
//! | `calculator` | arithmetic with a calculator tool, multi-turn ([`Calculator`]) | [`rl_reward::NumericMatch`] |

pub mod arithmetic;
pub mod calculator;
pub mod countdown;
pub mod generated;
pub mod jsonl;

use rl_core::{
    Env, EnvError, RewardError, RewardFn,
    config::{EnvConfig, EnvName, RewardConfig, RewardKind, VerifierKind},
};
use rl_reward::{
    ExactMatch, NumericMatch, Part, RegexMatch, RegexMode, Scaled, TagFormat, WeightedSum,
};

pub use arithmetic::Arithmetic;
pub use calculator::Calculator;
pub use countdown::{Countdown, CountdownReward, Verdict};
pub use jsonl::Jsonl;

/// The environment `[env]` names, configured by its keys.
pub fn by_name(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(match config.name {
        EnvName::Arithmetic => Box::new(Arithmetic::new(config)?),
        EnvName::Countdown => Box::new(Countdown::new(config)?),
        EnvName::Jsonl => Box::new(Jsonl::new(config)?),
        EnvName::Calculator => Box::new(Calculator::new(config)?),
    })
}

/// The correctness check, 1 right and 0 wrong: the one `reward.verifier` names, by default
/// (`"env"`) the environment's own.
pub fn verifier(env: &EnvConfig, reward: &RewardConfig) -> Result<Box<dyn RewardFn>, EnvError> {
    let error = |message: String| EnvError {
        env: env.name.as_str().to_owned(),
        message,
    };
    let exact = || match &reward.answer_tag {
        Some(tag) => ExactMatch::default().within_tag(tag.clone()),
        None => ExactMatch::default(),
    };
    Ok(match reward.verifier {
        VerifierKind::Env => match env.name {
            EnvName::Countdown => Box::new(CountdownReward::default()),
            EnvName::Arithmetic | EnvName::Jsonl | EnvName::Calculator => {
                Box::new(NumericMatch::default())
            }
        },
        VerifierKind::Numeric => Box::new(NumericMatch::default()),
        VerifierKind::Exact => Box::new(exact()),
        VerifierKind::ExactNocase => Box::new(exact().case_insensitive()),
        VerifierKind::Regex => {
            let pattern = reward.pattern.as_deref().ok_or_else(|| {
                error("reward.verifier = \"regex\" needs reward.pattern".to_owned())
            })?;
            let regex = RegexMatch::new(pattern, RegexMode::Captures)
                .map_err(|e| error(format!("reward.pattern: {e}")))?;
            Box::new(regex)
        }
    })
}

/// The `reward.kind = "rule"` scorer: `reward.correct_weight` × the [`verifier`] (part
/// `correct`) + `reward.format_weight` × the answer-tag format check on
/// `reward.format_tags` (part `format`, left out when its weight is 0), then multiplied by
/// `reward.scale` and clipped to `reward.clip`.
pub fn rule_reward(
    env: &EnvConfig,
    reward: &RewardConfig,
) -> Result<Box<dyn RewardFn>, RewardError> {
    let error = |message: String| RewardError {
        reward: "rule".to_owned(),
        message,
    };
    if reward.kind != RewardKind::Rule {
        return Err(error(format!(
            "reward.kind = \"{}\" is not a rule-based reward",
            reward.kind
        )));
    }
    let verifier = verifier(env, reward).map_err(|e| error(e.to_string()))?;
    let mut parts = vec![Part {
        name: "correct".to_owned(),
        weight: reward.correct_weight,
        reward: verifier,
    }];
    if reward.format_weight != 0.0 {
        let format = TagFormat::new(reward.format_tags.iter().cloned())
            .map_err(|e| error(format!("reward.format_tags: {e}")))?;
        parts.push(Part::new("format", reward.format_weight, format));
    }
    let sum = WeightedSum::new("rule", parts).map_err(|e| error(e.to_string()))?;
    let scaled = Scaled::from_config(Box::new(sum), reward).map_err(|e| error(e.to_string()))?;
    Ok(Box::new(scaled))
}
