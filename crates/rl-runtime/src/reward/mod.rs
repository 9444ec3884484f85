//! The run's scorer, as `[reward]` describes it: the environment's rule reward, a reward model
//! on its own actor (on `placement.reward_device`), or a remote `rl reward-server`; scaled and
//! clipped as `reward.scale` and `reward.clip` say. The controller and `rl reward-server` both
//! build theirs here, so a config means the same scorer everywhere.

use rl_core::{Config, RewardError, RewardFn, config::RewardKind};
use rl_model::heads::ScalarModel;
use rl_reward::Scaled;

pub use model_scorer::{ModelScorer, ModelScorerSettings};

mod model_scorer;

/// The scorer `config` describes.
pub fn scorer(config: &Config) -> Result<Box<dyn RewardFn>, RewardError> {
    let reward = &config.reward;
    let error = |kind: &str, message: String| RewardError {
        reward: kind.to_owned(),
        message,
    };
    let inner: Box<dyn RewardFn> = match reward.kind {
        RewardKind::Rule => return rl_envs::rule_reward(&config.env, reward),
        RewardKind::Remote => Box::new(rl_reward::remote::connect(reward)?),
        RewardKind::Model => {
            let name = reward.model.as_deref().ok_or_else(|| {
                error("model", "reward.kind = \"model\" needs reward.model".into())
            })?;
            let dir = rl_model::source::resolve(name)
                .map_err(|e| error("model", format!("reward.model: {e}")))?;
            let is_reward_model = dir.is_dir()
                && ScalarModel::is_reward_model_dir(&dir)
                    .map_err(|e| error("model", format!("reward.model: {e}")))?;
            if !is_reward_model {
                return Err(error(
                    "model",
                    format!(
                        "reward.model = {name:?} is not a reward model: give an HF directory whose config.json names a *ForSequenceClassification architecture (train one with run.trainer = \"reward_model\")"
                    ),
                ));
            }
            Box::new(ModelScorer::load(&dir, model_settings(config)?)?)
        }
    };
    let scaled = Scaled::from_config(inner, reward)
        .map_err(|e| error(reward.kind.as_str(), e.to_string()))?;
    Ok(Box::new(scaled))
}

/// Where and how a `reward.kind = "model"` scorer runs: on `placement.reward_device`, in
/// `model.dtype`, `reward.max_length` tokens per row, `reward.batch_size` rows per pass.
pub fn model_settings(config: &Config) -> Result<ModelScorerSettings, RewardError> {
    let device =
        rl_model::resolve_device(config.placement.reward_device, "placement.reward_device")
            .map_err(|e| RewardError {
                reward: "model".to_owned(),
                message: e.to_string(),
            })?;
    Ok(ModelScorerSettings {
        device,
        kind: rl_model::resolve_kind(config.model.dtype, device),
        max_length: config.reward.max_length as usize,
        batch_size: config.reward.batch_size as usize,
    })
}
