//! Exact string match against the reference answer, after whitespace normalisation
//! (trimmed, inner runs of whitespace read as one space), optionally case-insensitive and
//! optionally only the content of the last answer tag.

use rl_core::{RewardError, RewardFn, Score, Scoring};

use crate::verifiers::{binary, reference, tags::last_tagged};

/// Scores 1 when the reply (or its last `<tag>…</tag>`) equals `Task::answer` after
/// whitespace normalisation, else 0. A task without a reference answer is an error.
///
/// ```
/// use rl_core::{RewardFn, Scoring, Task};
/// use rl_reward::ExactMatch;
///
/// let task = Task::single_turn("t0", "Capital of France?", Some("Paris".into()));
/// let exact = ExactMatch::default().case_insensitive().within_tag("answer");
/// let s = exact.score(&[Scoring { task: &task, response: "It is <answer> paris </answer>" }]).unwrap();
/// assert_eq!(s[0].reward, 1.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExactMatch {
    ignore_case: bool,
    tag: Option<String>,
}

impl ExactMatch {
    /// Compare ignoring case (Unicode lowercase).
    pub fn case_insensitive(mut self) -> Self {
        self.ignore_case = true;
        self
    }

    /// Compare only the content of the last `<tag>…</tag>`; a reply without one scores 0.
    pub fn within_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Whether `reply` matches `reference` under this matcher's rules.
    pub fn matches(&self, reply: &str, reference: &str) -> bool {
        let candidate = match &self.tag {
            Some(tag) => match last_tagged(reply, tag) {
                Some(content) => content,
                None => return false,
            },
            None => reply,
        };
        let (a, b) = (words(candidate), words(reference));
        if self.ignore_case {
            a.map(str::to_lowercase).eq(b.map(str::to_lowercase))
        } else {
            a.eq(b)
        }
    }
}

fn words(s: &str) -> std::str::SplitWhitespace<'_> {
    s.split_whitespace()
}

impl RewardFn for ExactMatch {
    fn name(&self) -> &str {
        "exact_match"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        batch
            .iter()
            .map(|s| Ok(binary(self.matches(s.response, reference(self.name(), s)?))))
            .collect()
    }
}
