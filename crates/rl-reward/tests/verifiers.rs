//! The verifiers as a trainer uses them: extraction edge cases, exact matching, errors that
//! name the task, and pathological replies that must finish fast with a defined result.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::time::{Duration, Instant};

use rl_core::{RewardFn, Score, Scoring, Task};
use rl_reward::{
    BuildError, ExactMatch, Extractor, NumericMatch, Part, Rational, RegexMatch, RegexMode, Rule,
    Scaled, TagFormat, WeightedSum, verifiers::pattern::MAX_PATTERN_BYTES,
};

fn task(answer: &str) -> Task {
    Task::single_turn("t1", "question", Some(answer.to_owned()))
}

fn rewards(reward: &dyn RewardFn, task: &Task, replies: &[&str]) -> Vec<f64> {
    let batch: Vec<_> = replies
        .iter()
        .map(|r| Scoring { task, response: r })
        .collect();
    reward
        .score(&batch)
        .unwrap()
        .iter()
        .map(|s| s.reward)
        .collect()
}

/// Runs `f`, asserting it takes well under a second even in a debug build.
fn fast<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    out
}

#[test]
fn final_number_extraction_follows_the_documented_precedence() {
    use Rule::*;
    let cases: &[(&str, Option<(&str, Rule)>)] = &[
        ("42", Some(("42", LastNumber))),
        ("1,234", Some(("1234", LastNumber))),
        ("It costs $1,234,567.", Some(("1234567", LastNumber))),
        ("-5", Some(("-5", LastNumber))),
        ("x = −5", Some(("-5", LastNumber))),
        ("10 - 5", Some(("5", LastNumber))),
        ("3.50", Some(("7/2", LastNumber))),
        ("0.5 or .5", Some(("1/2", LastNumber))),
        ("3/4", Some(("3/4", LastNumber))),
        ("17 + 25 = 42", Some(("42", LastNumber))),
        (r"so \boxed{42}.", Some(("42", Boxed))),
        (r"\boxed{1} then \boxed{-2.0}", Some(("-2", Boxed))),
        (r"\boxed{\frac{3}{4}} is 0.75 or 3", Some(("3/4", Boxed))),
        (r"\boxed{x} and 7", Some(("7", LastNumber))),
        (r"\boxed{42 is unclosed 7", Some(("7", LastNumber))),
        (
            "The answer is 42. Check: 40 + 2 = 42, done in 3 steps",
            Some(("42", AnswerPhrase)),
        ),
        (
            "**Answer:** 1,000 (from 10 x 100)",
            Some(("1000", AnswerPhrase)),
        ),
        ("ANSWER = 8; 9", Some(("8", AnswerPhrase))),
        ("the answer is unclear, 12", Some(("12", AnswerPhrase))),
        ("my answers are 3 and 4", Some(("4", LastNumber))),
        ("the answer is none", None),
        ("<answer>5</answer> 6", Some(("5", AnswerTag))),
        (r"<answer>7</answer> \boxed{8}", Some(("7", AnswerTag))),
        ("<answer>2 + 2 = 4</answer>", Some(("4", AnswerTag))),
        ("<answer>four</answer> 4", Some(("4", LastNumber))),
        (
            "<answer>1</answer><answer>2</answer>",
            Some(("2", AnswerTag)),
        ),
        ("", None),
        ("   \n\t", None),
        ("no digits at all", None),
    ];
    let extractor = Extractor::default();
    for (reply, expected) in cases {
        let got = extractor
            .extract(reply)
            .map(|e| (e.value.map(|v| v.to_string()), e.rule));
        let expected = expected.map(|(v, rule)| (Some(v.to_owned()), rule));
        assert_eq!(got, expected, "{reply:?}");
    }
}

#[test]
fn numeric_match_compares_exact_values() {
    let cases: &[(&str, &str, f64)] = &[
        ("42", "The answer is 42.", 1.0),
        ("42", "The answer is 42.0", 1.0),
        ("42", "41", 0.0),
        ("3.5", "3.50", 1.0),
        ("3.5", "7/2", 1.0),
        ("0.75", r"\boxed{\frac{3}{4}}", 1.0),
        ("1234", "1,234", 1.0),
        ("-1,234", "-1234", 1.0),
        ("-5", "5", 0.0),
        ("-5", "10 - 5", 0.0),
        ("0.1", "0.1000000000000000000000000", 1.0),
        ("1", "", 0.0),
        ("1", "0.9999999999999999999", 0.0),
    ];
    for (answer, reply, expected) in cases {
        let got = rewards(&NumericMatch::default(), &task(answer), &[reply]);
        assert_eq!(got, [*expected], "answer {answer:?}, reply {reply:?}");
    }
}

