//! The countdown environment and its reward: solvable puzzles, disjoint splits, and replies
//! that are right, wrong, cheating or hostile.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use rl_core::{
    Env, RewardFn, Scoring, Split, Task,
    config::{EnvConfig, EnvName, RewardConfig, RewardKind},
};
use rl_envs::{Countdown, CountdownReward, Verdict, by_name, rule_reward, verifier};
use serde_json::json;

fn countdown(edit: impl FnOnce(&mut EnvConfig)) -> Countdown {
    let mut c = EnvConfig {
        name: EnvName::Countdown,
        ..EnvConfig::default()
    };
    edit(&mut c);
    Countdown::new(&c).unwrap()
}

fn puzzle(numbers: &[i64], target: i64) -> Task {
    let mut t = Task::single_turn("p1", "puzzle", None);
    t.metadata = json!({ "numbers": numbers, "target": target });
    t
}

fn verdict(reply: &str, numbers: &[i128], target: i128) -> Verdict {
    CountdownReward::default().check(reply, numbers, target)
}

fn key(t: &Task) -> String {
    format!("{}->{}", t.metadata["numbers"], t.metadata["target"])
}

/// A change to the default `[env]`.
type Edit = Box<dyn Fn(&mut EnvConfig)>;

#[test]
fn correct_wrong_and_cheating_expressions() {
    use Verdict::*;
    let n = [1, 2, 3, 4];
    let cases: &[(&str, Verdict)] = &[
        ("<answer>1 * 2 * 3 * 4</answer>", Correct),
        ("<answer>(1 + 2 + 3) * 4</answer>", Correct),
        ("<answer> 4 × (3 + 2 + 1) </answer>", Correct),
        ("<answer>(1 + 2 + 3) * 4 = 24</answer>", Correct),
        ("Let me think.\n(2 + 1 + 3) * 4\n", Correct),
        ("$4 * 3 * 2 * 1$.", Correct),
        ("<answer>1 + 2 + 3 + 4</answer>", WrongValue),
        ("<answer>4 * 3 * 2</answer>", WrongNumbers), // 1 unused
        ("<answer>4 * 3 * 2 * 1 * 1</answer>", WrongNumbers), // 1 reused
        ("<answer>4 * 6 * 1 + 2 - 3 + 1</answer>", WrongNumbers), // 6 not given
        ("<answer>24</answer>", WrongNumbers),
        ("<answer>4 * 3 * 2 * 1.0</answer>", Correct), // 1.0 is the number 1
        ("<answer>4 * 3 * 2 * 1.5</answer>", WrongNumbers),
        ("<answer>-(-4 * 3 * 2 * 1)</answer>", Correct), // unary minus makes no number
    ];
    for (reply, expected) in cases {
        assert_eq!(&verdict(reply, &n, 24), expected, "{reply:?}");
    }
    // Division by zero, using each number once.
    assert!(matches!(
        verdict("<answer>(4 * 2) / (3 - 3)</answer>", &[3, 3, 4, 2], 24),
        Invalid(e) if e.contains("division by zero")
    ));
    // A non-integer intermediate is refused even when the result is right.
    assert_eq!(
        verdict("<answer>4 / 3 * 6</answer>", &[4, 3, 6], 8),
        NonIntegerStep
    );
    assert_eq!(
        verdict("<answer>6 / 3 * 4</answer>", &[4, 3, 6], 8),
        Correct
    );
    for bad in [
        "",
        "<answer></answer>",
        "<answer>1 + </answer>",
        "no idea",
        "<answer>2 ** 3</answer>",
    ] {
        assert!(matches!(verdict(bad, &n, 24), Invalid(_)), "{bad:?}");
    }
}

#[test]
fn hostile_replies_finish_fast_with_a_defined_verdict() {
    let n = [1, 2, 3, 4];
    let cases = [
        format!(
            "<answer>{}1{}</answer>",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("<answer>{}1{}</answer>", "(".repeat(33), ")".repeat(33)),
        format!("<answer>{}</answer>", "7".repeat(1 << 20)),
        "9".repeat(1 << 20),
        "<answer>".repeat(200_000),
        format!("<answer>{}</answer>", ["99999999999"; 8].join(" * ")),
        format!("<answer>{}1</answer>", "-".repeat(1000)),
    ];
    for reply in &cases {
        let start = Instant::now();
        let v = verdict(reply, &n, 24);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(v, Verdict::Invalid(_) | Verdict::WrongNumbers),
            "{v:?}"
        );
    }
    let nested = format!(
        "<answer>{}1 * 2 * 3 * 4{}</answer>",
        "(".repeat(32),
        ")".repeat(32)
    );
    assert_eq!(verdict(&nested, &n, 24), Verdict::Correct);
}

