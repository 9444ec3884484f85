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
    /// Rewards are multiplied by this.
    pub scale: f64,
    /// Rewards are clipped to `[-clip, clip]` after scaling; none = no clipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            kind: RewardKind::Rule,
            model: None,
            url: None,
            scale: 1.0,
            clip: None,
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
    }
}
