//! Final-answer extraction: which number in a reply is its answer.
//!
//! Only the last [`Extractor::max_scan_bytes`] bytes of a reply are read (answers come at the
//! end), and every rule is a linear scan, so any input costs at most a few passes over that
//! window. The first rule that finds a number token wins:
//!
//! 1. **Answer tag**: the last number inside the last `<answer>…</answer>` (tag configurable);
//! 2. **Boxed**: the last number inside the last `\boxed{…}`;
//! 3. **Answer phrase**: the first number after the last "answer is", "answer:" or
//!    "answer =" (any case, `*` and spaces allowed between: "**Answer:** 42");
//! 4. **Last number**: the last number of the reply.
//!
//! A rule whose marker is present but holds no number gives way to the next rule. The chosen
//! token may be too large to represent (e.g. a megabyte of digits): then the reply has an answer
//! with no value, which matches nothing.

use crate::{
    rational::Rational,
    verifiers::{
        number::{NumberToken, numbers},
        tags::{last_boxed, last_tagged, tail},
    },
};

/// Default window read from the end of a reply, in bytes.
pub const DEFAULT_MAX_SCAN_BYTES: usize = 64 * 1024;

/// Which rule found the answer (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Inside the last answer tag.
    AnswerTag,
    /// Inside the last `\boxed{}`.
    Boxed,
    /// After the last "answer is" / "answer:" / "answer =".
    AnswerPhrase,
    /// The last number of the reply.
    LastNumber,
}

/// The answer found in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    /// The rule that found it.
    pub rule: Rule,
    /// Its exact value; `None` when the number is too large to represent.
    pub value: Option<Rational>,
}

/// Finds the final number of a reply (see the [module docs](self) for the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extractor {
    /// Bytes read from the end of the reply.
    pub max_scan_bytes: usize,
    /// Name of the answer tag (`answer` reads `<answer>…</answer>`).
    pub tag: String,
}

impl Default for Extractor {
    fn default() -> Self {
        Self {
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES,
            tag: "answer".to_owned(),
        }
    }
}

impl Extractor {
    /// The reply's final number, or `None` when no rule finds one.
    pub fn extract(&self, reply: &str) -> Option<Extracted> {
        let text = tail(reply, self.max_scan_bytes);
        let found = |rule, token: Option<NumberToken>| {
            token.map(|t| Extracted {
                rule,
                value: t.value,
            })
        };
        let tagged = last_tagged(text, &self.tag).and_then(|c| numbers(c).last());
        found(Rule::AnswerTag, tagged)
            .or_else(|| {
                found(
                    Rule::Boxed,
                    last_boxed(text).and_then(|c| numbers(c).last()),
                )
            })
            .or_else(|| {
                let after = answer_phrase_end(text)?;
                found(Rule::AnswerPhrase, numbers(&text[after..]).next())
            })
            .or_else(|| found(Rule::LastNumber, numbers(text).last()))
    }
}

/// Byte offset just past the last "answer is" / "answer:" / "answer =" (ASCII case-insensitive,
/// spaces and `*` allowed after "answer"); `None` when there is none.
fn answer_phrase_end(text: &str) -> Option<usize> {
    const WORD: &[u8] = b"answer";
    let b = text.as_bytes();
    let mut end = b.len();
    while end >= WORD.len() {
        let start = end - WORD.len();
        if b[start..end].eq_ignore_ascii_case(WORD) {
            let mut j = end;
            while b.get(j).is_some_and(|c| matches!(c, b' ' | b'*')) {
                j += 1;
            }
            if matches!(b.get(j), Some(b':' | b'=')) {
                return Some(j + 1);
            }
            let is = b
                .get(j..j + 2)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"is"));
            if is && !b.get(j + 2).is_some_and(u8::is_ascii_alphanumeric) {
                return Some(j + 2);
            }
        }
        end -= 1;
    }
    None
}
