//! The one error type of the shared algorithm math: bad shapes, empty masks, non-finite inputs,
//! out-of-range parameters and too-small groups, each saying what to change.

/// What went wrong in a shared algorithm function. The functions never panic on data the caller
/// passes; they return one of these instead, and never a silent NaN.
#[derive(Debug, thiserror::Error)]
pub enum MathError {
    /// A tensor's shape does not match the others (e.g. `values` `[4, 7]` beside a `[4, 8]` mask).
    #[error("{name} has shape {got:?}, expected {expected}")]
    Shape {
        /// The argument, as named in the function's signature.
        name: &'static str,
        /// Its actual shape.
        got: Vec<i64>,
        /// What was expected, e.g. `[4, 8] (the mask's shape)`.
        expected: String,
    },
    /// The mask selects no token (or too few for the statistic asked for).
    #[error(
        "{name}: the mask selects {valid} valid token(s), {op} needs at least {needs}; \
         drop empty batches before this step"
    )]
    EmptyMask {
        /// The argument or quantity being reduced.
        name: &'static str,
        /// The reduction, e.g. `a mean`, `an unbiased variance`.
        op: &'static str,
        /// Valid tokens (or sequences) found.
        valid: i64,
        /// The least the reduction needs.
        needs: i64,
    },
    /// NaN or ±inf at a valid position of an input.
    #[error(
        "{name} holds NaN or infinite values at valid (mask = 1) positions; \
         check the rewards and model outputs that produced it"
    )]
    NonFinite {
        /// The argument.
        name: &'static str,
    },
    /// A hyper-parameter outside its range.
    #[error("{name} = {value}: {rule}")]
    Param {
        /// The parameter, as its config key names it where there is one.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The rule it breaks, e.g. `must be in [0, 1]`.
        rule: &'static str,
    },
    /// A group has fewer samples than the estimator needs.
    #[error(
        "group {group} has {size} sample(s); {estimator} needs at least {needs} samples per prompt \
         (rollout.samples_per_prompt)"
    )]
    GroupTooSmall {
        /// The group id.
        group: i64,
        /// Samples in it.
        size: usize,
        /// The least the estimator needs.
        needs: usize,
        /// The estimator, e.g. `rloo`.
        estimator: &'static str,
    },
    /// An estimator was called without an input it needs, or with one it cannot use.
    #[error("{estimator}: {message}")]
    Input {
        /// The estimator, e.g. `gae`.
        estimator: &'static str,
        /// What is missing or refused, and what to do.
        message: &'static str,
    },
    /// libtorch failed (e.g. a device-to-host copy).
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Shorthand for results of this module.
pub type Result<T, E = MathError> = std::result::Result<T, E>;
