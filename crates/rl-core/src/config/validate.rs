//! Validation of a parsed config: every rule that serde's types cannot express (ranges, cross-key
//! constraints), reported all at once, each naming the key, the bad value and what is allowed.

use std::fmt;

/// One broken rule: `algorithm.clip_ratio = -1: must be in (0, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Dotted key, e.g. `algorithm.clip_ratio`.
    pub key: String,
    /// The offending value as TOML would show it.
    pub value: String,
    /// What is allowed instead.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.key, self.value, self.rule)
    }
}

/// Collects the violations of one config, section by section.
#[derive(Debug, Default)]
pub struct Validator {
    violations: Vec<Violation>,
}

impl Validator {
    /// Records a violation of `key` unless `ok` holds.
    pub fn require(
        &mut self,
        ok: bool,
        key: &str,
        value: impl fmt::Display,
        rule: impl Into<String>,
    ) {
        if !ok {
            self.violations.push(Violation {
                key: key.to_owned(),
                value: value.to_string(),
                rule: rule.into(),
            });
        }
    }

    /// Records that `key` asks for something not implemented yet, unless `ok` holds (the key is
    /// at its default). `fix` says which value works today.
    pub fn not_yet(&mut self, ok: bool, key: &str, value: impl fmt::Display, fix: &str) {
        self.require(ok, key, value, format!("not available yet: {fix}"));
    }

    /// `lo < value < hi`.
    pub fn open_range(&mut self, key: &str, value: f64, lo: f64, hi: f64) {
        let ok = value > lo && value < hi;
        self.require(ok, key, value, format!("must be in ({lo}, {hi})"));
    }

    /// `lo <= value <= hi`.
    pub fn closed_range(&mut self, key: &str, value: f64, lo: f64, hi: f64) {
        let ok = (lo..=hi).contains(&value);
        self.require(ok, key, value, format!("must be in [{lo}, {hi}]"));
    }

    /// `value > 0` and finite.
    pub fn positive(&mut self, key: &str, value: f64) {
        let ok = value > 0.0 && value.is_finite();
        self.require(ok, key, value, "must be a finite number > 0");
    }

    /// `value >= 0` and finite.
    pub fn non_negative(&mut self, key: &str, value: f64) {
        let ok = value >= 0.0 && value.is_finite();
        self.require(ok, key, value, "must be a finite number >= 0");
    }

    /// An integer count that must be at least 1.
    pub fn at_least_one(&mut self, key: &str, value: u64) {
        self.require(value >= 1, key, value, "must be at least 1");
    }

    /// The violations found, in the order the sections were checked.
    pub fn finish(self) -> Vec<Violation> {
        self.violations
    }
}

/// Formats a string value the way TOML writes it, for messages.
pub fn quoted(s: &str) -> String {
    format!("{s:?}")
}
