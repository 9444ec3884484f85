//! Core types of `rl`: the typed run configuration (TOML schema, overrides, validation) shared by
//! every role, and the public traits users extend — [`Env`] (task sources, single- or
//! multi-turn) and [`RewardFn`] (scorers) — with the task and chat types they exchange.

pub mod chat;
pub mod config;
pub mod env;
pub mod reward;
pub mod task;

pub use chat::{Message, Role};
pub use config::{Config, ConfigError};
pub use env::{Env, EnvError, Transition};
pub use reward::{RewardError, RewardFn, Score, Scoring};
pub use task::{Split, Task};
