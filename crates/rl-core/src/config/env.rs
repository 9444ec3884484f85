//! `[env]`: the task the policy is trained on (where prompts come from and how answers are checked).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::Validator;

crate::choice! {
    /// Built-in environments (`envs/`).
    pub enum EnvName {
        /// Generated integer arithmetic questions with exact answers.
        Arithmetic = "arithmetic",
        /// Countdown: reach a target number from given numbers.
        Countdown = "countdown",
        /// Question/answer pairs from a JSON-lines file (`{"prompt": ..., "answer": ...}`).
        Jsonl = "jsonl",
        /// Arithmetic questions with a calculator tool: multi-turn tool use.
        Calculator = "calculator",
    }
}

crate::choice! {
    /// Operators of generated arithmetic questions (`env.operators`).
    pub enum ArithmeticOp {
        /// Addition.
        Add = "+",
        /// Subtraction.
        Sub = "-",
        /// Multiplication.
        Mul = "*",
        /// Exact division: only questions whose every quotient is an integer are asked.
        Div = "/",
    }
}

/// Largest operand magnitude of `env.operand_range`.
pub const MAX_OPERAND: i64 = 1_000_000_000;
/// Most operands of one arithmetic question (`env.operands`).
pub const MAX_OPERANDS: u32 = 8;
/// Most numbers of one countdown puzzle (`env.countdown_numbers`).
pub const MAX_COUNTDOWN_NUMBERS: u32 = 6;
/// Largest countdown number (`env.countdown_number_range`).
pub const MAX_COUNTDOWN_NUMBER: u32 = 10_000;
/// Largest countdown target (`env.countdown_target_range`).
pub const MAX_COUNTDOWN_TARGET: u32 = 1_000_000;
/// Most policy replies of one multi-turn episode (`env.max_turns`).
pub const MAX_TURNS: u32 = 16;

/// `[env]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    /// Which environment.
    pub name: EnvName,
    /// Data file, required by `jsonl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `jsonl`: a second data file that is the whole held-out split; `path` is then the whole
    /// training split and `eval_fraction` is not used. Lets two systems be compared on exactly
    /// the same held-out problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_path: Option<PathBuf>,
    /// `jsonl`: the field holding the prompt.
    pub prompt_field: String,
    /// `jsonl`: the field holding the reference answer (GSM8K's `... #### 72` keeps `72`).
    pub answer_field: String,
    /// System prompt put before every question; none: the model's template default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Share of the generated problems held out for evaluation (`arithmetic`, `countdown`): a
    /// problem belongs to the eval split when the hash of its text falls in this share, so no
    /// eval problem is ever drawn for training.
    pub eval_fraction: f64,
    /// `calculator`: most policy replies per episode (tool calls plus the answer).
    pub max_turns: u32,
    /// `arithmetic`: operands per question.
    pub operands: u32,
    /// `arithmetic`: inclusive range operands are drawn from (e.g. `[100, 999]` for 3 digits).
    pub operand_range: [i64; 2],
    /// `arithmetic`: operators drawn uniformly between operands (usual precedence applies).
    pub operators: Vec<ArithmeticOp>,
    /// `countdown`: numbers given per puzzle, each to be used exactly once.
    pub countdown_numbers: u32,
    /// `countdown`: inclusive range the given numbers are drawn from.
    pub countdown_number_range: [u32; 2],
    /// `countdown`: inclusive range of targets.
    pub countdown_target_range: [u32; 2],
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            name: EnvName::Arithmetic,
            path: None,
            eval_path: None,
            prompt_field: "prompt".to_owned(),
            answer_field: "answer".to_owned(),
            system_prompt: None,
            eval_fraction: 0.1,
            max_turns: 4,
            operands: 2,
            operand_range: [0, 99],
            operators: vec![ArithmeticOp::Add, ArithmeticOp::Sub, ArithmeticOp::Mul],
            countdown_numbers: 4,
            countdown_number_range: [1, 99],
            countdown_target_range: [10, 100],
        }
    }
}

impl EnvConfig {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let needs_path = self.name == EnvName::Jsonl;
        let rule = "env.name = \"jsonl\" needs env.path = \"<file.jsonl>\"";
        v.require(
            !needs_path || self.path.is_some(),
            "env.path",
            "(unset)",
            rule,
        );
        v.open_range("env.eval_fraction", self.eval_fraction, 0.0, 1.0);
        v.require(
            (1..=MAX_TURNS).contains(&self.max_turns),
            "env.max_turns",
            self.max_turns,
            format!("must be in [1, {MAX_TURNS}]"),
        );
        v.require(
            (2..=MAX_OPERANDS).contains(&self.operands),
            "env.operands",
            self.operands,
            format!("must be in [2, {MAX_OPERANDS}]"),
        );
        let [lo, hi] = self.operand_range;
        v.require(
            lo <= hi && lo >= -MAX_OPERAND && hi <= MAX_OPERAND,
            "env.operand_range",
            format!("{:?}", self.operand_range),
            format!("must be [low, high] with -{MAX_OPERAND} <= low <= high <= {MAX_OPERAND}"),
        );
        v.require(
            !self.operators.is_empty(),
            "env.operators",
            "[]",
            format!("must list at least one of {:?}", ArithmeticOp::ALL),
        );
        let divides = self.operators.contains(&ArithmeticOp::Div);
        v.require(
            !divides || lo != 0 || hi != 0,
            "env.operand_range",
            format!("{:?}", self.operand_range),
            "env.operators has \"/\": the range needs a non-zero divisor",
        );
        v.require(
            (2..=MAX_COUNTDOWN_NUMBERS).contains(&self.countdown_numbers),
            "env.countdown_numbers",
            self.countdown_numbers,
            format!("must be in [2, {MAX_COUNTDOWN_NUMBERS}]"),
        );
        let [lo, hi] = self.countdown_number_range;
        v.require(
            1 <= lo && lo <= hi && hi <= MAX_COUNTDOWN_NUMBER,
            "env.countdown_number_range",
            format!("{:?}", self.countdown_number_range),
            format!("must be [low, high] with 1 <= low <= high <= {MAX_COUNTDOWN_NUMBER}"),
        );
        let [lo, hi] = self.countdown_target_range;
        v.require(
            lo <= hi && hi <= MAX_COUNTDOWN_TARGET,
            "env.countdown_target_range",
            format!("{:?}", self.countdown_target_range),
            format!("must be [low, high] with low <= high <= {MAX_COUNTDOWN_TARGET}"),
        );
    }
}
