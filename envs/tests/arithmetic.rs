//! The arithmetic environment as a trainer draws from it: determinism, disjoint splits over
//! many draws, answers that are right, and configs that are refused with the key named.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::collections::HashSet;

use rl_core::{
    Env, RewardFn, Role, Scoring, Split, Task,
    config::{ArithmeticOp, EnvConfig, EnvName},
};
use rl_envs::{Arithmetic, by_name};
use rl_reward::NumericMatch;

fn config(edit: impl FnOnce(&mut EnvConfig)) -> EnvConfig {
    let mut c = EnvConfig::default();
    edit(&mut c);
    c
}

fn env(edit: impl FnOnce(&mut EnvConfig)) -> Arithmetic {
    Arithmetic::new(&config(edit)).unwrap()
}

fn expression(task: &Task) -> String {
    task.metadata["expression"].as_str().unwrap().to_owned()
}

/// An evaluator independent of `rl_reward::expr`: operands and operators of an expression
/// without parentheses (but `(-3)` operands), `*` and `/` first, checking every quotient.
fn independent_value(expression: &str) -> i128 {
    let mut words = expression.split(' ');
    let operand = |w: &str| -> i128 { w.trim_matches(|c| c == '(' || c == ')').parse().unwrap() };
    let mut terms: Vec<(char, i128)> = vec![('+', operand(words.next().unwrap()))];
    while let (Some(op), Some(w)) = (words.next(), words.next()) {
        let v = operand(w);
        match op {
            "*" => terms.last_mut().unwrap().1 *= v,
            "/" => {
                let t = &mut terms.last_mut().unwrap().1;
                assert_eq!(*t % v, 0, "{expression}: inexact division");
                *t /= v;
            }
            "+" => terms.push(('+', v)),
            "-" => terms.push(('-', v)),
            _ => panic!("{expression}: operator {op}"),
        }
    }
    terms
        .iter()
        .map(|(s, v)| if *s == '-' { -v } else { *v })
        .sum()
}

/// A change to the default `[env]`.
type Edit = Box<dyn Fn(&mut EnvConfig)>;

#[test]
fn the_same_seed_gives_the_same_tasks_and_more_tasks_extend_them() {
    let mut a = env(|_| {});
    let mut b = env(|_| {});
    let first = a.tasks(Split::Train, 20, 3).unwrap();
    assert_eq!(first, b.tasks(Split::Train, 20, 3).unwrap());
    assert_eq!(first[..5], a.tasks(Split::Train, 5, 3).unwrap()[..]);
    assert_ne!(first, a.tasks(Split::Train, 20, 4).unwrap());
    assert_eq!(first.len(), 20);
    // Stable across versions: the stream is ours, not the rand crate's.
    assert_eq!(
        a.tasks(Split::Train, 2, 0)
            .unwrap()
            .iter()
            .map(expression)
            .collect::<Vec<_>>(),
        ["40 * 72", "7 * 96"]
    );
}

#[test]
fn train_and_eval_never_share_a_problem() {
    let small = |c: &mut EnvConfig| {
        c.operand_range = [0, 9];
        c.operators = vec![ArithmeticOp::Add, ArithmeticOp::Sub];
    };
    for (edit, space) in [
        (Box::new(|_: &mut EnvConfig| {}) as Edit, 30_000),
        // A small space (200 questions) where draws repeat a lot.
        (Box::new(small), 200),
    ] {
        let mut e = env(edit);
        let mut train = HashSet::new();
        let mut eval = HashSet::new();
        for seed in 0..20 {
            for t in e.tasks(Split::Train, 500, seed).unwrap() {
                train.insert((t.id.clone(), expression(&t)));
            }
            for t in e.tasks(Split::Eval, 500, seed).unwrap() {
                eval.insert((t.id.clone(), expression(&t)));
            }
        }
        let train_text: HashSet<_> = train.iter().map(|(_, x)| x).collect();
        let overlap: Vec<_> = eval
            .iter()
            .filter(|(_, x)| train_text.contains(x))
            .collect();
        assert!(overlap.is_empty(), "shared: {overlap:?}");
        let train_ids: HashSet<_> = train.iter().map(|(id, _)| id).collect();
        assert!(eval.iter().all(|(id, _)| !train_ids.contains(id)));
        assert!(
            eval.len() > 5,
            "eval split has only {} problems",
            eval.len()
        );
        if space == 200 {
            // 10,000 draws per split cover the small space: about a tenth of it is held out.
            assert_eq!(eval.len() + train.len(), space);
            let share = eval.len() as f64 / space as f64;
            assert!((0.03..0.2).contains(&share), "eval share {share}");
        }
    }
}

