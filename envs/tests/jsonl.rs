//! The `jsonl` environment: GSM8K-style records with configured fields, `####` answers, a
//! held-out split disjoint from training, seeded draws, and bad files named by line.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use rl_core::{
    Env, Split,
    config::{EnvConfig, EnvName},
};
use rl_envs::{Jsonl, by_name};

fn gsm8k_like(dir: &std::path::Path, records: usize) -> std::path::PathBuf {
    let path = dir.join("gsm8k.jsonl");
    let lines: Vec<String> = (0..records)
        .map(|i| {
            serde_json::json!({
                "question": format!("Tom has {i} apples and buys 3 more. How many now?"),
                "answer": format!("He has {i} + 3 = {}.\n#### {}", i + 3, i + 3),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n\n").unwrap();
    path
}

fn config(path: std::path::PathBuf) -> EnvConfig {
    EnvConfig {
        name: EnvName::Jsonl,
        path: Some(path),
        prompt_field: "question".into(),
        ..EnvConfig::default()
    }
}

#[test]
fn gsm8k_records_become_tasks_with_numeric_answers_and_disjoint_splits() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = Jsonl::new(&config(gsm8k_like(dir.path(), 400))).unwrap();
    assert_eq!(env.len(Split::Train) + env.len(Split::Eval), 400);
    assert!(
        env.len(Split::Eval) > 10 && env.len(Split::Eval) < 80,
        "about 10% held out"
    );

    let train = env.tasks(Split::Train, 1000, 1).unwrap();
    let eval = env.tasks(Split::Eval, 1000, 1).unwrap();
    let ids = |t: &[rl_core::Task]| t.iter().map(|t| t.id.clone()).collect::<HashSet<_>>();
    assert!(
        ids(&train).is_disjoint(&ids(&eval)),
        "no held-out record is ever trained on"
    );
    assert_eq!(
        ids(&train).len(),
        env.len(Split::Train),
        "draws cycle through the whole split"
    );

    let task = &train[0];
    let question = &task.messages[0].content;
    let i: u64 = question.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(
        task.answer.as_deref(),
        Some((i + 3).to_string().as_str()),
        "text after ####"
    );
    assert_eq!(
        env.tasks(Split::Train, 5, 9).unwrap(),
        env.tasks(Split::Train, 5, 9).unwrap()
    );
    assert_ne!(
        env.tasks(Split::Train, 5, 9).unwrap(),
        env.tasks(Split::Train, 5, 10).unwrap()
    );
}

#[test]
fn by_name_builds_it_and_bad_files_are_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        by_name(&config(gsm8k_like(dir.path(), 50))).unwrap().name(),
        "jsonl"
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"question\": \"q\", \"answer\": \"1\"}\n{\"prompt\": \"q\"}\n",
    )
    .unwrap();
    let err = Jsonl::new(&config(bad.clone())).unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl line 2: no \"question\" field (set env.prompt_field"),
        "{err}"
    );

    std::fs::write(&bad, "{\"question\": \"q\", \"answer\": \"1\"}\nnot json\n").unwrap();
    let err = Jsonl::new(&config(bad.clone())).unwrap_err().to_string();
    assert!(err.contains("bad.jsonl line 2: not JSON"), "{err}");

    std::fs::write(&bad, "{\"question\": \"q\", \"answer\": \"1\"}\n").unwrap();
    let err = Jsonl::new(&config(bad)).unwrap_err().to_string();
    assert!(err.contains("each split needs at least one"), "{err}");

    let missing = config(dir.path().join("nope.jsonl"));
    assert!(
        Jsonl::new(&missing)
            .unwrap_err()
            .to_string()
            .contains("cannot read env.path")
    );
}

#[test]
fn reward_verifier_picks_string_or_regex_matching_for_text_answers() {
    use rl_core::{
        Scoring, Task,
        config::{RewardConfig, VerifierKind},
    };
    let dir = tempfile::tempdir().unwrap();
    let env = config(gsm8k_like(dir.path(), 4));
    let task = Task::single_turn("t", "Capital of France?", Some("Paris".into()));
    let score = |reward: &RewardConfig, response: &str| {
        let verifier = rl_envs::verifier(&env, reward).unwrap();
        verifier
            .score(&[Scoring {
                task: &task,
                response,
            }])
            .unwrap()[0]
            .reward
    };
    let exact = RewardConfig {
        verifier: VerifierKind::Exact,
        answer_tag: Some("answer".into()),
        ..RewardConfig::default()
    };
    assert_eq!(score(&exact, "It is <answer> Paris </answer>"), 1.0);
    assert_eq!(score(&exact, "It is <answer>paris</answer>"), 0.0);
    assert_eq!(score(&exact, "Paris"), 0.0, "no tag, no match");
    let nocase = RewardConfig {
        verifier: VerifierKind::ExactNocase,
        ..RewardConfig::default()
    };
    assert_eq!(score(&nocase, "  PARIS "), 1.0);
    let regex = RewardConfig {
        verifier: VerifierKind::Regex,
        pattern: Some(r"(?i)capital is (?P<answer>\w+)".into()),
        ..RewardConfig::default()
    };
    assert_eq!(score(&regex, "The capital is Paris."), 1.0);
    assert_eq!(score(&regex, "The capital is Lyon."), 0.0);

    let bad = RewardConfig {
        verifier: VerifierKind::Regex,
        pattern: Some("(unclosed".into()),
        ..RewardConfig::default()
    };
    let err = rl_envs::verifier(&env, &bad).err().unwrap();
    assert!(err.to_string().contains("reward.pattern"), "{err}");
}

#[test]
fn an_eval_path_is_the_whole_held_out_split_and_path_the_whole_training_split() {
    let dir = tempfile::tempdir().unwrap();
    let train_path = gsm8k_like(dir.path(), 50);
    let eval_dir = dir.path().join("eval");
    std::fs::create_dir(&eval_dir).unwrap();
    let eval_path = gsm8k_like(&eval_dir, 7);
    let mut env = Jsonl::new(&EnvConfig {
        eval_path: Some(eval_path.clone()),
        ..config(train_path)
    })
    .unwrap();
    assert_eq!((env.len(Split::Train), env.len(Split::Eval)), (50, 7));
    let eval: HashSet<String> = env
        .tasks(Split::Eval, 7, 3)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(eval.len(), 7, "every held-out record, once");

    std::fs::write(&eval_path, "\n").unwrap();
    let err = Jsonl::new(&EnvConfig {
        eval_path: Some(eval_path),
        ..config(gsm8k_like(dir.path(), 50))
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("env.eval_path") && err.contains("holds 0"),
        "{err}"
    );
}
