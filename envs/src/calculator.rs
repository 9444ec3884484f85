//! `calculator`: a multi-turn tool-use task. The policy gets an arithmetic question (drawn as
//! [`crate::Arithmetic`] draws them, from the same `[env]` keys) and may call a calculator
//! before it answers.
//!
//! Protocol, stated in the prompt:
//! - a reply holding `<calc>EXPRESSION</calc>` calls the tool: the environment evaluates the
//!   first such expression exactly ([`rl_reward::expr`]) and answers with a tool turn
//!   `<result>VALUE</result>` (or `<error>WHY</error>`), and the policy speaks again;
//! - a reply holding `<answer>NUMBER</answer>` ends the episode; the final-number verifier
//!   ([`rl_reward::NumericMatch`], answer tag first) scores it;
//! - a reply with neither, or any reply once `env.max_turns` replies have been made, ends the
//!   episode and is scored as it stands.
//!
//! A `<calc>` whose closing tag is missing (the reply ran out of tokens, or a stop string cut
//! it) still calls the tool on what follows the opening tag.

use rl_core::{
    Env, EnvError, Message, Role, Split, Task, Transition,
    config::{EnvConfig, MAX_TURNS},
};
use rl_reward::expr::{self, Limits};
use serde_json::json;

use crate::{
    arithmetic::{Arithmetic, Question},
    generated::{self, Problem},
};

/// The calculator tool-use environment.
#[derive(Debug, Clone)]
pub struct Calculator {
    questions: Arithmetic,
    max_turns: u32,
    eval_fraction: f64,
    system_prompt: Option<String>,
}

/// A question as the calculator task words it.
struct ToolQuestion(Question);

impl Problem for ToolQuestion {
    fn key(&self) -> String {
        format!("calculator:{}", self.0.expression)
    }

    fn prompt(&self) -> String {
        format!(
            "What is {}?\n\nYou have a calculator. To use it, write <calc>EXPRESSION</calc> \
             (numbers, + - * / and parentheses) and end your message; the result comes back \
             as <result>VALUE</result>. When you know the answer, reply with \
             <answer>NUMBER</answer>.",
            self.0.expression
        )
    }

    fn answer(&self) -> String {
        self.0.answer.to_string()
    }

    fn metadata(&self) -> serde_json::Value {
        json!({ "expression": self.0.expression })
    }
}

impl Calculator {
    /// The environment `[env]` describes: the arithmetic keys (`env.operands`,
    /// `env.operand_range`, `env.operators`, `env.eval_fraction`, `env.system_prompt`) and
    /// `env.max_turns`; errors name the key.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        let questions = Arithmetic::new(config).map_err(|e| EnvError {
            env: "calculator".to_owned(),
            message: e.message,
        })?;
        if !(1..=MAX_TURNS).contains(&config.max_turns) {
            return Err(EnvError {
                env: "calculator".to_owned(),
                message: format!(
                    "env.max_turns = {}: must be in [1, {MAX_TURNS}]",
                    config.max_turns
                ),
            });
        }
        Ok(Self {
            questions,
            max_turns: config.max_turns,
            eval_fraction: config.eval_fraction,
            system_prompt: config.system_prompt.clone(),
        })
    }
}

/// The first tool call in `reply`: the text after `<calc>`, up to `</calc>` or the end.
fn tool_call(reply: &str) -> Option<&str> {
    let start = reply.find("<calc>")? + "<calc>".len();
    let rest = &reply[start..];
    Some(rest.find("</calc>").map_or(rest, |end| &rest[..end]))
}

/// The tool's answer to `expression`: `<result>7</result>`, `<result>7/2 (3.5)</result>` for
/// a fraction, or `<error>…</error>`.
fn run_tool(expression: &str) -> String {
    match expr::evaluate(expression, &Limits::default()) {
        Ok(e) if e.value.denom() == 1 => format!("<result>{}</result>", e.value),
        Ok(e) => {
            let approx = e.value.numer() as f64 / e.value.denom() as f64;
            format!("<result>{} ({approx})</result>", e.value)
        }
        Err(err) => format!("<error>{err}</error>"),
    }
}