#[test]
fn the_reward_scores_the_verdict_and_reports_validity() {
    let t = puzzle(&[1, 2, 3, 4], 24);
    let replies = [
        "<answer>1 * 2 * 3 * 4</answer>",
        "<answer>1 + 2 + 3 + 4</answer>",
        "<answer>4 * 3 * 2</answer>",
    ];
    let batch: Vec<_> = replies
        .iter()
        .map(|r| Scoring {
            task: &t,
            response: r,
        })
        .collect();
    let scores = CountdownReward::default().score(&batch).unwrap();
    let got: Vec<_> = scores
        .iter()
        .map(|s| (s.reward, s.parts["valid"]))
        .collect();
    assert_eq!(got, [(1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);

    let bare = Task::single_turn("no-puzzle", "q", None);
    let err = CountdownReward::default()
        .score(&[Scoring {
            task: &bare,
            response: "1",
        }])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-puzzle") && err.contains("numbers"),
        "{err}"
    );
}

#[test]
fn generated_puzzles_are_solvable_in_range_and_seeded() {
    let mut e = countdown(|_| {});
    let tasks = e.tasks(Split::Train, 300, 5).unwrap();
    assert_eq!(tasks, e.tasks(Split::Train, 300, 5).unwrap());
    assert_ne!(tasks, e.tasks(Split::Train, 300, 6).unwrap());
    let reward = CountdownReward::default();
    for t in &tasks {
        let numbers: Vec<i64> = serde_json::from_value(t.metadata["numbers"].clone()).unwrap();
        let target = t.metadata["target"].as_i64().unwrap();
        assert_eq!(numbers.len(), 4);
        assert!(numbers.iter().all(|n| (1..=99).contains(n)), "{numbers:?}");
        assert!((10..=100).contains(&target));
        let prompt = &t.messages[0].content;
        assert!(
            prompt.contains(&format!("{numbers:?}")) && prompt.contains(&target.to_string()),
            "{prompt}"
        );
        // The stored solution is a correct reply.
        let reply = format!("<answer>{}</answer>", t.answer.as_deref().unwrap());
        let s = reward
            .score(&[Scoring {
                task: t,
                response: &reply,
            }])
            .unwrap();
        assert_eq!(s[0].reward, 1.0, "{reply} for {}", key(t));
    }
}

#[test]
fn train_and_eval_puzzles_are_disjoint() {
    let mut e = countdown(|c| {
        c.countdown_numbers = 3;
        c.countdown_number_range = [1, 10];
    });
    let mut train = HashSet::new();
    let mut eval = HashSet::new();
    for seed in 0..10 {
        train.extend(e.tasks(Split::Train, 500, seed).unwrap().iter().map(key));
        eval.extend(e.tasks(Split::Eval, 500, seed).unwrap().iter().map(key));
    }
    assert!(eval.len() > 20, "{}", eval.len());
    assert!(train.is_disjoint(&eval));
}

#[test]
fn config_picks_countdown_and_its_rule_reward() {
    let env_config = EnvConfig {
        name: EnvName::Countdown,
        ..EnvConfig::default()
    };
    let mut e = by_name(&env_config).unwrap();
    assert_eq!(e.name(), "countdown");
    let t = &e.tasks(Split::Eval, 1, 0).unwrap()[0];
    assert_eq!(
        verifier(&env_config, &Default::default()).unwrap().name(),
        "countdown"
    );

    let reward_config = RewardConfig {
        format_weight: 0.5,
        format_tags: vec!["think".into(), "answer".into()],
        scale: 2.0,
        clip: Some(2.5),
        ..RewardConfig::default()
    };
    let reward = rule_reward(&env_config, &reward_config).unwrap();
    let good = format!(
        "<think>easy</think><answer>{}</answer>",
        t.answer.as_deref().unwrap()
    );
    let s = reward
        .score(&[
            Scoring {
                task: t,
                response: &good,
            },
            Scoring {
                task: t,
                response: "<think>hm</think><answer>1 +</answer>",
            },
        ])
        .unwrap();
    // (1 + 0.5) * 2 = 3, clipped to 2.5; (0 + 0.5) * 2 = 1.
    assert_eq!((s[0].reward, s[1].reward), (2.5, 1.0));
    assert_eq!(
        (
            s[0].parts["correct"],
            s[0].parts["format"],
            s[0].parts["correct/valid"]
        ),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(s[1].parts["correct/valid"], 0.0);

    let model = RewardConfig {
        kind: RewardKind::Model,
        ..RewardConfig::default()
    };
    let err = rule_reward(&env_config, &model).err().unwrap().to_string();
    assert!(err.contains("reward.kind = \"model\""), "{err}");
    let bad_tag = RewardConfig {
        format_weight: 1.0,
        format_tags: vec!["a b".into()],
        ..RewardConfig::default()
    };
    let err = rule_reward(&env_config, &bad_tag)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("reward.format_tags"), "{err}");
    let jsonl = EnvConfig {
        name: EnvName::Jsonl,
        ..EnvConfig::default()
    };
    assert!(by_name(&jsonl).is_err());
}

#[test]
fn bad_countdown_settings_are_refused_naming_the_key() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c.countdown_numbers = 1),
            "env.countdown_numbers",
        ),
        (
            Box::new(|c| c.countdown_numbers = 7),
            "env.countdown_numbers",
        ),
        (
            Box::new(|c| c.countdown_number_range = [0, 5]),
            "env.countdown_number_range",
        ),
        (
            Box::new(|c| c.countdown_number_range = [9, 5]),
            "env.countdown_number_range",
        ),
        (
            Box::new(|c| c.countdown_target_range = [9, 5]),
            "env.countdown_target_range",
        ),
        (Box::new(|c| c.eval_fraction = 0.0), "env.eval_fraction"),
    ];
    for (edit, key) in cases {
        let mut c = EnvConfig::default();
        edit(&mut c);
        let err = Countdown::new(&c).unwrap_err().to_string();
        assert!(
            err.starts_with("environment countdown: ") && err.contains(key),
            "{err}"
        );
    }
}
