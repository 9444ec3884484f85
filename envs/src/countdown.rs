//! `countdown`: reach a target from given numbers with `+ - * /` and parentheses, as in the
//! Countdown numbers game and TinyZero's RL task (<https://github.com/Jiayi-Pan/TinyZero>).
//!
//! Rules (told to the model in the prompt, enforced by [`CountdownReward`]): **each given
//! number is used exactly once** (as in TinyZero's checker: a repeated number, a missing one
//! or one not given fails); every intermediate result must be a whole number (the classic
//! game's rule: `4 / 3 * 6` fails even though it is 8); arithmetic is exact
//! ([`rl_reward::Rational`], no floats). Unary minus is allowed (it creates no number).
//!
//! Puzzles are generated solvable: `countdown_numbers` numbers drawn from
//! `countdown_number_range` are combined pairwise at random into one expression with integer
//! steps, and kept when its value lies in `countdown_target_range`; that expression is stored
//! as the task's answer. Splits are disjoint by the hash of (sorted numbers, target).

use rl_core::{
    Env, EnvError, RewardError, RewardFn, Score, Scoring, Split, Task,
    config::{EnvConfig, MAX_COUNTDOWN_NUMBER, MAX_COUNTDOWN_NUMBERS, MAX_COUNTDOWN_TARGET},
};
use rl_reward::{
    Rational,
    expr::{self, Limits},
    verifiers::{
        binary,
        tags::{last_tagged, tail},
    },
};
use serde_json::json;

use rl_core::rng::Rng;

use crate::generated::{self, Problem, check_eval_fraction};

/// The countdown environment.
#[derive(Debug, Clone)]
pub struct Countdown {
    count: usize,
    number_range: [u32; 2],
    target_range: [u32; 2],
    eval_fraction: f64,
    system_prompt: Option<String>,
}

/// One puzzle: the numbers (as drawn), the target, and one solution.
#[derive(Debug, Clone)]
struct Puzzle {
    numbers: Vec<u32>,
    target: i64,
    solution: String,
}

impl Problem for Puzzle {
    fn key(&self) -> String {
        let mut sorted = self.numbers.clone();
        sorted.sort_unstable();
        format!("countdown:{sorted:?}->{}", self.target)
    }

    fn prompt(&self) -> String {
        format!(
            "Using the numbers {:?}, write an arithmetic expression that equals {}. \
             Use each number exactly once, with +, -, *, / and parentheses; every \
             intermediate result must be a whole number. Give only the expression \
             inside <answer></answer> tags, for example <answer>(1 + 2) * 3</answer>.",
            self.numbers, self.target
        )
    }

    fn answer(&self) -> String {
        self.solution.clone()
    }

    fn metadata(&self) -> serde_json::Value {
        json!({ "numbers": self.numbers, "target": self.target })
    }
}

fn error(message: String) -> EnvError {
    EnvError {
        env: "countdown".to_owned(),
        message,
    }
}

impl Countdown {
    /// The environment `[env]` describes (`env.countdown_numbers`,
    /// `env.countdown_number_range`, `env.countdown_target_range`, `env.eval_fraction`,
    /// `env.system_prompt`); errors name the key.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        if !(2..=MAX_COUNTDOWN_NUMBERS).contains(&config.countdown_numbers) {
            return Err(error(format!(
                "env.countdown_numbers = {}: must be in [2, {MAX_COUNTDOWN_NUMBERS}]",
                config.countdown_numbers
            )));
        }
        let [lo, hi] = config.countdown_number_range;
        if !(1 <= lo && lo <= hi && hi <= MAX_COUNTDOWN_NUMBER) {
            return Err(error(format!(
                "env.countdown_number_range = [{lo}, {hi}]: must be [low, high] with 1 <= low <= high <= {MAX_COUNTDOWN_NUMBER}"
            )));
        }
        let [lo, hi] = config.countdown_target_range;
        if !(lo <= hi && hi <= MAX_COUNTDOWN_TARGET) {
            return Err(error(format!(
                "env.countdown_target_range = [{lo}, {hi}]: must be [low, high] with low <= high <= {MAX_COUNTDOWN_TARGET}"
            )));
        }
        check_eval_fraction("countdown", config.eval_fraction)?;
        Ok(Self {
            count: config.countdown_numbers as usize,
            number_range: config.countdown_number_range,
            target_range: config.countdown_target_range,
            eval_fraction: config.eval_fraction,
            system_prompt: config.system_prompt.clone(),
        })
    }

    /// One random solvable puzzle, or `None` when its target falls outside the range.
    fn puzzle(&self, rng: &mut Rng) -> Option<Puzzle> {
        let [lo, hi] = self.number_range;
        let numbers: Vec<u32> = (0..self.count)
            .map(|_| rng.between(i64::from(lo), i64::from(hi)) as u32)
            .collect();
        // (value, expression, is a single number)
        let mut pool: Vec<(i128, String, bool)> = numbers
            .iter()
            .map(|n| (i128::from(*n), n.to_string(), true))
            .collect();
        while pool.len() > 1 {
            let (a, b) = {
                let i = rng.below(pool.len() as u64) as usize;
                let a = pool.swap_remove(i);
                let j = rng.below(pool.len() as u64) as usize;
                (a, pool.swap_remove(j))
            };
            // Larger first, so subtraction stays non-negative and division can be exact.
            let (a, b) = if a.0 >= b.0 { (a, b) } else { (b, a) };
            let mut choices = vec!['+', '-', '*'];
            if b.0 != 0 && a.0 % b.0 == 0 {
                choices.push('/');
            }
            let op = *rng.pick(&choices);
            let value = match op {
                '+' => a.0 + b.0,
                '-' => a.0 - b.0,
                '*' => a.0 * b.0,
                _ => a.0 / b.0,
            };
            let wrap = |(_, text, atom): &(i128, String, bool)| {
                if *atom {
                    text.clone()
                } else {
                    format!("({text})")
                }
            };
            pool.push((value, format!("{} {op} {}", wrap(&a), wrap(&b)), false));
        }
        let (target, solution, _) = pool.pop()?;
        let [tlo, thi] = self.target_range;
        let target = i64::try_from(target).ok()?;
        (i64::from(tlo)..=i64::from(thi))
            .contains(&target)
            .then_some(Puzzle {
                numbers,
                target,
                solution,
            })
    }
}

