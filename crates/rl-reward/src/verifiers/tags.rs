//! XML-style answer tags (`<answer>…</answer>`) and LaTeX `\boxed{…}`: where in a reply the
//! model put its final answer. Plain substring search (linear time), no HTML parsing: tags
//! take no attributes and are matched case-sensitively.

/// The content of the last `<tag>…</tag>` pair: the text after the last `<tag>` up to the first
/// `</tag>` following it. `None` when there is no such pair.
pub fn last_tagged<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.rfind(&open)? + open.len();
    let len = text[start..].find(&close)?;
    Some(&text[start..start + len])
}

/// The content of the last `\boxed{…}` whose braces balance (nested braces, e.g.
/// `\boxed{\frac{1}{2}}`, are kept). `None` when there is none or its braces never close.
pub fn last_boxed(text: &str) -> Option<&str> {
    const OPEN: &str = "\\boxed{";
    let start = text.rfind(OPEN)? + OPEN.len();
    let mut depth = 1usize;
    for (i, b) in text.as_bytes()[start..].iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The suffix of `text` at most `max_bytes` long, cut at a character boundary.
pub fn tail(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_pair_wins() {
        let text = "<answer>1</answer> then <answer> 2 </answer>";
        assert_eq!(last_tagged(text, "answer"), Some(" 2 "));
        assert_eq!(last_tagged("<answer>1", "answer"), None);
        assert_eq!(last_tagged("<answer>1</answer><answer>2", "answer"), None);
        assert_eq!(last_tagged("<think>x</think>", "answer"), None);
        assert_eq!(last_tagged("<answer></answer>", "answer"), Some(""));
    }

    #[test]
    fn boxed_balances_braces() {
        assert_eq!(
            last_boxed(r"\boxed{1} \boxed{\frac{1}{2}}"),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed(r"\boxed{\frac{1}{2}"), None);
        assert_eq!(last_boxed("no box"), None);
    }

    #[test]
    fn tail_cuts_at_a_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("ab", 0), "");
    }
}
