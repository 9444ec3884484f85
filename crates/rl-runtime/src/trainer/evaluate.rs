//! Evaluation: the policy answers held-out tasks greedily (and `k` sampled times for pass@k),
//! whole episodes for multi-turn environments, and the environment's verifier judges each
//! final reply, exactly as `rl eval` does.

use std::sync::Arc;

use rl_core::{Env, RewardFn, Scoring, Task};
use rl_model::tokenizer::Tokenizer;
use rl_rollout::{RolloutWorker, SamplingParams};

use super::{
    TrainError,
    rollout::{Lost, RolloutPlan, Sampled, sample},
};

/// What an evaluation found.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Share of tasks whose greedy answer is right.
    pub accuracy: f64,
    /// With `k > 1`: share of tasks with at least one right answer among `k` samples.
    pub pass_at_k: Option<(u32, f64)>,
    /// The greedy episodes, one per task, and whether each is right.
    pub greedy: Vec<(Sampled, bool)>,
    /// The sampled episodes, `k` per task in task order, and whether each is right.
    pub sampled: Vec<(Sampled, bool)>,
}

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// Greedy decoding settings (`max_new_tokens`, stops).
    pub greedy: SamplingParams,
    /// Sampling settings for pass@k.
    pub sampled: SamplingParams,
    /// Samples per task for pass@k; 1 = greedy only.
    pub k: u32,
    /// Longest prompt, in tokens.
    pub max_prompt_tokens: usize,
    /// Seed of the sampled answers.
    pub seed: u64,
    /// How long a worker may yield nothing before it counts as hung.
    pub deadline: std::time::Duration,
}

/// Evaluates the workers' policy (those not lost) on `tasks`, judged by `verifier`.
pub fn evaluate(
    runtime: &tokio::runtime::Runtime,
    workers: (&[Arc<dyn RolloutWorker>], &Lost),
    tokenizer: &Tokenizer,
    env: &mut dyn Env,
    verifier: &dyn RewardFn,
    tasks: &[Task],
    plan: &EvalPlan,
) -> Result<Evaluation, TrainError> {
    let run = |env: &mut dyn Env, params: &SamplingParams, samples: usize| {
        let rollout = RolloutPlan {
            params: params.clone(),
            samples,
            max_prompt_tokens: plan.max_prompt_tokens,
            seed: plan.seed,
            deadline: plan.deadline,
        };
        let episodes = sample(runtime, workers, tokenizer, env, tasks, &rollout)?;
        judge(verifier, tasks, episodes)
    };
    let greedy = run(env, &plan.greedy, 1)?;
    let sampled = if plan.k > 1 {
        run(env, &plan.sampled, plan.k as usize)?
    } else {
        Vec::new()
    };
    let n = tasks.len().max(1) as f64;
    let right = greedy.iter().filter(|(_, ok)| *ok).count() as f64;
    let pass_at_k = (plan.k > 1).then(|| {
        let k = plan.k as usize;
        let passed = sampled
            .chunks(k)
            .filter(|group| group.iter().any(|(_, ok)| *ok))
            .count() as f64;
        (plan.k, passed / n)
    });
    Ok(Evaluation {
        accuracy: right / n,
        pass_at_k,
        greedy,
        sampled,
    })
}

/// Each episode with whether its final reply is right: the environment's own reward when it
/// gave one, else the verifier's score, above one half. A refused episode is wrong.
fn judge(
    verifier: &dyn RewardFn,
    tasks: &[Task],
    episodes: Vec<Sampled>,
) -> Result<Vec<(Sampled, bool)>, TrainError> {
    let scored: Vec<usize> = (0..episodes.len())
        .filter(|&i| episodes[i].dropped.is_none() && episodes[i].episode.env_reward.is_none())
        .collect();
    let batch: Vec<Scoring<'_>> = scored
        .iter()
        .map(|&i| Scoring {
            task: &tasks[episodes[i].episode.task],
            response: episodes[i].episode.reply(),
        })
        .collect();
    let scores = verifier
        .score(&batch)
        .map_err(|e| TrainError::Eval(e.to_string()))?;
    let mut right: Vec<bool> = episodes
        .iter()
        .map(|s| s.dropped.is_none() && s.episode.env_reward.is_some_and(|r| r > 0.5))
        .collect();
    for (&i, s) in scored.iter().zip(&scores) {
        right[i] = s.reward > 0.5;
    }
    Ok(episodes.into_iter().zip(right).collect())
}