#[test]
fn a_bad_reference_is_an_error_naming_the_task() {
    let numeric = NumericMatch::default();
    let t = Task::single_turn("q-17", "question", Some("forty-two".into()));
    let err = numeric
        .score(&[Scoring {
            task: &t,
            response: "42",
        }])
        .unwrap_err()
        .to_string();
    assert!(err.contains("q-17") && err.contains("forty-two"), "{err}");
    let none = Task::single_turn("q-18", "question", None);
    let err = numeric
        .score(&[Scoring {
            task: &none,
            response: "42",
        }])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("q-18") && err.contains("no reference answer"),
        "{err}"
    );
    // An empty batch is fine.
    assert_eq!(numeric.score(&[]).unwrap(), Vec::<Score>::new());
}

#[test]
fn a_megabyte_of_digits_finishes_fast_with_no_answer() {
    let digits = "7".repeat(1 << 20);
    let numeric = NumericMatch::default();
    let t = task("7");
    assert_eq!(fast(|| rewards(&numeric, &t, &[&digits])), [0.0]);
    let e = fast(|| Extractor::default().extract(&digits)).unwrap();
    assert_eq!((e.rule, e.value), (Rule::LastNumber, None));
    // Only the tail is read: an answer before a megabyte of text is not seen ...
    let buried = format!("<answer>7</answer>{}", "x".repeat(1 << 20));
    assert_eq!(fast(|| rewards(&numeric, &t, &[&buried])), [0.0]);
    // ... but one at the end is, however long the reply.
    let late = format!("{} The answer is 7.", "x".repeat(1 << 20));
    assert_eq!(fast(|| rewards(&numeric, &t, &[&late])), [1.0]);
}

#[test]
fn adversarial_replies_stay_linear() {
    let t = task("1");
    let numeric = NumericMatch::default();
    let inputs = [
        "answer ".repeat(100_000),
        "answer is ".repeat(100_000),
        "<answer>".repeat(100_000),
        r"\boxed{".repeat(100_000),
        r"\frac{1}{".repeat(100_000),
        "1,".repeat(500_000),
        "1.".repeat(500_000),
        "-".repeat(1 << 20),
        format!("1,{}", "2".repeat(1 << 20)),
        format!("0.{}", "0".repeat(1 << 20)),
        "é1".repeat(300_000),
    ];
    for input in &inputs {
        fast(|| rewards(&numeric, &t, &[input]));
        fast(|| rewards(&ExactMatch::default(), &t, &[input]));
        fast(|| rewards(&TagFormat::new(["think", "answer"]).unwrap(), &t, &[input]));
    }
}

#[test]
fn exact_match_normalises_whitespace_and_optionally_case() {
    let t = task("New  York");
    let exact = ExactMatch::default();
    assert_eq!(
        rewards(
            &exact,
            &t,
            &["  New York\n", "new york", "New York City", ""]
        ),
        [1.0, 0.0, 0.0, 0.0]
    );
    let loose = ExactMatch::default()
        .case_insensitive()
        .within_tag("answer");
    assert_eq!(
        rewards(
            &loose,
            &t,
            &[
                "<answer>new york</answer>",
                "new york",
                "<answer>NEW\tYORK </answer> trailing"
            ]
        ),
        [1.0, 0.0, 1.0]
    );
}

#[test]
fn regex_rewards_match_or_compare_a_capture() {
    let t = task("C");
    let any = RegexMatch::new(r"\b[A-D]\)", RegexMode::Matches).unwrap();
    assert_eq!(
        rewards(&any, &t, &["pick C)", "pick C", ""]),
        [1.0, 0.0, 0.0]
    );
    let capture = RegexMatch::new(r"option ([A-D])", RegexMode::Captures).unwrap();
    assert_eq!(
        rewards(
            &capture,
            &t,
            &["option A then option C", "option C then option B", "C"]
        ),
        [1.0, 0.0, 0.0]
    );
    // The regex crate has no backtracking: a classic catastrophic pattern stays linear.
    let nested = RegexMatch::new(r"^(a+)+$", RegexMode::Matches).unwrap();
    let evil = format!("{}b", "a".repeat(1 << 20));
    assert_eq!(fast(|| rewards(&nested, &t, &[&evil])), [0.0]);
}

#[test]
fn bad_regexes_are_refused_with_the_reason() {
    let long = "a".repeat(MAX_PATTERN_BYTES + 1);
    assert!(matches!(
        RegexMatch::new(&long, RegexMode::Matches),
        Err(BuildError::PatternTooLong { .. })
    ));
    let err = RegexMatch::new("(unclosed", RegexMode::Matches)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("(unclosed") && err.contains("does not compile"),
        "{err}"
    );
    // Small to write, huge to compile: refused by the compiled-size cap.
    let err = RegexMatch::new(r"\w{1000}\w{1000}\w{1000}", RegexMode::Matches)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not compile"), "{err}");
    assert!(matches!(
        RegexMatch::new("abc", RegexMode::Captures),
        Err(BuildError::NoCaptureGroup(_))
    ));
}

