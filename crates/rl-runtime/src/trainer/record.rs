//! What a step records: its metrics under veRL's names (`reward/*`, `actor/*`, `critic/*`,
//! `response_length/*`, `timing_s/*`, `perf/*`, `rollout/*`, `eval/*`), sample generations as
//! text, histograms, and the [`Progress`] hooks a front end (the CLI's progress bar) listens to.

use std::{collections::BTreeMap, time::Instant};

use rl_algorithms::{Experience, Targets};
use rl_core::{Config, Task};
use rl_learner::UpdateStats;
use tch::{Kind, Tensor};

use super::{Evaluation, rollout::Sampled, score::Scores};
use crate::StepMetrics;

/// Hooks for a front end to show a run's progress. Every method has an empty default.
pub trait Progress {
    /// The run starts after step `done` of `steps`.
    fn start(&mut self, done: u64, steps: u64) {
        let _ = (done, steps);
    }
    /// A step finished.
    fn step(&mut self, report: &StepReport) {
        let _ = report;
    }
    /// An evaluation finished after `step` (0 = before any update).
    fn eval(&mut self, step: u64, eval: &Evaluation) {
        let _ = (step, eval);
    }
}

impl Progress for () {}

/// Seconds per phase of one step.
#[derive(Debug, Clone, Default)]
pub struct Timer {
    phases: Vec<(&'static str, f64)>,
}

impl Timer {
    /// Runs `f`, adding its duration to `phase`.
    pub fn time<T>(&mut self, phase: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.record(phase, start.elapsed().as_secs_f64());
        out
    }

    /// Adds `seconds` to `phase`.
    pub fn record(&mut self, phase: &'static str, seconds: f64) {
        match self.phases.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, s)) => *s += seconds,
            None => self.phases.push((phase, seconds)),
        }
    }

    /// Whether `phase` ran.
    pub fn has(&self, phase: &str) -> bool {
        self.phases.iter().any(|(p, _)| *p == phase)
    }

    /// Seconds of `phase` (0 if it did not run).
    pub fn get(&self, phase: &str) -> f64 {
        self.phases
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0.0, |(_, s)| *s)
    }
}

/// Totals over the run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    phases: BTreeMap<&'static str, f64>,
    /// Seconds of the training steps (evaluation excluded).
    pub train_seconds: f64,
    /// Seconds of all evaluations.
    pub eval_seconds: f64,
    /// Seconds of the last evaluation.
    pub eval_last: f64,
    /// Rollout workers restarted so far.
    pub restarts: u64,
}

impl Totals {
    /// Adds a step's phases.
    pub fn add(&mut self, timer: &Timer) {
        for &(phase, s) in &timer.phases {
            *self.phases.entry(phase).or_default() += s;
        }
        self.train_seconds += timer.get("step");
    }

    /// Seconds per phase, `eval` included.
    pub fn phases(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .phases
            .iter()
            .map(|(p, s)| (p.to_string(), *s))
            .collect();
        out.push(("eval".into(), self.eval_seconds));
        out
    }
}

/// What one step did.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// The step.
    pub step: u64,
    /// Its metrics.
    pub metrics: StepMetrics,
    /// Mean reward of the samples trained on.
    pub reward_mean: f64,
    /// Samples generated.
    pub samples: usize,
    /// Samples dropped (refused, reward error or not finite).
    pub dropped: usize,
    /// Whether the update was skipped (nothing to train on).
    pub skipped_update: bool,
    /// Seconds the step took.
    pub seconds: f64,
    rewards: Vec<Result<f64, String>>,
    histograms: Vec<(String, Vec<f64>)>,
}

impl StepReport {
    /// The rollout and reward metrics of a step.
    pub fn new(step: u64, sampled: &[Sampled], scores: &Scores, kept: &[(usize, f64)]) -> Self {
        let oldest = sampled.iter().map(|s| s.policy_version).min().unwrap_or(0);
        let rewards: Vec<f64> = kept.iter().map(|&(_, r)| r).collect();
        let n = rewards.len().max(1) as f64;
        let mean = rewards.iter().sum::<f64>() / n;
        let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let fold = |f: fn(f64, f64) -> f64, init| rewards.iter().copied().fold(init, f);
        let mut m = StepMetrics::default()
            .scalar("reward/mean", mean)
            .scalar("reward/std", std)
            .scalar(
                "reward/min",
                if rewards.is_empty() {
                    0.0
                } else {
                    fold(f64::min, f64::INFINITY)
                },
            )
            .scalar(
                "reward/max",
                if rewards.is_empty() {
                    0.0
                } else {
                    fold(f64::max, f64::NEG_INFINITY)
                },
            )
            .scalar("rollout/samples", sampled.len() as f64)
            .scalar("rollout/dropped", (sampled.len() - kept.len()) as f64)
            .scalar(
                "rollout/truncated_prompts",
                sampled.iter().filter(|s| s.truncated).count() as f64,
            )
            .scalar("rollout/policy_version", oldest as f64)
            // Steps the oldest sample's policy is behind the learner's (which is at step - 1
            // when the step starts): 0 while rollouts wait for each sync.
            .scalar(
                "rollout/policy_version_lag",
                step.saturating_sub(1).saturating_sub(oldest) as f64,
            );
        for (part, value) in &scores.parts {
            m = m.scalar(format!("reward/part/{part}"), *value);
        }
        for (i, r) in scores.rewards.iter().enumerate() {
            if let Err(why) = r {
                tracing::debug!("step {step}: sample {i} dropped: {why}");
            }
        }
        Self {
            step,
            metrics: m,
            reward_mean: mean,
            samples: sampled.len(),
            dropped: sampled.len() - kept.len(),
            skipped_update: false,
            seconds: 0.0,
            rewards: scores.rewards.clone(),
            histograms: vec![("reward".into(), rewards)],
        }
    }