#[test]
fn answers_are_right_and_operands_stay_in_range() {
    let mut e = env(|c| {
        c.operands = 4;
        c.operand_range = [-20, 20];
        c.operators = vec![
            ArithmeticOp::Add,
            ArithmeticOp::Sub,
            ArithmeticOp::Mul,
            ArithmeticOp::Div,
        ];
    });
    let tasks = e.tasks(Split::Train, 2000, 11).unwrap();
    let mut divisions = 0;
    for t in &tasks {
        let x = expression(t);
        let answer: i128 = t.answer.as_deref().unwrap().parse().unwrap();
        assert_eq!(answer, independent_value(&x), "{x}");
        let words: Vec<_> = x.split(' ').collect();
        assert_eq!(words.len(), 7, "{x}");
        for w in words.iter().step_by(2) {
            let v: i64 = w.trim_matches(|c| c == '(' || c == ')').parse().unwrap();
            assert!((-20..=20).contains(&v), "{x}");
            assert_eq!(
                w.starts_with('('),
                v < 0,
                "{x}: negatives are parenthesised"
            );
        }
        divisions += words.iter().filter(|w| **w == "/").count();
    }
    assert!(
        divisions > 500,
        "only {divisions} divisions in 2000 questions"
    );
}

#[test]
fn three_digit_division_questions_are_exact() {
    let mut e = env(|c| {
        c.operands = 2;
        c.operand_range = [100, 999];
        c.operators = vec![ArithmeticOp::Div];
    });
    for t in e.tasks(Split::Eval, 300, 0).unwrap() {
        let x = expression(&t);
        let (a, b) = x.split_once(" / ").unwrap();
        let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!((100..=999).contains(&a) && (100..=999).contains(&b), "{x}");
        assert_eq!(a % b, 0, "{x}");
    }
}

#[test]
fn prompts_ask_for_the_answer_and_the_verifier_accepts_it() {
    let mut e = env(|c| c.system_prompt = Some("Be brief.".into()));
    let tasks = e.tasks(Split::Train, 50, 1).unwrap();
    let numeric = NumericMatch::default();
    for t in &tasks {
        assert_eq!(t.messages.len(), 2);
        assert_eq!(
            (t.messages[0].role, t.messages[0].content.as_str()),
            (Role::System, "Be brief.")
        );
        let prompt = &t.messages[1].content;
        assert_eq!(t.messages[1].role, Role::User);
        assert!(
            prompt.contains(&expression(t)) && prompt.contains("Answer"),
            "{prompt}"
        );
        let answer = t.answer.clone().unwrap();
        let wrong = format!("{}1", answer);
        let replies = [answer.clone(), format!("The answer is {answer}."), wrong];
        let batch: Vec<_> = replies
            .iter()
            .map(|r| Scoring {
                task: t,
                response: r,
            })
            .collect();
        let got: Vec<f64> = numeric
            .score(&batch)
            .unwrap()
            .iter()
            .map(|s| s.reward)
            .collect();
        assert_eq!(got, [1.0, 1.0, 0.0], "{}", expression(t));
    }
    let plain = env(|_| {}).tasks(Split::Train, 1, 1).unwrap();
    assert_eq!(plain[0].messages.len(), 1);
}

#[test]
fn bad_settings_are_refused_naming_the_key() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|c| c.operands = 1), "env.operands"),
        (Box::new(|c| c.operands = 9), "env.operands"),
        (Box::new(|c| c.operand_range = [5, 4]), "env.operand_range"),
        (
            Box::new(|c| c.operand_range = [0, 2_000_000_000]),
            "env.operand_range",
        ),
        (Box::new(|c| c.operators = vec![]), "env.operators"),
        (
            Box::new(|c| {
                c.operators = vec![ArithmeticOp::Div];
                c.operand_range = [0, 0];
            }),
            "env.operators",
        ),
        (Box::new(|c| c.eval_fraction = 1.0), "env.eval_fraction"),
        (
            Box::new(|c| c.eval_fraction = f64::NAN),
            "env.eval_fraction",
        ),
    ];
    for (edit, key) in cases {
        let err = Arithmetic::new(&config(edit)).unwrap_err().to_string();
        assert!(
            err.starts_with("environment arithmetic: ") && err.contains(key),
            "{err}"
        );
    }
}

#[test]
fn a_space_too_small_for_a_split_is_an_error_not_a_hang() {
    // 1 question in all: at most one split can hold it.
    let mut e = env(|c| {
        c.operand_range = [1, 1];
        c.operators = vec![ArithmeticOp::Add];
    });
    let train = e.tasks(Split::Train, 3, 0);
    let eval = e.tasks(Split::Eval, 3, 0);
    assert!(train.is_ok() != eval.is_ok(), "{train:?} / {eval:?}");
    let err = train.err().or(eval.err()).unwrap().to_string();
    assert!(
        err.contains("too small") && err.contains("env.eval_fraction"),
        "{err}"
    );
}

#[test]
fn large_operands_never_overflow_the_answer() {
    let mut e = env(|c| {
        c.operands = 8;
        c.operand_range = [-1_000_000_000, 1_000_000_000];
        c.operators = vec![ArithmeticOp::Mul, ArithmeticOp::Div];
    });
    for t in e.tasks(Split::Train, 50, 0).unwrap() {
        assert_eq!(
            t.answer.as_deref().unwrap().parse::<i128>().unwrap(),
            independent_value(&expression(&t))
        );
    }
}

#[test]
fn by_name_builds_the_configured_environment() {
    let mut e = by_name(&config(|c| c.name = EnvName::Arithmetic)).unwrap();
    assert_eq!(e.name(), "arithmetic");
    assert_eq!(e.tasks(Split::Eval, 3, 0).unwrap().len(), 3);
    let err = by_name(&config(|c| c.operands = 0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("env.operands"), "{err}");
}
