//! The run configuration: one typed TOML schema for every role, loaded from a file plus
//! `--set key=value` overrides, completed with per-algorithm defaults, then validated.
//!
//! A small file is enough: every key has a default (see `configs/reference.toml`).

mod algorithm;
mod checkpoint;
pub mod choice;
mod device;
mod env;
mod error;
mod eval;
mod excerpt;
mod learner;
mod load;
mod logging;
mod model;
mod placement;
mod preference;
mod reward;
mod rollout;
mod run;
mod validate;

use serde::{Deserialize, Serialize};

pub use algorithm::{
    AdvantageEstimator, AlgorithmConfig, AlgorithmName, KlEstimator, LossAggregation,
};
pub use checkpoint::CheckpointConfig;
pub use device::{DType, DeviceSpec};
pub use env::{
    ArithmeticOp, EnvConfig, EnvName, MAX_COUNTDOWN_NUMBER, MAX_COUNTDOWN_NUMBERS,
    MAX_COUNTDOWN_TARGET, MAX_OPERAND, MAX_OPERANDS, MAX_TURNS,
};
pub use error::ConfigError;
pub use eval::EvalConfig;
pub use learner::{LearnerConfig, LrSchedule};
pub use logging::LoggingConfig;
pub use model::{ModelConfig, SMOLLM2_135M};
pub use placement::{Backend, Mode as PlacementMode, PlacementConfig, WeightSync, is_loopback};
pub use preference::PreferenceConfig;
pub use reward::{RewardConfig, RewardKind, VerifierKind, is_tag_name};
pub use rollout::{MAX_BATCH, RolloutConfig};
pub use run::{RunConfig, Trainer};
pub use validate::Violation;

/// A whole run's configuration, one field per TOML section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[run]`
    pub run: RunConfig,
    /// `[model]`
    pub model: ModelConfig,
    /// `[env]`
    pub env: EnvConfig,
    /// `[rollout]`
    pub rollout: RolloutConfig,
    /// `[reward]`
    pub reward: RewardConfig,
    /// `[algorithm]`
    pub algorithm: AlgorithmConfig,
    /// `[learner]`
    pub learner: LearnerConfig,
    /// `[placement]`
    pub placement: PlacementConfig,
    /// `[logging]`
    pub logging: LoggingConfig,
    /// `[checkpoint]`
    pub checkpoint: CheckpointConfig,
    /// `[eval]`
    pub eval: EvalConfig,
    /// `[preference]`
    pub preference: PreferenceConfig,
}

impl Config {
    /// Fills the keys whose defaults depend on other keys (e.g. the advantage estimator of
    /// `algorithm.name`). Idempotent; the result is what gets written to the run directory.
    pub fn resolve(&mut self) {
        self.algorithm.resolve();
    }

    /// Checks every range and cross-key rule, returning all violations at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut v = validate::Validator::default();
        self.run.validate(&mut v);
        self.model.validate(&mut v);
        self.env.validate(&mut v);
        self.rollout.validate(&mut v);
        self.reward.validate(&mut v);
        self.algorithm.validate(&mut v, &self.rollout);
        self.learner
            .validate(&mut v, self.rollout.samples_per_step());
        self.placement.validate(&mut v);
        self.logging.validate(&mut v);
        self.checkpoint.validate(&mut v);
        self.eval.validate(&mut v, self.rollout.temperature);
        self.preference
            .validate(&mut v, self.run.trainer == Trainer::RewardModel);
        let violations = v.finish();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(violations))
        }
    }

    /// The config as TOML, every key written out (the form stored in a run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# config could not be serialised: {e}\n"))
    }
}