impl Env for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn tasks(&mut self, split: Split, n: usize, seed: u64) -> Result<Vec<Task>, EnvError> {
        let questions = &self.questions;
        generated::tasks(
            "calculator",
            split,
            n,
            seed,
            self.eval_fraction,
            self.system_prompt.as_deref(),
            |rng| questions.question(rng).map(ToolQuestion),
        )
    }

    fn step(
        &mut self,
        task: &Task,
        transcript: &[Message],
        reply: &str,
    ) -> Result<Transition, EnvError> {
        let replies = transcript[task.messages.len().min(transcript.len())..]
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count()
            + 1;
        if reply.contains("<answer>") || replies >= self.max_turns as usize {
            return Ok(Transition::Done(None));
        }
        Ok(match tool_call(reply) {
            Some(expression) => Transition::Continue(Message::tool(run_tool(expression))),
            None => Transition::Done(None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(max_turns: u32) -> Calculator {
        Calculator::new(&EnvConfig {
            max_turns,
            ..EnvConfig::default()
        })
        .unwrap()
    }

    fn tool(content: &str) -> Transition {
        Transition::Continue(Message::tool(content))
    }

    #[test]
    fn a_tool_call_is_evaluated_and_answered() {
        let mut env = env(4);
        let task = env.tasks(Split::Train, 1, 3).unwrap().remove(0);
        let t = &task.messages;
        let step = |env: &mut Calculator, reply| env.step(&task, t, reply).unwrap();
        assert_eq!(
            step(&mut env, "Let me compute. <calc>12 * (3 + 4)</calc>"),
            tool("<result>84</result>")
        );
        assert_eq!(
            step(&mut env, "<calc>7 / 2"),
            tool("<result>7/2 (3.5)</result>")
        );
        assert_eq!(
            step(&mut env, "<calc>1 / 0</calc>"),
            tool(&format!(
                "<error>{}</error>",
                expr::evaluate("1 / 0", &Limits::default()).unwrap_err()
            ))
        );
        assert_eq!(
            step(&mut env, "<calc></calc>"),
            tool("<error>the expression is empty</error>")
        );
    }

    #[test]
    fn an_answer_or_a_plain_reply_ends_the_episode() {
        let mut env = env(4);
        let task = env.tasks(Split::Train, 1, 3).unwrap().remove(0);
        let t = &task.messages;
        for reply in [
            "<answer>84</answer>",
            "<calc>1+1</calc> <answer>2</answer>",
            "It is 84.",
        ] {
            assert_eq!(
                env.step(&task, t, reply).unwrap(),
                Transition::Done(None),
                "{reply}"
            );
        }
    }

    #[test]
    fn the_turn_limit_ends_the_episode() {
        let mut env = env(2);
        let task = env.tasks(Split::Train, 1, 3).unwrap().remove(0);
        let mut transcript = task.messages.clone();
        let first = env.step(&task, &transcript, "<calc>1+1</calc>").unwrap();
        assert_eq!(first, tool("<result>2</result>"));
        transcript.push(Message::assistant("<calc>1+1</calc>"));
        transcript.push(Message::tool("<result>2</result>"));
        let second = env.step(&task, &transcript, "<calc>2+2</calc>").unwrap();
        assert_eq!(second, Transition::Done(None));
    }

    #[test]
    fn tasks_state_the_protocol_and_keep_splits_disjoint() {
        let mut env = env(4);
        let train = env.tasks(Split::Train, 200, 1).unwrap();
        let eval = env.tasks(Split::Eval, 50, 1).unwrap();
        let prompt = &train[0].messages.last().unwrap().content;
        assert!(
            prompt.contains("<calc>") && prompt.contains("<answer>"),
            "{prompt}"
        );
        let ids: std::collections::HashSet<_> = train.iter().map(|t| &t.id).collect();
        assert!(eval.iter().all(|t| !ids.contains(&t.id)));
        assert!(train.iter().all(|t| t.id.starts_with("calculator-")));
    }

    #[test]
    fn bad_max_turns_names_the_key() {
        let err = Calculator::new(&EnvConfig {
            max_turns: 0,
            ..EnvConfig::default()
        })
        .unwrap_err();
        assert!(err.message.contains("env.max_turns = 0"), "{err}");
    }
}
