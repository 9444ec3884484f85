//! Format rewards: did the reply use the requested answer tags, e.g.
//! `<think>…</think><answer>…</answer>` as in DeepSeek-R1's format reward
//! (<https://arxiv.org/abs/2501.12948>, §2.2.2).

use rl_core::{RewardError, RewardFn, Score, Scoring};

use crate::{error::BuildError, verifiers::binary};

/// Scores 1 when the reply holds each tag of the list exactly once as an opening and a closing
/// tag, in the listed order, pairs not overlapping, each with non-blank content; else 0. With
/// [`strict`](Self::strict), only whitespace may lie outside the pairs.
///
/// ```
/// use rl_core::{RewardFn, Scoring, Task};
/// use rl_reward::TagFormat;
///
/// let task = Task::single_turn("t0", "2 + 2?", None);
/// let format = TagFormat::new(["think", "answer"]).unwrap();
/// let ok = "<think>2 and 2</think> <answer>4</answer>";
/// let s = format.score(&[Scoring { task: &task, response: ok }, Scoring { task: &task, response: "4" }]).unwrap();
/// assert_eq!((s[0].reward, s[1].reward), (1.0, 0.0));
/// ```
#[derive(Debug, Clone)]
pub struct TagFormat {
    tags: Vec<(String, String)>,
    strict: bool,
}

impl TagFormat {
    /// Checks for `tags`, in order. Each name is 1–32 of `A-Z a-z 0-9 _ -`; at least one.
    pub fn new<I, S>(tags: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags = tags
            .into_iter()
            .map(|t| {
                let t = t.into();
                if rl_core::config::is_tag_name(&t) {
                    Ok((format!("<{t}>"), format!("</{t}>")))
                } else {
                    Err(BuildError::BadTag(t))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if tags.is_empty() {
            return Err(BuildError::NoTags);
        }
        Ok(Self {
            tags,
            strict: false,
        })
    }

    /// Also require that nothing but whitespace lies outside the tag pairs.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Whether `reply` is well formatted.
    pub fn matches(&self, reply: &str) -> bool {
        let mut pos = 0;
        for (open, close) in &self.tags {
            if reply.matches(open.as_str()).nth(1).is_some()
                || reply.matches(close.as_str()).nth(1).is_some()
            {
                return false;
            }
            let Some(start) = reply[pos..].find(open.as_str()) else {
                return false;
            };
            if self.strict && !reply[pos..pos + start].trim().is_empty() {
                return false;
            }
            let content_start = pos + start + open.len();
            let Some(len) = reply[content_start..].find(close.as_str()) else {
                return false;
            };
            if reply[content_start..content_start + len].trim().is_empty() {
                return false;
            }
            pos = content_start + len + close.len();
        }
        !self.strict || reply[pos..].trim().is_empty()
    }
}

impl RewardFn for TagFormat {
    fn name(&self) -> &str {
        "tag_format"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        Ok(batch
            .iter()
            .map(|s| binary(self.matches(s.response)))
            .collect())
    }
}
