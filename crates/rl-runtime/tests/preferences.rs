//! Preference pairs: string or chat prompts, configured fields, a stable held-out split, and bad
//! records named by file, line and key.

#![allow(clippy::unwrap_used)]

use rl_core::{Role, config::PreferenceConfig};
use rl_runtime::trainer::preferences::Preferences;

fn write(dir: &std::path::Path, lines: &[String]) -> PreferenceConfig {
    let path = dir.join("pairs.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    PreferenceConfig {
        path: Some(path),
        ..PreferenceConfig::default()
    }
}

fn pairs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "prompt": format!("What is {i} + 1?"),
                "chosen": format!("{}", i + 1),
                "rejected": format!("{}", i + 2),
            })
            .to_string()
        })
        .collect()
}

#[test]
fn pairs_split_stably_into_train_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = pairs(400);
    let config = write(dir.path(), &lines);
    let p = Preferences::load(&config).unwrap();
    assert_eq!(p.train.len() + p.eval.len(), 400);
    assert!(
        (20..=60).contains(&p.eval.len()),
        "{} held out",
        p.eval.len()
    );
    assert_eq!(p.train[0].prompt[0].role, Role::User);

    // Reordering the file moves no pair across the split.
    lines.reverse();
    let reordered = Preferences::load(&write(dir.path(), &lines)).unwrap();
    let mut a: Vec<_> = p.eval.iter().map(|x| x.chosen.clone()).collect();
    let mut b: Vec<_> = reordered.eval.iter().map(|x| x.chosen.clone()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn chat_prompts_and_custom_fields_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..50)
        .map(|i| {
            serde_json::json!({
                "conversation": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": format!("Say {i}.")},
                ],
                "good": format!("{i}"),
                "bad": "no",
            })
            .to_string()
        })
        .collect();
    let config = PreferenceConfig {
        prompt_field: "conversation".into(),
        chosen_field: "good".into(),
        rejected_field: "bad".into(),
        eval_fraction: 0.3,
        ..write(dir.path(), &lines)
    };
    let p = Preferences::load(&config).unwrap();
    let pair = &p.train[0];
    assert_eq!(pair.prompt.len(), 2);
    assert_eq!(pair.prompt[0].role, Role::System);
    assert_eq!(pair.rejected, "no");
}

#[test]
fn bad_records_name_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("not json", "line 3: not JSON"),
        (
            r#"{"prompt": "a", "chosen": "b"}"#,
            "preference.rejected_field",
        ),
        (
            r#"{"prompt": 5, "chosen": "b", "rejected": "c"}"#,
            "preference.prompt_field",
        ),
        (
            r#"{"prompt": [{"role": "robot", "content": "x"}], "chosen": "b", "rejected": "c"}"#,
            "list of",
        ),
        (
            r#"{"prompt": "a", "chosen": "b", "rejected": "b"}"#,
            "same text",
        ),
    ];
    for (bad, want) in cases {
        let mut lines = pairs(2);
        lines.push(bad.to_owned());
        let err = Preferences::load(&write(dir.path(), &lines)).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
        assert!(err.to_string().contains("pairs.jsonl line 3"), "{err}");
    }
    let err = Preferences::load(&write(dir.path(), &pairs(1))).unwrap_err();
    assert!(
        err.to_string().contains("each split needs at least one"),
        "{err}"
    );
    let missing = PreferenceConfig {
        path: Some(dir.path().join("nope.jsonl")),
        ..PreferenceConfig::default()
    };
    let err = Preferences::load(&missing).unwrap_err();
    assert!(
        err.to_string().contains("cannot read preference.path"),
        "{err}"
    );
}
