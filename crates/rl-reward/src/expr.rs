//! A bounded, exact arithmetic-expression evaluator: `+ - * /`, unary minus, parentheses and
//! decimal literals, evaluated as exact rationals with checked arithmetic. Used to check
//! countdown answers and to compute arithmetic answers; safe on any input:
//!
//! - the text is refused above [`Limits::max_bytes`] before anything is read;
//! - parsing is iterative (shunting-yard with explicit stacks, Dijkstra 1961), never recursive,
//!   and parentheses nest at most [`Limits::max_depth`] deep;
//! - overflow and division by zero are errors, not panics or infinities.
//!
//! Accepted spellings: `*`, `×`, `·`, `\times`, `\cdot` for multiplication; `/`, `÷`, `\div`
//! for division; `-`, `−` for minus. Usual precedence, left-associative.
//!
//! Written here rather than with an expression crate (`meval`, `evalexpr`): those compute in
//! `f64`, where `0.1 + 0.2 ≠ 0.3` would decide rewards, and recurse on nesting, which hostile
//! input turns into a stack overflow.

use crate::rational::Rational;

/// Bounds on the expressions [`evaluate`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest expression, in bytes.
    pub max_bytes: usize,
    /// Deepest parenthesis nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1024,
            max_depth: 32,
        }
    }
}

/// What an expression evaluated to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Its exact value.
    pub value: Rational,
    /// The number literals it contains, left to right (unsigned: `-3` is minus applied to 3).
    pub literals: Vec<Rational>,
    /// Whether every intermediate result (and the value) is a whole number.
    pub integer_steps: bool,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// Longer than [`Limits::max_bytes`].
    #[error("the expression is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Parentheses nested deeper than [`Limits::max_depth`].
    #[error("parentheses nest deeper than {max} levels")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// Nothing but whitespace.
    #[error("the expression is empty")]
    Empty,
    /// A character or token that cannot come where it is.
    #[error("unexpected {found:?} at byte {at}")]
    Unexpected {
        /// What was found (one token or character).
        found: String,
        /// Its byte offset.
        at: usize,
    },
    /// The text ends where a number or `(` is needed.
    #[error("the expression ends where a number or '(' is expected")]
    UnexpectedEnd,
    /// A `)` without its `(`.
    #[error("')' at byte {at} closes nothing")]
    UnmatchedClose {
        /// Its byte offset.
        at: usize,
    },
    /// A `(` never closed.
    #[error("'(' at byte {at} is never closed")]
    Unclosed {
        /// Its byte offset.
        at: usize,
    },
    /// A division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A literal or result beyond 128-bit fractions.
    #[error("a number or intermediate result is too large")]
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Open,
}

impl Op {
    fn precedence(self) -> u8 {
        match self {
            Op::Open => 0,
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::Div => 2,
            Op::Neg => 3,
        }
    }
}

enum Token {
    Number(Rational),
    Op(Op),
    Close,
}

