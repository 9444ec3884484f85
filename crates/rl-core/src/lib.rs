//! Core vocabulary of `rl`, in pure Rust (no libtorch): the typed run configuration (TOML schema,
//! overrides, validation) shared by every role, and the traits users extend that need no tensors
//! — [`Env`] (task sources, single- or multi-turn) and [`RewardFn`] (scorers) — with the task and
//! chat types they exchange. The tensor-level `Algorithm` trait lives in `rl-algorithms`.

pub mod chat;
pub mod config;
pub mod env;
pub mod episode;
pub mod reward;
pub mod rng;
pub mod task;

pub use chat::{Message, Role};
pub use config::{Config, ConfigError};
pub use env::{Env, EnvError, Transition};
pub use episode::{Episode, EpisodeError, Turn, run_episodes};
pub use reward::{RewardError, RewardFn, Score, Scoring};
pub use task::{Split, Task};
