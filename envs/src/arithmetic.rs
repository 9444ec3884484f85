//! `arithmetic`: generated integer arithmetic questions ("What is 17 + 25?") with exact answers,
//! scored by the final-number verifier ([`rl_reward::NumericMatch`]).
//!
//! A question is `operands` integers drawn uniformly from `operand_range`, joined by operators
//! drawn uniformly from `operators`, read with the usual precedence. Division is exact: each
//! divisor is drawn among the divisors of the operand before it, and a question with any
//! non-integer intermediate result is drawn again. Negative operands are written in
//! parentheses (`5 - (-3)`). The answer is computed by the same exact evaluator that checks
//! countdown replies ([`rl_reward::expr`]).
//!
//! Splits are disjoint by construction ([`crate::generated`]): the question text decides its split.

use rl_core::{
    Env, EnvError, Split, Task,
    config::{ArithmeticOp, EnvConfig, MAX_OPERAND, MAX_OPERANDS},
};
use rl_reward::expr::{self, Limits};
use serde_json::json;

use rl_core::rng::Rng;

use crate::generated::{self, Problem, check_eval_fraction};

/// The generated-arithmetic environment.
#[derive(Debug, Clone)]
pub struct Arithmetic {
    operands: usize,
    range: [i64; 2],
    operators: Vec<ArithmeticOp>,
    eval_fraction: f64,
    system_prompt: Option<String>,
}

/// One question: its text (`17 + 25`) and answer.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub(crate) expression: String,
    pub(crate) answer: i128,
}

impl Problem for Question {
    fn key(&self) -> String {
        format!("arithmetic:{}", self.expression)
    }

    fn prompt(&self) -> String {
        format!("What is {}? Answer with just the number.", self.expression)
    }

    fn answer(&self) -> String {
        self.answer.to_string()
    }

    fn metadata(&self) -> serde_json::Value {
        json!({ "expression": self.expression })
    }
}

fn error(message: String) -> EnvError {
    EnvError {
        env: "arithmetic".to_owned(),
        message,
    }
}

impl Arithmetic {
    /// The environment `[env]` describes (`env.operands`, `env.operand_range`,
    /// `env.operators`, `env.eval_fraction`, `env.system_prompt`); errors name the key.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        let [lo, hi] = config.operand_range;
        if !(2..=MAX_OPERANDS).contains(&config.operands) {
            return Err(error(format!(
                "env.operands = {}: must be in [2, {MAX_OPERANDS}]",
                config.operands
            )));
        }
        if lo > hi || lo < -MAX_OPERAND || hi > MAX_OPERAND {
            return Err(error(format!(
                "env.operand_range = [{lo}, {hi}]: must be [low, high] with -{MAX_OPERAND} <= low <= high <= {MAX_OPERAND}"
            )));
        }
        if config.operators.is_empty() {
            return Err(error("env.operators is empty: list at least one".into()));
        }
        if config.operators.contains(&ArithmeticOp::Div) && lo == 0 && hi == 0 {
            return Err(error(
                "env.operators has \"/\" but env.operand_range = [0, 0] has no divisor".into(),
            ));
        }
        check_eval_fraction("arithmetic", config.eval_fraction)?;
        Ok(Self {
            operands: config.operands as usize,
            range: [lo, hi],
            operators: config.operators.clone(),
            eval_fraction: config.eval_fraction,
            system_prompt: config.system_prompt.clone(),
        })
    }

    /// One random question, or `None` when this draw failed (no divisor in range, a
    /// non-integer step, overflow).
    pub(crate) fn question(&self, rng: &mut Rng) -> Option<Question> {
        let [lo, hi] = self.range;
        let mut values = vec![rng.between(lo, hi)];
        let mut ops = Vec::with_capacity(self.operands - 1);
        for _ in 1..self.operands {
            let op = *rng.pick(&self.operators);
            let prev = *values.last()?;
            let value = match op {
                ArithmeticOp::Div => divisor(rng, prev, lo, hi)?,
                _ => rng.between(lo, hi),
            };
            ops.push(op);
            values.push(value);
        }
        let mut expression = operand(values[0]);
        for (op, value) in ops.iter().zip(&values[1..]) {
            expression.push_str(&format!(" {} {}", op.as_str(), operand(*value)));
        }
        let limits = Limits {
            max_bytes: usize::MAX,
            max_depth: 1,
        };
        let evaluation = expr::evaluate(&expression, &limits).ok()?;
        if !evaluation.integer_steps {
            return None;
        }
        let answer = evaluation.value.to_integer()?;
        Some(Question { expression, answer })
    }
}

/// `-3` as `(-3)`, so the question never reads `5 - -3`.
fn operand(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

/// A uniformly chosen non-zero divisor of `x` in `lo..=hi`, or `None` when there is none.
fn divisor(rng: &mut Rng, x: i64, lo: i64, hi: i64) -> Option<i64> {
    if x == 0 {
        // Every non-zero value divides 0; the range has one (checked in `new`).
        return (0..64).map(|_| rng.between(lo, hi)).find(|d| *d != 0);
    }
    let m = x.unsigned_abs();
    let mut candidates = Vec::new();
    let mut d = 1u64;
    while d * d <= m {
        if m.is_multiple_of(d) {
            for c in [d, m / d] {
                let c = c as i64; // c <= |x| <= MAX_OPERAND
                candidates.extend([c, -c]);
            }
        }
        d += 1;
    }
    candidates.retain(|c| (lo..=hi).contains(c));
    candidates.sort_unstable();
    candidates.dedup();
    (!candidates.is_empty()).then(|| *rng.pick(&candidates))
}

impl Env for Arithmetic {
    fn name(&self) -> &str {
        "arithmetic"
    }

    fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
        let system = self.system_prompt.as_deref();
        generated::tasks(
            "arithmetic",
            split,
            n,
            seed,
            self.eval_fraction,
            system,
            |rng| self.question(rng),
        )
    }
}