/// Evaluates `text` exactly (see the [module docs](self)).
///
/// ```
/// use rl_reward::{Rational, expr::{evaluate, Limits}};
///
/// let e = evaluate("(25 + 5) × 3 / -9", &Limits::default()).unwrap();
/// assert_eq!(e.value, Rational::integer(-10).unwrap());
/// assert_eq!(e.literals.len(), 4);
/// assert!(evaluate("1 / (2 - 2)", &Limits::default()).is_err());
/// ```
pub fn evaluate(text: &str, limits: &Limits) -> Result<Evaluation, ExprError> {
    if text.len() > limits.max_bytes {
        return Err(ExprError::TooLong {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    let mut machine = Machine {
        values: Vec::new(),
        ops: Vec::new(),
        integer_steps: true,
    };
    let mut literals = Vec::new();
    let mut expect_operand = true;
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some((at, token)) = next_token(text, &mut pos)? {
        let unexpected = || ExprError::Unexpected {
            found: text[at..pos].to_owned(),
            at,
        };
        match (expect_operand, token) {
            (true, Token::Number(v)) => {
                machine.values.push(v);
                literals.push(v);
                expect_operand = false;
            }
            (true, Token::Op(Op::Open)) => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(ExprError::TooDeep {
                        max: limits.max_depth,
                    });
                }
                machine.ops.push((Op::Open, at));
            }
            (true, Token::Op(Op::Sub)) => machine.ops.push((Op::Neg, at)),
            (true, Token::Op(Op::Add)) => {}
            (false, Token::Op(op)) if op != Op::Open => {
                while let Some(&(top, _)) = machine.ops.last() {
                    if top == Op::Open || top.precedence() < op.precedence() {
                        break;
                    }
                    machine.apply_top()?;
                }
                machine.ops.push((op, at));
                expect_operand = true;
            }
            (false, Token::Close) => {
                loop {
                    match machine.ops.last() {
                        None => return Err(ExprError::UnmatchedClose { at }),
                        Some((Op::Open, _)) => break,
                        Some(_) => machine.apply_top()?,
                    }
                }
                machine.ops.pop();
                depth -= 1;
            }
            _ => return Err(unexpected()),
        }
    }
    if expect_operand {
        let blank = machine.values.is_empty() && machine.ops.is_empty();
        return Err(if blank {
            ExprError::Empty
        } else {
            ExprError::UnexpectedEnd
        });
    }
    while let Some(&(top, at)) = machine.ops.last() {
        if top == Op::Open {
            return Err(ExprError::Unclosed { at });
        }
        machine.apply_top()?;
    }
    let value = machine.values.pop().ok_or(ExprError::UnexpectedEnd)?;
    Ok(Evaluation {
        value,
        literals,
        integer_steps: machine.integer_steps,
    })
}

/// The operand and operator stacks of the shunting-yard evaluation.
struct Machine {
    values: Vec<Rational>,
    ops: Vec<(Op, usize)>,
    integer_steps: bool,
}

impl Machine {
    /// Pops the top operator and applies it to the top value(s).
    fn apply_top(&mut self) -> Result<(), ExprError> {
        let (op, _) = self.ops.pop().ok_or(ExprError::UnexpectedEnd)?;
        let rhs = self.values.pop().ok_or(ExprError::UnexpectedEnd)?;
        let result = if op == Op::Neg {
            rhs.checked_neg().ok_or(ExprError::Overflow)?
        } else {
            let lhs = self.values.pop().ok_or(ExprError::UnexpectedEnd)?;
            let r = match op {
                Op::Add => lhs.checked_add(rhs),
                Op::Sub => lhs.checked_sub(rhs),
                Op::Mul => lhs.checked_mul(rhs),
                Op::Div if rhs == Rational::ZERO => return Err(ExprError::DivisionByZero),
                _ => lhs.checked_div(rhs),
            };
            r.ok_or(ExprError::Overflow)?
        };
        self.integer_steps &= result.is_integer();
        self.values.push(result);
        Ok(())
    }
}

/// The next token after `*pos` (whitespace skipped), with its byte offset; advances `*pos`.
fn next_token(text: &str, pos: &mut usize) -> Result<Option<(usize, Token)>, ExprError> {
    let rest = &text[*pos..];
    let trimmed = rest.trim_start();
    let at = *pos + (rest.len() - trimmed.len());
    let Some(c) = trimmed.chars().next() else {
        *pos = text.len();
        return Ok(None);
    };
    const WORDS: [(&str, Op); 3] = [
        ("\\times", Op::Mul),
        ("\\cdot", Op::Mul),
        ("\\div", Op::Div),
    ];
    if let Some((word, op)) = WORDS.iter().find(|(w, _)| trimmed.starts_with(w)) {
        *pos = at + word.len();
        return Ok(Some((at, Token::Op(*op))));
    }
    let token = match c {
        '+' => Token::Op(Op::Add),
        '-' | '−' => Token::Op(Op::Sub),
        '*' | '×' | '·' => Token::Op(Op::Mul),
        '/' | '÷' => Token::Op(Op::Div),
        '(' => Token::Op(Op::Open),
        ')' => Token::Close,
        '0'..='9' => {
            let (end, value) = literal(text.as_bytes(), at);
            *pos = end;
            return Ok(Some((at, Token::Number(value.ok_or(ExprError::Overflow)?))));
        }
        _ => {
            return Err(ExprError::Unexpected {
                found: c.to_string(),
                at,
            });
        }
    };
    *pos = at + c.len_utf8();
    Ok(Some((at, token)))
}

/// A literal `digits[.digits]` at `i`: its end and exact value (`None` on overflow).
fn literal(b: &[u8], mut i: usize) -> (usize, Option<Rational>) {
    let (mut num, mut den) = (Some(0i128), Some(1i128));
    let mut fraction = false;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_digit() {
            num = num
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(i128::from(c - b'0')));
            if fraction {
                den = den.and_then(|v| v.checked_mul(10));
            }
        } else if c == b'.' && !fraction && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            fraction = true;
        } else {
            break;
        }
        i += 1;
    }
    (i, num.zip(den).and_then(|(n, d)| Rational::new(n, d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Result<Rational, ExprError> {
        evaluate(text, &Limits::default()).map(|e| e.value)
    }

    fn int(n: i128) -> Rational {
        Rational::integer(n).unwrap()
    }

    #[test]
    fn precedence_associativity_and_unary_minus() {
        assert_eq!(eval("2 + 3 * 4"), Ok(int(14)));
        assert_eq!(eval("(2 + 3) * 4"), Ok(int(20)));
        assert_eq!(eval("10 - 4 - 3"), Ok(int(3)));
        assert_eq!(eval("64 / 4 / 2"), Ok(int(8)));
        assert_eq!(eval("-2 * 3"), Ok(int(-6)));
        assert_eq!(eval("2 - -3"), Ok(int(5)));
        assert_eq!(eval("- (1 - 4)"), Ok(int(3)));
        assert_eq!(eval("+5"), Ok(int(5)));
        assert_eq!(eval("7 / 2"), Ok(Rational::new(7, 2).unwrap()));
        assert_eq!(eval("1.5 * 2"), Ok(int(3)));
        assert_eq!(eval(r"6 \times 7 \div 3 − 2 · 1 × 1 ÷ 1"), Ok(int(12)));
    }

    #[test]
    fn literals_and_integer_steps_are_reported() {
        let e = evaluate("4 / 3 * 6", &Limits::default()).unwrap();
        assert_eq!(e.value, int(8));
        assert_eq!(e.literals, [int(4), int(3), int(6)]);
        assert!(!e.integer_steps);
        assert!(
            evaluate("6 / 3 * 4", &Limits::default())
                .unwrap()
                .integer_steps
        );
    }

    #[test]
    fn malformed_expressions_are_named_errors() {
        assert_eq!(eval(""), Err(ExprError::Empty));
        assert_eq!(eval("  "), Err(ExprError::Empty));
        assert_eq!(eval("1 +"), Err(ExprError::UnexpectedEnd));
        assert_eq!(eval("(1 + 2"), Err(ExprError::Unclosed { at: 0 }));
        assert_eq!(eval("1 + 2)"), Err(ExprError::UnmatchedClose { at: 5 }));
        assert_eq!(
            eval("()"),
            Err(ExprError::Unexpected {
                found: ")".into(),
                at: 1
            })
        );
        assert_eq!(
            eval("2 (3)"),
            Err(ExprError::Unexpected {
                found: "(".into(),
                at: 2
            })
        );
        assert_eq!(
            eval("2 3"),
            Err(ExprError::Unexpected {
                found: "3".into(),
                at: 2
            })
        );
        assert_eq!(
            eval("2 ^ 3"),
            Err(ExprError::Unexpected {
                found: "^".into(),
                at: 2
            })
        );
        assert_eq!(
            eval("x"),
            Err(ExprError::Unexpected {
                found: "x".into(),
                at: 0
            })
        );
        assert_eq!(eval("1 / 0"), Err(ExprError::DivisionByZero));
        assert_eq!(eval("1 / (3 - 3)"), Err(ExprError::DivisionByZero));
    }

    #[test]
    fn pathological_input_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(eval(&deep), Err(ExprError::TooDeep { max: 32 }));
        let ok = format!("{}1{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(eval(&ok), Ok(int(1)));
        let huge = "(".repeat(1 << 20);
        assert_eq!(
            eval(&huge),
            Err(ExprError::TooLong {
                len: 1 << 20,
                max: 1024
            })
        );
        assert_eq!(eval(&"9".repeat(50)), Err(ExprError::Overflow));
        let squares = ["99999999999"; 5].join(" * ");
        assert_eq!(eval(&squares), Err(ExprError::Overflow));
        let negs = format!("{}1", "-".repeat(1000));
        assert_eq!(eval(&negs), Ok(int(1)));
    }
}
