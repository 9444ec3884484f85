//! Reward functions of `rl`, each an [`rl_core::RewardFn`]: rule-based verifiers (final-number
//! match, exact and regex string match, answer-tag format), a weighted sum of several with named
//! parts, and `[reward]` scaling. Verifiers are pure Rust, linear in the reply and bounded on
//! any input. Exact arithmetic ([`Rational`], [`expr`]) is shared with the environments that
//! need it (countdown, arithmetic). `remote` (feature `grpc`, on by default) serves any of them
//! over gRPC and scores through a server in another process.

pub mod error;
pub mod expr;
pub mod rational;
#[cfg(feature = "grpc")]
pub mod remote;
pub mod scaled;
pub mod verifiers;
pub mod weighted;

pub use error::BuildError;
pub use rational::Rational;
pub use scaled::Scaled;
pub use verifiers::{
    exact::ExactMatch,
    extract::{Extracted, Extractor, Rule},
    format::TagFormat,
    numeric::NumericMatch,
    pattern::{RegexMatch, RegexMode},
};
pub use weighted::{Part, WeightedSum};