    /// The update's metrics: the learner's, the algorithm's and the batch's.
    pub fn add_update(
        &mut self,
        batch: &Experience,
        targets: &Targets,
        stats: &UpdateStats,
        max_new_tokens: u32,
    ) {
        let scalars = &mut self.metrics.scalars;
        scalars.extend(stats.metrics.iter().map(|(k, v)| (k.clone(), *v)));
        scalars.extend(targets.metrics.iter().cloned());
        scalars.extend(rl_learner::metrics::response_lengths(
            batch,
            i64::from(max_new_tokens),
        ));
        scalars.insert("actor/skipped_steps".into(), stats.skipped as f64);
        if let Some((max, mean)) = stats.logprob_diff {
            scalars.insert("actor/logprob_diff_max".into(), max);
            scalars.insert("actor/logprob_diff_mean".into(), mean);
        }
        let advantages = masked_values(&targets.advantages, &batch.mask);
        self.histograms.push(("advantage".into(), advantages));
        self.histograms.push(("ratio".into(), stats.ratios.clone()));
    }

    /// Timings, throughput, and (when due) sample generations and histograms.
    pub fn finish(&mut self, timer: &Timer, config: &Config, tasks: &[Task], sampled: &[Sampled]) {
        self.seconds = timer.get("step");
        for phase in [
            "gen", "reward", "ref", "values", "share", "update", "sync", "step",
        ] {
            self.metrics
                .scalars
                .insert(format!("timing_s/{phase}"), timer.get(phase));
        }
        // Asynchronous rollouts only: the wait for the next batch after the update.
        if timer.has("gen_wait") {
            self.metrics
                .scalars
                .insert("timing_s/gen_wait".into(), timer.get("gen_wait"));
        }
        let tokens: usize = sampled.iter().map(|s| s.tokens.tokens.len()).sum();
        let seconds = self.seconds.max(1e-9);
        let scalars = &mut self.metrics.scalars;
        scalars.insert("perf/tokens_per_s".into(), tokens as f64 / seconds);
        scalars.insert("perf/samples_per_s".into(), sampled.len() as f64 / seconds);
        let l = &config.logging;
        if l.samples_every > 0 && self.step.is_multiple_of(l.samples_every) {
            let text = samples_table(tasks, sampled, &self.rewards, l.samples_per_log as usize);
            self.metrics.texts.insert("samples".into(), text);
        }
        if l.histograms {
            for (name, values) in self.histograms.drain(..) {
                self.metrics.histograms.insert(name, values);
            }
        }
    }
}

/// `eval/accuracy`, `eval/pass@k`, `eval/tasks` (how many held-out tasks were answered: at most
/// `eval.tasks`, fewer when the split is smaller) and `timing_s/eval` into `m`.
pub fn eval_metrics(m: &mut StepMetrics, eval: &Evaluation, seconds: f64) {
    m.scalars.insert("eval/accuracy".into(), eval.accuracy);
    m.scalars
        .insert("eval/tasks".into(), eval.greedy.len() as f64);
    if let Some((k, pass)) = eval.pass_at_k {
        m.scalars.insert(format!("eval/pass@{k}"), pass);
    }
    m.scalars.insert("timing_s/eval".into(), seconds);
}

/// The values of `x` `[b, n]` where `mask` `[b, n]` is set.
fn masked_values(x: &Tensor, mask: &Tensor) -> Vec<f64> {
    let picked = x.masked_select(&mask.to_kind(Kind::Bool));
    Vec::<f64>::try_from(picked.to_kind(Kind::Double).to_device(tch::Device::Cpu))
        .unwrap_or_default()
}

/// A markdown table of the first `n` samples: prompt, reply, reward.
fn samples_table(
    tasks: &[Task],
    sampled: &[Sampled],
    rewards: &[Result<f64, String>],
    n: usize,
) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', "<br>");
    let mut out = String::from("| prompt | reply | reward |\n|---|---|---|\n");
    for (s, r) in sampled.iter().zip(rewards).take(n) {
        let prompt = tasks[s.episode.task]
            .messages
            .last()
            .map_or("", |m| m.content.as_str());
        let reward = match r {
            Ok(r) => format!("{r:.3}"),
            Err(why) => format!("dropped: {}", cell(why)),
        };
        out.push_str(&format!(
            "| {} | {} | {reward} |\n",
            cell(prompt),
            cell(s.episode.reply())
        ));
    }
    out
}
