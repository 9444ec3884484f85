//! Core types of `rl`: the typed run configuration (TOML schema, overrides, validation) shared by
//! every role, and the public traits users extend — [`Env`] (task sources, single- or
//! multi-turn), [`RewardFn`] (scorers) and [`Algorithm`] (advantages and loss) — with the task,
//! chat and batch types they exchange.

pub mod algorithm;
pub mod chat;
pub mod config;
pub mod env;
pub mod episode;
pub mod reward;
pub mod task;

pub use algorithm::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
pub use chat::{Message, Role};
pub use config::{Config, ConfigError};
pub use env::{Env, EnvError, Transition};
pub use episode::{Episode, EpisodeError, Turn, run_episodes};
pub use reward::{RewardError, RewardFn, Score, Scoring};
pub use task::{Split, Task};