#[test]
fn tag_format_wants_each_tag_once_in_order_and_non_empty() {
    let t = task("4");
    let format = TagFormat::new(["think", "answer"]).unwrap();
    let replies = [
        "<think>2+2</think>\n<answer>4</answer>",
        "preamble <think>2+2</think><answer>4</answer> after",
        "<answer>4</answer><think>2+2</think>",
        "<think>2+2</think><answer> </answer>",
        "<think>a</think><think>b</think><answer>4</answer>",
        "<think>2+2<answer>4</answer></think>",
        "<think>2+2</think><answer>4",
        "",
    ];
    assert_eq!(
        rewards(&format, &t, &replies),
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    let strict = TagFormat::new(["think", "answer"]).unwrap().strict();
    assert_eq!(rewards(&strict, &t, &replies[..2]), [1.0, 0.0]);
    assert!(matches!(
        TagFormat::new(["a b"]),
        Err(BuildError::BadTag(_))
    ));
    assert!(matches!(
        TagFormat::new(Vec::<String>::new()),
        Err(BuildError::NoTags)
    ));
}

#[test]
fn weighted_sums_report_named_parts() {
    let sum = WeightedSum::new(
        "math",
        vec![
            Part::new("correct", 1.0, NumericMatch::default()),
            Part::new("format", 0.25, TagFormat::new(["answer"]).unwrap()),
        ],
    )
    .unwrap();
    let t = task("4");
    let batch = [
        Scoring {
            task: &t,
            response: "<answer>4</answer>",
        },
        Scoring {
            task: &t,
            response: "<answer>5</answer>",
        },
        Scoring {
            task: &t,
            response: "4",
        },
    ];
    let scores = sum.score(&batch).unwrap();
    let got: Vec<_> = scores
        .iter()
        .map(|s| (s.reward, s.parts["correct"], s.parts["format"]))
        .collect();
    assert_eq!(got, [(1.25, 1.0, 1.0), (0.25, 0.0, 1.0), (1.0, 1.0, 0.0)]);

    // Nested sums prefix their parts; errors name the part and the task.
    let outer = WeightedSum::new("outer", vec![Part::new("inner", 2.0, sum)]).unwrap();
    let s = outer.score(&batch[..1]).unwrap();
    assert_eq!(s[0].reward, 2.5);
    assert_eq!(s[0].parts["inner/format"], 1.0);
    let bad = Task::single_turn("t9", "q", Some("nope".into()));
    let err = outer
        .score(&[Scoring {
            task: &bad,
            response: "1",
        }])
        .unwrap_err()
        .to_string();
    assert!(err.contains("inner") && err.contains("t9"), "{err}");

    assert!(matches!(
        WeightedSum::new("w", vec![]),
        Err(BuildError::NoParts)
    ));
    let nan = Part::new("x", f64::NAN, NumericMatch::default());
    assert!(matches!(
        WeightedSum::new("w", vec![nan]),
        Err(BuildError::BadWeight { .. })
    ));
    let twice = vec![
        Part::new("x", 1.0, NumericMatch::default()),
        Part::new("x", 1.0, ExactMatch::default()),
    ];
    assert!(matches!(
        WeightedSum::new("w", twice),
        Err(BuildError::DuplicatePart(_))
    ));
}

/// A scorer that misbehaves, to check that sums refuse what it returns.
struct Broken(Vec<f64>);

impl RewardFn for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    fn score(&self, _: &[Scoring<'_>]) -> Result<Vec<Score>, rl_core::RewardError> {
        Ok(self.0.iter().map(|r| Score::new(*r)).collect())
    }
}

#[test]
fn nan_and_miscounted_scores_are_errors_not_rewards() {
    let t = task("1");
    let batch = [Scoring {
        task: &t,
        response: "1",
    }];
    let nan = WeightedSum::new("w", vec![Part::new("b", 1.0, Broken(vec![f64::NAN]))]).unwrap();
    let err = nan.score(&batch).unwrap_err().to_string();
    assert!(err.contains("not finite") && err.contains("t1"), "{err}");
    let short = WeightedSum::new("w", vec![Part::new("b", 1.0, Broken(vec![]))]).unwrap();
    let err = short.score(&batch).unwrap_err().to_string();
    assert!(err.contains("returned 0 scores for 1"), "{err}");
    let huge = Scaled::new(Box::new(Broken(vec![f64::MAX])), 10.0, None).unwrap();
    assert!(huge.score(&batch).is_err());
}

#[test]
fn scaling_then_clipping() {
    let t = task("1");
    let scaled = Scaled::new(Box::new(Broken(vec![1.0, -3.0, 0.5])), 2.0, Some(1.5)).unwrap();
    let batch = [Scoring {
        task: &t,
        response: "",
    }; 3];
    let got: Vec<f64> = scaled
        .score(&batch)
        .unwrap()
        .iter()
        .map(|s| s.reward)
        .collect();
    assert_eq!(got, [1.5, -1.5, 1.0]);
    assert!(Scaled::new(Box::new(Broken(vec![])), 0.0, None).is_err());
    assert!(Scaled::new(Box::new(Broken(vec![])), 1.0, Some(-1.0)).is_err());
    assert_eq!(
        Rational::new(6, 4).map(|r| r.to_string()),
        Some("3/2".into())
    );
}
