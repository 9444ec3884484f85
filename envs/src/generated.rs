//! Generated problem spaces (arithmetic, countdown): disjoint train/eval splits and the tasks
//! drawn from them. A problem belongs to the eval split when the hash of its canonical text
//! falls in the eval share, so whatever seeds and counts are drawn, no eval problem is ever a
//! training problem. Drawing a split is rejection sampling with a bounded number of tries.

use rl_core::{EnvError, Message, Split, Task};

use rl_core::rng::{Rng, mix};

/// A stable 64-bit hash of a problem's canonical text (FNV-1a, then SplitMix64's mixer so
/// every bit is well spread). Stable across platforms and versions.
pub fn problem_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The split a problem with hash `hash` belongs to when `eval_fraction` of all problems are
/// held out.
pub fn split_of(hash: u64, eval_fraction: f64) -> Split {
    let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
    if unit < eval_fraction {
        Split::Eval
    } else {
        Split::Train
    }
}

/// A generated problem.
pub trait Problem {
    /// The canonical text that identifies the problem (what the split and the task id hash).
    fn key(&self) -> String;
    /// The question the policy sees.
    fn prompt(&self) -> String;
    /// The reference answer (`Task::answer`).
    fn answer(&self) -> String;
    /// What the reward needs besides the answer (`Task::metadata`).
    fn metadata(&self) -> serde_json::Value;
}

/// Checks `env.eval_fraction` (in (0, 1)) for the environment `env`.
pub fn check_eval_fraction(env: &str, eval_fraction: f64) -> Result<(), EnvError> {
    if eval_fraction > 0.0 && eval_fraction < 1.0 {
        return Ok(());
    }
    Err(EnvError {
        env: env.to_owned(),
        message: format!("env.eval_fraction = {eval_fraction}: must be in (0, 1)"),
    })
}

/// `n` tasks of `split` from the problems [`draw`] finds: id `<env>-<hash>`, the system prompt
/// (if any) then the problem's prompt as the user turn.
pub fn tasks<P: Problem>(
    env: &str,
    split: Split,
    n: usize,
    seed: u64,
    eval_fraction: f64,
    system_prompt: Option<&str>,
    generate: impl FnMut(&mut Rng) -> Option<P>,
) -> Result<Vec<Task>, EnvError> {
    let problems = draw(env, split, n, seed, eval_fraction, generate)?;
    Ok(problems
        .into_iter()
        .map(|(hash, p)| {
            let system = system_prompt.map(Message::system);
            Task {
                id: format!("{env}-{hash:016x}"),
                messages: system
                    .into_iter()
                    .chain([Message::user(p.prompt())])
                    .collect(),
                answer: Some(p.answer()),
                metadata: p.metadata(),
            }
        })
        .collect())
}

/// `n` problems of `split`, drawn by `generate` from the stream of `seed` (`None`: that draw
/// failed, try again), each kept only when its hash falls in `split`. Returns the problems
/// with their hashes; an error when `n` cannot be found in a bounded number of draws (the
/// problem space is too small for the split).
pub fn draw<P: Problem>(
    env: &str,
    split: Split,
    n: usize,
    seed: u64,
    eval_fraction: f64,
    mut generate: impl FnMut(&mut Rng) -> Option<P>,
) -> Result<Vec<(u64, P)>, EnvError> {
    let stream = match split {
        Split::Train => 0,
        Split::Eval => 1,
    };
    let mut rng = Rng::new(seed, stream);
    let share = match split {
        Split::Train => 1.0 - eval_fraction,
        Split::Eval => eval_fraction,
    };
    let per_task = (50.0 / share).ceil().min(1e9) as usize;
    let max_draws = 10_000usize.saturating_add(n.saturating_mul(per_task));
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n {
        if draws == max_draws {
            return Err(EnvError {
                env: env.to_owned(),
                message: format!(
                    "found {} of {n} {split:?} problems in {draws} draws: the problem space is too small for this split (env.eval_fraction = {eval_fraction}); widen the ranges in [env] or change env.eval_fraction",
                    out.len()
                ),
            });
        }
        draws += 1;
        let Some(problem) = generate(&mut rng) else {
            continue;
        };
        let hash = problem_hash(&problem.key());
        if split_of(hash, eval_fraction) == split {
            out.push((hash, problem));
        }
    }
    Ok(out)
}
