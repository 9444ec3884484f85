//! Numbers written in text: a single left-to-right scanner that finds every number token in
//! linear time and reads it exactly as a [`Rational`].
//!
//! A token is, in order of the checks:
//! - `\frac{a}{b}` (also `\dfrac`, `\tfrac`) with integer `a`, `b`, `b ≠ 0`;
//! - an integer part: a run of digits, or `1,234,567`-style groups (1–3 digits, then groups of
//!   exactly 3 after each comma; `1,2` is two numbers);
//! - then optionally `.digits` (`3.50` reads as 7/2) or `/digits` with a non-zero integer
//!   denominator (`3/4`);
//! - a leading `.5` is 1/2.
//!
//! A `-` (or U+2212 `−`) directly before the token is its sign unless it follows a letter, a
//! digit or a closing bracket (`5-3` holds 5 and 3; `x = -3` holds −3). Values that do not fit
//! an `i128` fraction are tokens with no value, so an absurdly long number is still one token,
//! found in one pass.

use crate::rational::Rational;

/// One number in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberToken {
    /// Byte offset of the first byte (the sign, when there is one).
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// The exact value; `None` when it does not fit an `i128` fraction.
    pub value: Option<Rational>,
}

/// Every number token of `text`, left to right.
pub fn numbers(text: &str) -> Numbers<'_> {
    Numbers {
        bytes: text.as_bytes(),
        pos: 0,
    }
}

/// The number `text` holds, when it is exactly one number token (surrounding whitespace
/// allowed): `"42"`, `" -1,234 "`, `"3.50"`, `"7/2"`, `"\frac{7}{2}"`. `None` otherwise, or when
/// the value does not fit.
pub fn parse_number(text: &str) -> Option<Rational> {
    let text = text.trim();
    let mut tokens = numbers(text);
    let token = tokens.next()?;
    (token.start == 0 && token.end == text.len()).then_some(token.value)?
}

/// Iterator over the number tokens of a text (see [`numbers`]).
#[derive(Debug, Clone)]
pub struct Numbers<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for Numbers<'_> {
    type Item = NumberToken;

    fn next(&mut self) -> Option<NumberToken> {
        let b = self.bytes;
        while self.pos < b.len() {
            let i = self.pos;
            if b[i] == b'\\'
                && let Some((end, value)) = frac(b, i)
            {
                self.pos = end;
                return Some(signed(b, i, end, Some(value)));
            }
            let leading_dot = b[i] == b'.'
                && b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !b[i - 1].is_ascii_digit());
            if b[i].is_ascii_digit() || leading_dot {
                let (end, value) = number(b, i);
                self.pos = end;
                return Some(signed(b, i, end, value));
            }
            self.pos += 1;
        }
        None
    }
}

/// The token starting at `start` (digits or `\frac`) ending at `end`, with its sign if the
/// bytes before it are one.
fn signed(b: &[u8], start: usize, end: usize, value: Option<Rational>) -> NumberToken {
    let sign_len = if start >= 1 && b[start - 1] == b'-' {
        1
    } else if start >= 3 && &b[start - 3..start] == "−".as_bytes() {
        3
    } else {
        0
    };
    let after_operand = |j: usize| {
        j > 0 && (b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b')' | b']' | b'}'))
    };
    if sign_len > 0 && !after_operand(start - sign_len) {
        NumberToken {
            start: start - sign_len,
            end,
            value: value.and_then(Rational::checked_neg),
        }
    } else {
        NumberToken { start, end, value }
    }
}

/// Digits from `i`: the end and the value, overflow giving `None`.
fn digits(b: &[u8], mut i: usize) -> (usize, Option<i128>) {
    let mut value = Some(0i128);
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(i128::from(d - b'0')));
        i += 1;
    }
    (i, value)
}

