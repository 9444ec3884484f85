//! `[reward]`: how completions are scored.

use serde::{Deserialize, Serialize};

use super::validate::{Validator, quoted};

crate::choice! {
    /// Where rewards come from.
    pub enum RewardKind {
        /// The environment's own verifier (exact answer, format checks).
        Rule = "rule",
        /// A scalar-head reward model (`reward.model`).
        Model = "model",
        /// A remote scorer speaking the `rl.v1` reward protocol (`reward.url`).
        Remote = "remote",
    }
}

crate::choice! {
    /// The correctness check of `reward.kind = "rule"` and of `rl eval` (`reward.verifier`).
    pub enum VerifierKind {
        /// The environment's own check (final number; countdown's expression check).
        Env = "env",
        /// The reply's final number equals the answer exactly.
        Numeric = "numeric",
        /// The reply (or its last `reward.answer_tag`) equals the answer, whitespace-normalised.
        Exact = "exact",
        /// Like `exact`, ignoring case.
        ExactNocase = "exact_nocase",
        /// The last match of `reward.pattern` captures the answer (group `answer`, else 1).
        Regex = "regex",
    }
}

/// `[reward]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Which scorer.
    pub kind: RewardKind,
    /// Reward model (path or built-in name); required by `kind = "model"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Scorer address (`http://host:port`); required by `kind = "remote"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `kind = "remote"`: seconds one scoring attempt may take before it is abandoned
    /// (DEADLINE_EXCEEDED, then retried).
    pub timeout_s: f64,
    /// `kind = "remote"`: tries per batch, the first included; transient failures
    /// (unavailable, overloaded, deadline) are retried with exponential backoff.
    pub attempts: u32,
    /// `kind = "model"`: tokens per (prompt, response) row, at most; longer rows lose the
    /// start of the prompt.
    pub max_length: u32,
    /// `kind = "model"`: rows per forward pass of the reward model.
    pub batch_size: u32,
    /// Rewards are multiplied by this.
    pub scale: f64,
    /// Rewards are clipped to `[-clip, clip]` after scaling; none = no clipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
    /// `kind = "rule"`: weight of the environment's correctness check (1 right, 0 wrong).
    pub correct_weight: f64,
    /// `kind = "rule"`: weight of the format check (1 when the reply holds each of
    /// `format_tags` once, in order, non-empty); 0 = no format reward.
    pub format_weight: f64,
    /// `kind = "rule"`: the tags the format check looks for, e.g. `["think", "answer"]` for
    /// `<think>…</think><answer>…</answer>`.
    pub format_tags: Vec<String>,
    /// The correctness check (`rule` rewards and `rl eval`).
    pub verifier: VerifierKind,
    /// `verifier = "exact"`/`"exact_nocase"`: compare only the last `<tag>…</tag>` of the reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_tag: Option<String>,
    /// `verifier = "regex"`: the pattern whose capture is compared with the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            kind: RewardKind::Rule,
            model: None,
            url: None,
            timeout_s: 60.0,
            attempts: 4,
            max_length: 1024,
            batch_size: 32,
            scale: 1.0,
            clip: None,
            correct_weight: 1.0,
            format_weight: 0.0,
            format_tags: vec!["answer".to_owned()],
            verifier: VerifierKind::Env,
            answer_tag: None,
            pattern: None,
        }
    }
}

impl RewardConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        if self.kind == RewardKind::Model {
            let rule = "reward.kind = \"model\" needs reward.model = \"<path or name>\"";
            v.require(self.model.is_some(), "reward.model", "(unset)", rule);
        }
        if self.kind == RewardKind::Remote {
            match &self.url {
                None => v.require(
                    false,
                    "reward.url",
                    "(unset)",
                    "reward.kind = \"remote\" needs reward.url = \"http://host:port\"",
                ),
                Some(url) => {
                    let ok = url.starts_with("http://") || url.starts_with("https://");
                    v.require(
                        ok,
                        "reward.url",
                        quoted(url),
                        "must start with http:// or https://",
                    );
                }
            }
        }
        v.positive("reward.timeout_s", self.timeout_s);
        v.require(
            self.max_length >= 8,
            "reward.max_length",
            self.max_length,
            "must be at least 8 tokens",
        );
        v.at_least_one("reward.batch_size", self.batch_size.into());
        v.require(
            self.attempts >= 1,
            "reward.attempts",
            self.attempts,
            "must be at least 1 (the first try counts)",
        );
        let ok = self.scale.is_finite() && self.scale != 0.0;
        v.require(
            ok,
            "reward.scale",
            self.scale,
            "must be a finite, non-zero number",
        );
        if let Some(clip) = self.clip {
            v.positive("reward.clip", clip);
        }
        for (key, w) in [
            ("reward.correct_weight", self.correct_weight),
            ("reward.format_weight", self.format_weight),
        ] {
            v.require(w.is_finite(), key, w, "must be a finite number");
        }
        if self.kind == RewardKind::Rule {
            let ok = self.correct_weight != 0.0 || self.format_weight != 0.0;
            let rule = "reward.correct_weight and reward.format_weight are both 0: every reward would be 0";
            v.require(ok, "reward.correct_weight", self.correct_weight, rule);
        }
        if self.format_weight != 0.0 {
            v.require(
                !self.format_tags.is_empty(),
                "reward.format_tags",
                "[]",
                "reward.format_weight is not 0: list at least one tag, e.g. [\"answer\"]",
            );
        }
        let rule = "reward.verifier = \"regex\" needs reward.pattern = \"...(?P<answer>...)...\"";
        v.require(
            self.verifier != VerifierKind::Regex || self.pattern.is_some(),
            "reward.pattern",
            "(unset)",
            rule,
        );
        if let Some(tag) = &self.answer_tag {
            v.require(
                is_tag_name(tag),
                "reward.answer_tag",
                quoted(tag),
                "a tag name is 1 to 32 of A-Z, a-z, 0-9, _ and -",
            );
        }
        for tag in &self.format_tags {
            v.require(
                is_tag_name(tag),
                "reward.format_tags",
                quoted(tag),
                "a tag name is 1 to 32 of A-Z, a-z, 0-9, _ and -",
            );
        }
    }
}

/// Whether `tag` may name an XML-style tag of the format check.
pub fn is_tag_name(tag: &str) -> bool {
    (1..=32).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
