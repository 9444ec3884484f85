//! Core types of `rl`: the typed run configuration (TOML schema, overrides, validation) shared by
//! every role — controller, rollout workers, reward service, learners.

pub mod config;

pub use config::{Config, ConfigError};