impl Env for Countdown {
    fn name(&self) -> &str {
        "countdown"
    }

    fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
        let system = self.system_prompt.as_deref();
        generated::tasks(
            "countdown",
            split,
            n,
            seed,
            self.eval_fraction,
            system,
            |rng| self.puzzle(rng),
        )
    }
}

/// Why a countdown reply scored 0 (see [`CountdownReward::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Parses, uses each number exactly once, whole-number steps, reaches the target.
    Correct,
    /// A valid expression that does not reach the target.
    WrongValue,
    /// No expression found, or it does not parse or evaluate (division by zero, overflow,
    /// too long, too deep); the reason.
    Invalid(String),
    /// The numbers used are not the given ones, each exactly once.
    WrongNumbers,
    /// An intermediate result is not a whole number.
    NonIntegerStep,
}

/// The countdown check: 1 for a correct expression, else 0. Part `valid` is 1 when the
/// expression parses and follows the rules, whatever its value.
///
/// The expression is the content of the last `<answer>…</answer>` or, without tags, the last
/// non-blank line; anything from the first `=` on is dropped (`(1 + 2) * 3 = 9`), and so are
/// surrounding spaces, `$`, backticks and periods. Only the last 64 KiB of a reply are
/// read; the expression itself is refused above 1 KiB or 32 nested parentheses.
#[derive(Debug, Clone, Default)]
pub struct CountdownReward {
    limits: Limits,
}

impl CountdownReward {
    /// Judges `reply` for the puzzle `numbers` → `target`.
    pub fn check(&self, reply: &str, numbers: &[i128], target: i128) -> Verdict {
        let text = tail(reply, 64 * 1024);
        let candidate = last_tagged(text, "answer")
            .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("");
        let candidate = candidate.split('=').next().unwrap_or("");
        let candidate = candidate.trim_matches(|c: char| c.is_whitespace() || "$`.".contains(c));
        let evaluation = match expr::evaluate(candidate, &self.limits) {
            Ok(e) => e,
            Err(e) => return Verdict::Invalid(e.to_string()),
        };
        let mut used: Vec<Option<i128>> =
            evaluation.literals.iter().map(|l| l.to_integer()).collect();
        used.sort_unstable();
        let mut given: Vec<Option<i128>> = numbers.iter().map(|n| Some(*n)).collect();
        given.sort_unstable();
        if used != given {
            return Verdict::WrongNumbers;
        }
        if !evaluation.integer_steps {
            return Verdict::NonIntegerStep;
        }
        if Some(evaluation.value) == Rational::integer(target) {
            Verdict::Correct
        } else {
            Verdict::WrongValue
        }
    }
}

/// The puzzle of a countdown task, from its metadata.
fn puzzle_of(task: &Task) -> Option<(Vec<i128>, i128)> {
    let numbers = task.metadata.get("numbers")?.as_array()?;
    let numbers = numbers
        .iter()
        .map(|n| n.as_i64().map(i128::from))
        .collect::<Option<Vec<_>>>()?;
    let target = i128::from(task.metadata.get("target")?.as_i64()?);
    Some((numbers, target))
}

impl RewardFn for CountdownReward {
    fn name(&self) -> &str {
        "countdown"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        batch
            .iter()
            .map(|s| {
                let (numbers, target) = puzzle_of(s.task).ok_or_else(|| RewardError {
                    reward: self.name().to_owned(),
                    message: format!(
                        "task {:?} has no countdown puzzle in its metadata (want {{\"numbers\": [integers], \"target\": integer}})",
                        s.task.id
                    ),
                })?;
                let verdict = self.check(s.response, &numbers, target);
                let valid = matches!(verdict, Verdict::Correct | Verdict::WrongValue);
                let mut score = binary(verdict == Verdict::Correct);
                score
                    .parts
                    .insert("valid".to_owned(), binary(valid).reward);
                Ok(score)
            })
            .collect()
    }
}