fn count_digits(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// A plain number from `i` (see the module docs): its end and exact value.
fn number(b: &[u8], i: usize) -> (usize, Option<Rational>) {
    let (mut end, mut int) = digits(b, i);
    // Thousands groups: only after a first group of 1-3 digits, each exactly 3 digits.
    if end - i <= 3 {
        while b.get(end) == Some(&b',') && count_digits(b, end + 1) == 3 {
            let (next, group) = digits(b, end + 1);
            int = int
                .and_then(|v| v.checked_mul(1000))
                .and_then(|v| v.checked_add(group?));
            end = next;
        }
    }
    let digit_at = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    if b.get(end) == Some(&b'.') && digit_at(end + 1) {
        let (frac_end, num, den) = decimals(b, end + 1);
        let whole = int.and_then(Rational::integer);
        let frac = num.zip(den).and_then(|(n, d)| Rational::new(n, d));
        let value = whole.zip(frac).and_then(|(w, f)| w.checked_add(f));
        return (frac_end, value);
    }
    if b.get(end) == Some(&b'/') && digit_at(end + 1) {
        let (den_end, den) = digits(b, end + 1);
        if den != Some(0) {
            let value = int.zip(den).and_then(|(n, d)| Rational::new(n, d));
            return (den_end, value);
        }
    }
    (end, int.and_then(Rational::integer))
}

/// Decimal digits from `i`: the end, and the fraction as (numerator, power of ten), with
/// trailing zeros dropped so `3.5000…0` never overflows.
fn decimals(b: &[u8], mut i: usize) -> (usize, Option<i128>, Option<i128>) {
    let (mut num, mut den) = (Some(0i128), Some(1i128));
    let mut zeros = 0usize;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        if *d == b'0' {
            zeros += 1;
        } else {
            for _ in 0..=zeros {
                num = num.and_then(|v| v.checked_mul(10));
                den = den.and_then(|v| v.checked_mul(10));
            }
            zeros = 0;
            num = num.and_then(|v| v.checked_add(i128::from(d - b'0')));
        }
        i += 1;
    }
    (i, num, den)
}

/// `\frac{a}{b}`, `\dfrac{a}{b}` or `\tfrac{a}{b}` at `i` (the backslash), integers `a` and
/// non-zero `b`, spaces allowed inside the braces: the end and the value.
fn frac(b: &[u8], i: usize) -> Option<(usize, Rational)> {
    let rest = &b[i + 1..];
    let name = ["frac", "dfrac", "tfrac"]
        .into_iter()
        .find(|n| rest.starts_with(n.as_bytes()))?;
    let mut j = i + 1 + name.len();
    let mut parts = [0i128; 2];
    for part in &mut parts {
        j = skip_spaces(b, j);
        (b.get(j) == Some(&b'{')).then_some(())?;
        j = skip_spaces(b, j + 1);
        let negative = b.get(j) == Some(&b'-');
        if negative {
            j += 1;
        }
        let (end, value) = digits(b, j);
        (end > j).then_some(())?;
        *part = if negative { -value? } else { value? };
        j = skip_spaces(b, end);
        (b.get(j) == Some(&b'}')).then_some(())?;
        j += 1;
    }
    Some((j, Rational::new(parts[0], parts[1])?))
}

fn skip_spaces(b: &[u8], mut j: usize) -> usize {
    while b.get(j) == Some(&b' ') {
        j += 1;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        numbers(text)
            .map(|t| t.value.map_or("?".into(), |v| v.to_string()))
            .collect()
    }

    #[test]
    fn tokens_cover_signs_groups_decimals_and_fractions() {
        let cases: &[(&str, &[&str])] = &[
            ("1,234 and -5", &["1234", "-5"]),
            ("3.50 .25 3.", &["7/2", "1/4", "3"]),
            ("5-3 = 2", &["5", "3", "2"]),
            ("x = -3, y=−4", &["-3", "-4"]),
            ("(2)-1", &["2", "1"]),
            (
                "1,2 and 1,2345 and 12,345,678",
                &["1", "2", "1", "2345", "12345678"],
            ),
            ("1234,567", &["1234", "567"]),
            ("3/4 or 3/0", &["3/4", "3", "0"]),
            (r"\frac{3}{4} and -\dfrac{ 6 }{ -4 }", &["3/4", "3/2"]),
            (r"\frac{3}{0} \frac{a}{b}", &["3", "0"]),
            ("007", &["7"]),
            ("0.000", &["0"]),
            ("", &[]),
            ("no digits here", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(values(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn spans_include_the_sign() {
        let t: Vec<_> = numbers("a -12 b").collect();
        assert_eq!((t[0].start, t[0].end), (2, 5));
    }

    #[test]
    fn values_that_do_not_fit_are_one_token_without_a_value() {
        let long = "9".repeat(100);
        assert_eq!(values(&format!("{long} 5")), ["?", "5"]);
        let trailing = format!("3.5{}", "0".repeat(1000));
        assert_eq!(values(&trailing), ["7/2"]);
        assert_eq!(values(&format!("0.{}1", "0".repeat(60))), ["?"]);
    }

    #[test]
    fn parse_number_wants_exactly_one_token() {
        assert_eq!(parse_number(" 3.50 "), Rational::new(7, 2));
        assert_eq!(parse_number("-1,234"), Rational::integer(-1234));
        assert_eq!(parse_number("3 4"), None);
        assert_eq!(parse_number("42abc"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("−7"), Rational::integer(-7));
    }
}
