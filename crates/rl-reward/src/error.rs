//! Errors building a reward function (bad pattern, bad weight, ...). Errors while scoring are
//! [`rl_core::RewardError`]s, which name the reward and the task.

/// Why a reward function could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The regex pattern is longer than allowed.
    #[error("the regex pattern is {len} bytes; at most {max} are allowed")]
    PatternTooLong {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The regex pattern does not compile (or compiles too large).
    #[error("the regex pattern {pattern:?} does not compile: {source}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// The `regex` crate's reason.
        source: regex::Error,
    },
    /// A capture-comparing regex without any capture group.
    #[error(
        "the regex pattern {0:?} has no capture group to compare with the answer; add (?P<answer>...)"
    )]
    NoCaptureGroup(String),
    /// A format tag name that is not a plain word.
    #[error("format tag {0:?} is not a tag name: use 1 to 32 of A-Z, a-z, 0-9, _ and -")]
    BadTag(String),
    /// A format reward with no tags.
    #[error("a format reward needs at least one tag, e.g. [\"answer\"]")]
    NoTags,
    /// A weighted sum with no parts.
    #[error("a weighted sum needs at least one part")]
    NoParts,
    /// A part weight that is NaN or infinite.
    #[error("the weight of part {name:?} is {weight}: it must be a finite number")]
    BadWeight {
        /// The part.
        name: String,
        /// Its weight.
        weight: f64,
    },
    /// Two parts of a weighted sum share a name.
    #[error("two parts of the weighted sum are named {0:?}; part names must differ")]
    DuplicatePart(String),
    /// A scale of 0, NaN or infinity, or a clip that is not positive.
    #[error("{0}")]
    BadScale(String),
}
