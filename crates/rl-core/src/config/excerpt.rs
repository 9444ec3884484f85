//! A TOML error as the user needs it: line, column, the offending stretch of the line and the
//! parser's message, each clipped, so that a 50 MB line gives a short error, not 100 MB of it.

/// Characters of the offending line shown around the error.
const WINDOW: usize = 80;
/// Characters of the parser's message kept (it may quote the offending value whole).
const MESSAGE: usize = 300;

/// The error `e` in `text`, in the layout of toml's own (`line L, column C`, the line, a caret
/// under the span, the message) but clipped.
pub fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = clip(e.message().trim(), MESSAGE);
    let Some(span) = e.span() else {
        return format!("TOML parse error\n{message}");
    };
    let start = floor_char(text, span.start.min(text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_no = text[..line_start].matches('\n').count() + 1;
    let line = &text[line_start..line_end];
    let column = text[line_start..start].chars().count();
    let span_chars = text[start..floor_char(text, span.end.min(line_end).max(start))]
        .chars()
        .count()
        .max(1);
    // The window starts a little before the error when the error is far into the line.
    let skip = column.saturating_sub(WINDOW / 4);
    let shown: String = line.chars().skip(skip).take(WINDOW).collect();
    let total = line.chars().count();
    let (before, after) = (
        if skip > 0 { "…" } else { "" },
        if skip + WINDOW < total { "…" } else { "" },
    );
    let pad = " ".repeat(column - skip + before.chars().count());
    let caret = "^".repeat(span_chars.min(WINDOW - (column - skip)).max(1));
    let gutter = " ".repeat(line_no.to_string().len());
    format!(
        "TOML parse error at line {line_no}, column {}\n{gutter} |\n{line_no} | {before}{shown}{after}\n{gutter} | {pad}{caret}\n{message}",
        column + 1
    )
}

/// `text` cut to at most `max` characters, saying how much was left out.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

/// The largest char boundary of `text` at or before `i`.
fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn error(text: &str) -> String {
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        describe(text, &e)
    }

    #[test]
    fn short_lines_read_as_toml_writes_them() {
        let got = error("[run]\nsteps = 5\nbad line here\n");
        assert_eq!(
            got,
            "TOML parse error at line 3, column 5\n  |\n3 | bad line here\n  |     ^\nkey with no value, expected `=`"
        );
    }

    #[test]
    fn a_huge_line_gives_a_short_error() {
        let text = format!("[run]\nsteps = 5 {}\n", "x".repeat(1 << 20));
        let got = error(&text);
        assert!(got.len() < 1000, "{} bytes", got.len());
        assert!(got.contains("line 2, column 9"), "{got}");
        assert!(got.contains("…"), "{got}");
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let text = format!("a = \"{}\" é é\n", "é".repeat(500));
        let got = error(&text);
        assert!(got.len() < 1000 && got.contains("line 1"), "{got}");
        assert_eq!(clip("ééé", 2), "éé… (2 more bytes)");
        assert_eq!(clip("abc", 3), "abc");
    }
}
