//! Errors of loading a config: each says what is wrong, where, and how to fix it.

use std::{io, path::PathBuf};

use super::validate::Violation;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}. Check the path; the files under configs/ are ready to use", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not valid TOML, or does not fit the schema (unknown key, wrong type).
    #[error("config file {} is not valid:\n{message}\nEvery key is listed, with its type and default, in configs/reference.toml and docs/config.md", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and the offending line.
        message: String,
    },
    /// A `--set` argument is malformed or does not fit the schema.
    #[error("--set {arg}: {message}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        message: String,
    },
    /// Values that parse but break a rule.
    #[error("invalid config:\n{}", .0.iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Violation>),
}
