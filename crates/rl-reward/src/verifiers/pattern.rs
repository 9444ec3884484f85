//! Regular-expression rewards, compiled once with the `regex` crate, whose matching takes time
//! linear in the reply for every pattern (no backtracking, no look-around), so no reply can
//! make it hang. Patterns are capped in length and compiled size.

use regex::{Regex, RegexBuilder};
use rl_core::{RewardError, RewardFn, Score, Scoring};

use crate::{
    error::BuildError,
    verifiers::{binary, reference},
};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4096;
/// Largest compiled program accepted (the `regex` crate's `size_limit`), in bytes.
pub const MAX_COMPILED_BYTES: usize = 1 << 20;

/// What a [`RegexMatch`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexMode {
    /// 1 when the pattern matches anywhere in the reply.
    Matches,
    /// 1 when the last match's capture group `answer` (or group 1 if there is no group of that
    /// name) equals `Task::answer`, both trimmed; a reply without a match scores 0.
    Captures,
}

/// A reward from a regular expression (see [`RegexMode`]).
///
/// ```
/// use rl_core::{RewardFn, Scoring, Task};
/// use rl_reward::{RegexMatch, RegexMode};
///
/// let task = Task::single_turn("t0", "Pick a letter.", Some("B".into()));
/// let choice = RegexMatch::new(r"(?i)option\s+(?P<answer>[A-D])\b", RegexMode::Captures).unwrap();
/// let s = choice.score(&[Scoring { task: &task, response: "I pick option B." }]).unwrap();
/// assert_eq!(s[0].reward, 1.0);
/// ```
#[derive(Debug, Clone)]
pub struct RegexMatch {
    regex: Regex,
    mode: RegexMode,
    group: usize,
}

impl RegexMatch {
    /// Compiles `pattern` (the `regex` crate's syntax) once. Errors: a pattern over
    /// [`MAX_PATTERN_BYTES`] or [`MAX_COMPILED_BYTES`] compiled, a syntax error, or
    /// [`RegexMode::Captures`] without a capture group.
    pub fn new(pattern: &str, mode: RegexMode) -> Result<Self, BuildError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(BuildError::PatternTooLong {
                len: pattern.len(),
                max: MAX_PATTERN_BYTES,
            });
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(MAX_COMPILED_BYTES)
            .dfa_size_limit(MAX_COMPILED_BYTES)
            .build()
            .map_err(|source| BuildError::BadPattern {
                pattern: pattern.to_owned(),
                source,
            })?;
        let named = regex.capture_names().position(|n| n == Some("answer"));
        let group = match (mode, named) {
            (_, Some(i)) => i,
            (RegexMode::Captures, None) if regex.captures_len() < 2 => {
                return Err(BuildError::NoCaptureGroup(pattern.to_owned()));
            }
            _ => 1,
        };
        Ok(Self { regex, mode, group })
    }

    /// Whether `reply` passes, given the reference answer (needed by [`RegexMode::Captures`]).
    pub fn matches(&self, reply: &str, reference: Option<&str>) -> bool {
        match self.mode {
            RegexMode::Matches => self.regex.is_match(reply),
            RegexMode::Captures => {
                let last = self.regex.captures_iter(reply).last();
                let captured = last.as_ref().and_then(|c| c.get(self.group));
                captured
                    .zip(reference)
                    .is_some_and(|(c, r)| c.as_str().trim() == r.trim())
            }
        }
    }
}

impl RewardFn for RegexMatch {
    fn name(&self) -> &str {
        "regex_match"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        batch
            .iter()
            .map(|s| {
                let reference = match self.mode {
                    RegexMode::Matches => None,
                    RegexMode::Captures => Some(reference(self.name(), s)?),
                };
                Ok(binary(self.matches(s.response, reference)))
            })
            .collect()
    }
}
