//! Every key of `configs/reference.toml` does something. The walk lists each key (the optional
//! ones shown commented out included) and checks it against [`KEYS`], a table saying how its
//! effect is shown: the config refuses it until the distributed runtime ([`Effect::Refused`]), a
//! function the trainer builds its roles with gives a different result than at the default
//! ([`Effect::Derived`]), or it shapes the loop itself and an end-to-end test sets it and asserts
//! what it does ([`Effect::Run`]). A key added to the reference without a row here, or a row
//! whose key is gone, fails the walk: no key is documented and validated but read by nothing.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rl_algorithms::{Experience, LossInputs};
use rl_core::{Config, RewardError, RewardFn, Score, Scoring, Split, Task};
use rl_model::heads::ScalarModel;
use rl_reward::remote::{RewardServer, ServerOptions};
use rl_runtime::{
    reward::{model_settings, scorer},
    trainer::{
        roles::{engine_config, optimizers, update_settings},
        sampling_params,
    },
};
use tch::{Device, Kind, Tensor};

/// How a key's effect is shown.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Any value but the default fails `Config::validate` with "not available yet".
    Refused,
    /// `Probe` of a config with the key set differs from `Probe` of one without it; the
    /// `key=value` overrides of the slice (a base some keys need, e.g. `algorithm.name = "ppo"`
    /// for `gamma`) are set in both.
    Derived(Probe, &'static [&'static str]),
    /// The loop itself: the named end-to-end test (`file::function`) sets the key and asserts
    /// what it does.
    Run(&'static str),
}

/// What a [`Effect::Derived`] key is seen through: each a function the trainer uses.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// `trainer::roles::update_settings`: the learner's update.
    Update,
    /// `trainer::roles::optimizers`: AdamW and the critic's learning rate.
    Optimizers,
    /// `trainer::roles::engine_config`: the rollout workers' engines.
    Engine,
    /// `trainer::sampling_params`: how training rollouts (and pass@k samples) are decoded.
    Sampling,
    /// `rl_algorithms::from_config`: its targets and loss on [`experience`].
    Algorithm,
    /// `rl_envs::by_name`: its tasks of both splits and its answer to a tool call.
    Env,
    /// `reward::scorer`: the scores of [`PAIRS`].
    Scores,
    /// `reward::model_settings`: where and how a reward model scores.
    RewardModel,
}

use Effect::{Derived, Refused, Run};
use Probe::*;

// The bases: overrides for keys that act only with another key set.
const NONE: &[&str] = &[];
const PPO: &[&str] = &["algorithm.name=\"ppo\""];
const KL: &[&str] = &["algorithm.kl_coef=0.1"];
/// The adaptive KL controller of PPO, with a horizon short enough to move visibly in one batch.
const PPO_KL: &[&str] = &[
    "algorithm.name=\"ppo\"",
    "algorithm.kl_coef=0.1",
    "algorithm.kl_horizon=100",
];
const PPO_KL_TARGET: &[&str] = &[
    "algorithm.name=\"ppo\"",
    "algorithm.kl_coef=0.1",
    "algorithm.kl_target=0.01",
];
/// DAPO whose length limit the responses of [`experience`] reach.
const DAPO: &[&str] = &["algorithm.name=\"dapo\"", "rollout.max_new_tokens=4"];
const DAPO_OVERLONG: &[&str] = &[
    "algorithm.name=\"dapo\"",
    "rollout.max_new_tokens=4",
    "algorithm.overlong_buffer=2",
];
const REINFORCE_PP: &[&str] = &["algorithm.name=\"reinforce_pp\""];
const COUNTDOWN: &[&str] = &["env.name=\"countdown\""];
const CALCULATOR: &[&str] = &["env.name=\"calculator\""];
const JSONL: &[&str] = &["env.name=\"jsonl\""];
const JSONL_DATA: &[&str] = &["env.name=\"jsonl\"", "env.path=\"{data}\""];
const FORMAT: &[&str] = &["reward.format_weight=1"];
const EXACT: &[&str] = &["reward.verifier=\"exact\""];
const REGEX: &[&str] = &["reward.verifier=\"regex\""];
const MODEL: &[&str] = &["reward.kind=\"model\""];
const TINY_RM: &[&str] = &["reward.kind=\"model\"", "reward.model=\"{rm}\""];
const REMOTE: &[&str] = &["reward.kind=\"remote\""];
const SERVER: &[&str] = &["reward.url=\"{server}\""];
/// A server slower than the changed timeout, tried once.
const SLOW: &[&str] = &[
    "reward.kind=\"remote\"",
    "reward.url=\"{slow}\"",
    "reward.attempts=1",
];
/// A server whose odd calls outlast the timeout. `derived` observes the default first: call 1
/// times out and the second of 4 attempts (call 2) answers; then with 1 attempt, call 3 times
/// out and the scorer fails.
const FLAKY: &[&str] = &[
    "reward.kind=\"remote\"",
    "reward.url=\"{flaky}\"",
    "reward.timeout_s=0.2",
];

/// The end-to-end tests named by [`Effect::Run`] rows.
const LOOP: &str = "tests/train.rs::loop_keys_set_off_default_each_show_in_the_run";
const DEVICES: &str = "tests/cli.rs::what_this_machine_lacks_is_refused_before_anything_is_written";
const GROUP: &str = "tests/train.rs::a_learner_group_of_two_ranks_trains_like_one_learner";
const PROCESSES: &str = "tests/train.rs::the_distributed_config_trains_like_one_process";
const RAY: &str = "tests/ray.rs::ray_places_the_roles_and_the_run_trains_like_one_process";
const RAY_PRIVATE: &str = "tests/ray.rs::without_an_address_the_run_starts_a_private_ray_and_a_python_without_ray_is_refused";
const ASYNC: &str =
    "crates/rl-runtime/tests/learning.rs::asynchronous_rollouts_learn_one_policy_version_behind";
const REWARD_MODEL: &str =
    "tests/reward_model.rs::rl_train_fits_a_minilm_reward_model_that_rl_reward_server_serves";

/// Every key of `configs/reference.toml`: a value other than its default (TOML; `{data}`,
/// `{rm}`, `{server}`, `{slow}` and `{flaky}` stand for the fixtures of [`Fixtures`]) and how
/// its effect is shown. A key may have more than one row.
const KEYS: &[(&str, &str, Effect)] = &[
    ("run.name", "\"loop\"", Run(LOOP)),
    ("run.runs_dir", "\"elsewhere\"", Run(LOOP)),
    ("run.seed", "7", Run(LOOP)),
    ("run.steps", "4", Run(LOOP)),
    ("run.trainer", "\"reward_model\"", Run(REWARD_MODEL)),
    ("model.path", "\"<tiny model>\"", Run(LOOP)),
    ("model.dtype", "\"bf16\"", Run(LOOP)),
    ("env.name", "\"countdown\"", Derived(Env, NONE)),
    ("env.path", "\"{data}\"", Derived(Env, JSONL)),
    ("env.eval_path", "\"{data}\"", Derived(Env, JSONL_DATA)),
    ("env.prompt_field", "\"question\"", Derived(Env, JSONL_DATA)),
    ("env.answer_field", "\"solution\"", Derived(Env, JSONL_DATA)),
    ("env.system_prompt", "\"Be brief.\"", Derived(Env, NONE)),
    ("env.eval_fraction", "0.5", Derived(Env, NONE)),
    ("env.max_turns", "1", Derived(Env, CALCULATOR)),
    ("env.operands", "3", Derived(Env, NONE)),
    ("env.operand_range", "[100, 999]", Derived(Env, NONE)),
    ("env.operators", "[\"/\"]", Derived(Env, NONE)),
    ("env.countdown_numbers", "3", Derived(Env, COUNTDOWN)),
    (
        "env.countdown_number_range",
        "[1, 9]",
        Derived(Env, COUNTDOWN),
    ),
    (
        "env.countdown_target_range",
        "[50, 60]",
        Derived(Env, COUNTDOWN),
    ),
    ("rollout.prompts_per_step", "2", Run(LOOP)),
    ("rollout.samples_per_prompt", "2", Run(LOOP)),
    ("rollout.max_prompt_tokens", "16", Run(LOOP)),
    ("rollout.max_new_tokens", "32", Derived(Sampling, NONE)),
    ("rollout.temperature", "0.5", Derived(Sampling, NONE)),
    ("rollout.top_p", "0.9", Derived(Sampling, NONE)),
    ("rollout.top_k", "50", Derived(Sampling, NONE)),
    ("rollout.max_batch", "8", Derived(Engine, NONE)),
    ("rollout.max_seq_len", "512", Derived(Engine, NONE)),
    ("rollout.async", "true", Run(ASYNC)),
    ("rollout.is_cap", "1.5", Run(ASYNC)),
    (
        "rollout.worker_timeout_s",
        "3",
        Run("tests/train.rs::a_hung_rollout_worker_is_caught_by_its_deadline_and_restarted"),
    ),
    ("reward.kind", "\"remote\"", Derived(Scores, SERVER)),
    ("reward.model", "\"{rm}\"", Derived(Scores, MODEL)),
    ("reward.url", "\"{server}\"", Derived(Scores, REMOTE)),
    ("reward.timeout_s", "0.2", Derived(Scores, SLOW)),
    ("reward.attempts", "1", Derived(Scores, FLAKY)),
    ("reward.max_length", "8", Derived(Scores, TINY_RM)),
    ("reward.batch_size", "8", Derived(RewardModel, NONE)),
    ("reward.scale", "2.0", Derived(Scores, NONE)),
    ("reward.clip", "0.5", Derived(Scores, NONE)),
    ("reward.correct_weight", "0.5", Derived(Scores, NONE)),
    ("reward.format_weight", "0.5", Derived(Scores, NONE)),
    (
        "reward.format_tags",
        "[\"think\", \"answer\"]",
        Derived(Scores, FORMAT),
    ),
    ("reward.verifier", "\"exact\"", Derived(Scores, NONE)),
    ("reward.answer_tag", "\"answer\"", Derived(Scores, EXACT)),
    (
        "reward.pattern",
        "'answer: (?P<answer>\\w+)'",
        Derived(Scores, REGEX),
    ),
    ("algorithm.name", "\"rloo\"", Derived(Algorithm, NONE)),
    ("algorithm.advantage", "\"rloo\"", Derived(Algorithm, NONE)),
    (
        "algorithm.advantage",
        "\"reinforce_pp_baseline\"",
        Derived(Algorithm, REINFORCE_PP),
    ),
    ("algorithm.clip_ratio", "0.1", Derived(Algorithm, NONE)),
    (
        "algorithm.clip_ratio_high",
        "0.28",
        Derived(Algorithm, NONE),
    ),
    ("algorithm.kl_coef", "0.1", Derived(Algorithm, NONE)),
    ("algorithm.kl_estimator", "\"k1\"", Derived(Algorithm, KL)),
    ("algorithm.entropy_coef", "0.01", Derived(Algorithm, NONE)),
    ("algorithm.gamma", "0.9", Derived(Algorithm, PPO)),
    ("algorithm.lam", "0.5", Derived(Algorithm, PPO)),
    (
        "algorithm.loss_agg",
        "\"seq_mean_token_sum\"",
        Derived(Algorithm, NONE),
    ),
    ("algorithm.epochs", "2", Derived(Update, NONE)),
    ("algorithm.value_clip", "0.05", Derived(Algorithm, PPO)),
    ("algorithm.scale_by_std", "false", Derived(Algorithm, NONE)),
    ("algorithm.kl_target", "0.01", Derived(Algorithm, PPO_KL)),
    (
        "algorithm.kl_horizon",
        "100",
        Derived(Algorithm, PPO_KL_TARGET),
    ),
    ("algorithm.dual_clip", "3.0", Derived(Algorithm, NONE)),
    ("algorithm.vf_coef", "0.5", Derived(Algorithm, PPO)),
    // 2: `algorithm` calls `targets` twice, and PPO warms up while updates <= critic_warmup.
    ("algorithm.critic_warmup", "2", Derived(Algorithm, PPO)),
    ("algorithm.overlong_buffer", "2", Derived(Algorithm, DAPO)),
    (
        "algorithm.overlong_penalty",
        "0.5",
        Derived(Algorithm, DAPO_OVERLONG),
    ),
    ("learner.lr", "1e-5", Derived(Update, NONE)),
    ("learner.critic_lr", "1e-4", Derived(Optimizers, NONE)),
    ("learner.lr_schedule", "\"cosine\"", Derived(Update, NONE)),
    ("learner.warmup_steps", "10", Derived(Update, NONE)),
    ("learner.weight_decay", "0.01", Derived(Optimizers, NONE)),
    (
        "learner.adam_betas",
        "[0.9, 0.95]",
        Derived(Optimizers, NONE),
    ),
    ("learner.adam_eps", "1e-6", Derived(Optimizers, NONE)),
    ("learner.grad_clip", "0.5", Derived(Update, NONE)),
    ("learner.mini_batch_size", "8", Derived(Update, NONE)),
    ("learner.micro_batch_size", "2", Derived(Update, NONE)),
    ("learner.micro_batch_tokens", "512", Derived(Update, NONE)),
    ("learner.shared_prefix", "false", Derived(Update, NONE)),
    (
        "learner.fp32_master_weights",
        "false",
        Derived(Update, NONE),
    ),
    ("learner.gradient_checkpointing", "true", Refused),
    ("placement.rollout_workers", "2", Run(LOOP)),
    ("placement.mode", "\"processes\"", Run(PROCESSES)),
    ("placement.mode", "\"ray\"", Run(RAY)),
    ("placement.ray_address", "\"127.0.0.1:6379\"", Run(RAY)),
    ("placement.ray_cpus", "0.5", Run(RAY)),
    (
        "placement.ray_python",
        "\"/venv/bin/python\"",
        Run(RAY_PRIVATE),
    ),
    ("placement.learners", "2", Run(GROUP)),
    ("placement.rollout_device", "\"cuda:7\"", Run(DEVICES)),
    ("placement.learner_device", "\"cuda:7\"", Run(DEVICES)),
    (
        "placement.reward_device",
        "\"cuda:99\"",
        Derived(RewardModel, NONE),
    ),
    ("placement.backend", "\"nccl\"", Run(DEVICES)),
    ("placement.rendezvous", "\"host:29500\"", Run(GROUP)),
    (
        "placement.rollout_servers",
        "[\"http://host:50051\"]",
        Run("tests/train.rs::rollout_worker_processes_generate_and_take_every_sync"),
    ),
    (
        "placement.weight_sync",
        "\"broadcast\"",
        Run("tests/train.rs::weights_broadcast_over_a_weight_group_train_like_the_stream"),
    ),
    ("logging.tensorboard", "false", Run(LOOP)),
    ("logging.jsonl", "false", Run(LOOP)),
    ("logging.every", "2", Run(LOOP)),
    ("logging.samples_every", "2", Run(LOOP)),
    ("logging.samples_per_log", "2", Run(LOOP)),
    ("logging.histograms", "false", Run(LOOP)),
    ("checkpoint.every", "1", Run(LOOP)),
    ("checkpoint.keep_last", "3", Run(LOOP)),
    ("checkpoint.save_optimizer", "false", Run(LOOP)),
    ("eval.every", "3", Run(LOOP)),
    ("eval.tasks", "4", Run(LOOP)),
    ("eval.k", "2", Run(LOOP)),
    // Reward-model training. That test sets path, eval_fraction, micro_batch_size and
    // max_length as here; it leaves the field names, batch_size and eval_every at their
    // defaults, so for those four the row's value is what a test would set, not yet one that is.
    ("preference.path", "\"pairs.jsonl\"", Run(REWARD_MODEL)),
    ("preference.prompt_field", "\"question\"", Run(REWARD_MODEL)),
    ("preference.chosen_field", "\"good\"", Run(REWARD_MODEL)),
    ("preference.rejected_field", "\"bad\"", Run(REWARD_MODEL)),
    ("preference.eval_fraction", "0.2", Run(REWARD_MODEL)),
    ("preference.batch_size", "8", Run(REWARD_MODEL)),
    ("preference.micro_batch_size", "8", Run(REWARD_MODEL)),
    ("preference.max_length", "64", Run(REWARD_MODEL)),
    ("preference.eval_every", "4", Run(REWARD_MODEL)),
];

#[test]
fn every_reference_key_changes_behaviour_or_is_refused() {
    let documented = reference_keys();
    let covered: BTreeSet<String> = KEYS.iter().map(|(key, ..)| key.to_string()).collect();
    let uncovered: Vec<_> = documented.difference(&covered).collect();
    let gone: Vec<_> = covered.difference(&documented).collect();
    assert!(
        uncovered.is_empty() && gone.is_empty(),
        "configs/reference.toml and KEYS disagree: keys without a row {uncovered:?}, rows without a key {gone:?}"
    );

    let fixtures = Fixtures::new();
    // Every failure at once: a run shows each key that does nothing, not only the first.
    let failures: Vec<String> = KEYS
        .iter()
        .filter_map(|&(key, value, effect)| {
            let shown = match effect {
                Refused => refused(key, value),
                Derived(probe, base) => derived(key, value, probe, base, &fixtures),
                Run(test) => named(test),
            };
            shown.err().map(|why| format!("{key} = {value}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The keys of `configs/reference.toml` as `section.key`: each `key = value` line of a section,
/// and each optional key shown commented out (`# key = value`); prose comments have no
/// `word = ` at their start.
fn reference_keys() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/reference.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let is_key = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let mut section = None;
    let mut keys = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name);
            continue;
        }
        let entry = line.strip_prefix('#').map_or(line, str::trim_start);
        if let (Some(section), Some((key, _))) = (section, entry.split_once(" = "))
            && is_key(key)
        {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// The config of `sets` (`key=value` overrides) over the defaults, loaded as `rl train` loads.
fn load(sets: &[String]) -> Result<Config, String> {
    Config::from_toml("", Path::new("config_keys"), sets).map_err(|e| e.to_string())
}

/// [`Effect::Refused`]: the key is named with "not available yet".
fn refused(key: &str, value: &str) -> Result<(), String> {
    match load(&[format!("{key}={value}")]) {
        Ok(_) => Err("accepted, but the runtime cannot honour it yet".into()),
        Err(e) if e.contains(key) && e.contains("not available yet") => Ok(()),
        Err(e) => Err(format!("refused, but not as \"not available yet\": {e}")),
    }
}

/// [`Effect::Derived`]: the probe sees a difference. Where both configs fail (a base that needs
/// the key), the changed one must fail naming the key, so that two unrelated errors do not pass.
fn derived(
    key: &str,
    value: &str,
    probe: Probe,
    base: &[&str],
    fixtures: &Fixtures,
) -> Result<(), String> {
    let base: Vec<String> = base.iter().map(|s| fixtures.fill(s)).collect();
    let mut changed = base.clone();
    changed.push(format!("{key}={}", fixtures.fill(value)));
    let before = load(&base).and_then(|c| observe(probe, &c));
    let after = load(&changed).and_then(|c| observe(probe, &c));
    match (before, after) {
        (before, after) if before == after => Err(format!(
            "{probe:?} sees no difference: {}",
            after.unwrap_or_else(|e| e)
        )),
        (Err(_), Err(e)) if !e.contains(key) => Err(format!("fails without naming it: {e}")),
        _ => Ok(()),
    }
}

/// [`Effect::Run`]: the named test exists (its assertions are the proof).
fn named(test: &str) -> Result<(), String> {
    let (file, function) = test.split_once("::").unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{test}: {e}"))?;
    if text.contains(&format!("fn {function}()")) {
        Ok(())
    } else {
        Err(format!("{file} has no test {function}"))
    }
}

/// What `probe` sees of `config`, as text (numbers to 6 significant digits, so that rounding
/// noise is not a difference), or why it failed.
fn observe(probe: Probe, config: &Config) -> Result<String, String> {
    Ok(match probe {
        Update => format!("{:?}", update_settings(config)),
        Optimizers => format!("{:?}", optimizers(config)),
        Engine => format!("{:?}", engine_config(config)),
        Sampling => format!("{:?}", sampling_params(&config.rollout)),
        Algorithm => algorithm(config)?,
        Env => env(config)?,
        Scores => scores(config)?,
        RewardModel => format!("{:?}", model_settings(config).map_err(|e| e.to_string())?),
    })
}

/// The values of `t`, 6 significant digits each.
fn numbers(t: &Tensor) -> String {
    let values = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap();
    let text: Vec<String> = values.iter().map(|v| format!("{v:.5e}")).collect();
    text.join(" ")
}

/// The algorithm's targets (of its second batch: an adaptive KL coefficient moves after the
/// first) and its loss on [`experience`].
fn algorithm(config: &Config) -> Result<String, String> {
    let mut algorithm =
        rl_algorithms::from_config(&config.algorithm, config.rollout.max_new_tokens)
            .map_err(|e| e.to_string())?;
    let batch = experience();
    algorithm.targets(&batch).map_err(|e| e.to_string())?;
    let targets = algorithm.targets(&batch).map_err(|e| e.to_string())?;
    let now = current();
    let inputs = LossInputs {
        logprobs: &now.logprobs,
        entropy: Some(&now.entropy),
        values: Some(&now.values),
        old_logprobs: &batch.old_logprobs,
        is_weights: batch.is_weights.as_ref(),
        ref_logprobs: batch.ref_logprobs.as_ref(),
        old_values: batch.values.as_ref(),
        advantages: &targets.advantages,
        returns: targets.returns.as_ref(),
        mask: &batch.mask,
        minibatch_tokens: batch.mask.sum(Kind::Double).double_value(&[]),
        minibatch_sequences: 4.0,
    };
    let loss = algorithm.loss(&inputs).map_err(|e| e.to_string())?;
    let returns = targets.returns.as_ref().map(numbers);
    let keep = targets.keep.as_ref().map(numbers);
    Ok(format!(
        "advantages {}\nreturns {returns:?}\nkeep {keep:?}\nloss {}",
        numbers(&targets.advantages),
        numbers(&loss.loss)
    ))
}

/// Four responses in two groups of two, 4, 2, 3 and 1 tokens long, with varied rewards, the
/// reference model's log-probs and the critic's values: a batch on which each loss term and
/// each advantage estimator gives its own numbers.
fn experience() -> Experience {
    let (b, n) = (4, 4);
    let f = |v: &[f32]| Tensor::from_slice(v).view([b, n]);
    Experience {
        input_ids: Tensor::zeros([b, n + 1], (Kind::Int64, Device::Cpu)),
        attention_mask: Tensor::ones([b, n + 1], (Kind::Int64, Device::Cpu)),
        mask: f(&[
            1., 1., 1., 1., 1., 1., 0., 0., 1., 1., 1., 0., 1., 0., 0., 0.,
        ]),
        old_logprobs: f(&[
            -1.0, -0.5, -2.0, -1.2, -0.3, -0.9, 0., 0., -1.5, -0.7, -0.2, 0., -1.1, 0., 0., 0.,
        ]),
        ref_logprobs: Some(f(&[
            -1.4, -0.2, -2.5, -1.0, -0.9, -0.4, 0., 0., -1.1, -1.3, -0.6, 0., -0.5, 0., 0., 0.,
        ])),
        values: Some(f(&[
            0.1, 0.2, 0.3, 0.0, -0.1, 0.4, 0., 0., 0.5, 0.5, 0.2, 0., 0.3, 0., 0., 0.,
        ])),
        rewards: Tensor::from_slice(&[1f32, 0.0, 0.7, 0.2]),
        groups: Tensor::from_slice(&[0i64, 0, 1, 1]),
        is_weights: None,
    }
}

/// The model's outputs now for [`experience`].
struct Current {
    logprobs: Tensor,
    entropy: Tensor,
    values: Tensor,
}

/// Ratios beyond both clips of either sign (e^0.5, e^-0.5) and one above the dual clip (e^1.5)
/// on the negative-advantage second response; values moved past the value clip.
fn current() -> Current {
    let old = experience();
    let f = |v: &[f32]| Tensor::from_slice(v).view([4, 4]);
    let moved = f(&[
        0.5, 0.1, -0.5, 0.0, 1.5, -0.2, 0., 0., 0.3, -0.5, 0.05, 0., -0.5, 0., 0., 0.,
    ]);
    let shift = f(&[
        0.3, -0.1, 0.25, 0.0, -0.35, 0.1, 0., 0., 0.15, -0.3, 0.4, 0., -0.2, 0., 0., 0.,
    ]);
    Current {
        logprobs: &old.old_logprobs + moved,
        entropy: f(&[
            1.2, 0.8, 2.0, 0.5, 1.0, 1.5, 0., 0., 0.7, 0.9, 1.1, 0., 0.4, 0., 0., 0.,
        ]),
        values: old.values.unwrap() + shift,
    }
}

/// The environment's first training and evaluation tasks and its answer to a tool call as the
/// first reply (the calculator's; the others end every episode after one reply).
fn env(config: &Config) -> Result<String, String> {
    let mut env = rl_envs::by_name(&config.env).map_err(|e| e.to_string())?;
    let train = env.tasks(Split::Train, 8, 0).map_err(|e| e.to_string())?;
    let eval = env.tasks(Split::Eval, 8, 0).map_err(|e| e.to_string())?;
    let task = &train[0];
    let step = env
        .step(task, &task.messages, "<calc>1 + 1</calc>")
        .map_err(|e| e.to_string())?;
    Ok(format!("{train:?}\n{eval:?}\n{step:?}"))
}

/// (prompt, answer, reply): right and wrong answers, with and without the tags the format
/// check, `answer_tag` and `pattern` look for.
const PAIRS: [(&str, &str, &str); 5] = [
    ("What is 2 + 3?", "5", "<answer>5</answer>"),
    ("What is 2 + 3?", "5", "The answer is 5."),
    (
        "What is 2 + 3?",
        "5",
        "<think>2 + 3</think><answer>5</answer>",
    ),
    ("What is 4 + 4?", "8", "answer: 8"),
    ("What is 4 + 4?", "8", "It is 9."),
];

/// The scorer's rewards and parts for [`PAIRS`].
fn scores(config: &Config) -> Result<String, String> {
    let scorer = scorer(config).map_err(|e| e.to_string())?;
    let tasks: Vec<Task> = PAIRS
        .iter()
        .enumerate()
        .map(|(i, (prompt, answer, _))| {
            Task::single_turn(format!("t{i}"), *prompt, Some((*answer).to_owned()))
        })
        .collect();
    let batch: Vec<Scoring<'_>> = tasks
        .iter()
        .zip(PAIRS)
        .map(|(task, (.., response))| Scoring { task, response })
        .collect();
    let scores = scorer.score(&batch).map_err(|e| e.to_string())?;
    let shown: Vec<String> = scores
        .iter()
        .map(|s| {
            let parts: Vec<String> = s
                .parts
                .iter()
                .map(|(k, v)| format!("{k} {v:.5e}"))
                .collect();
            format!("{:.5e} ({})", s.reward, parts.join(", "))
        })
        .collect();
    Ok(shown.join("\n"))
}

/// What the rows' placeholders stand for: a jsonl data file, a tiny reward model, and three
/// reward servers (answering at once, always slowly, slowly on odd calls), alive while this is.
struct Fixtures {
    _dir: tempfile::TempDir,
    data: PathBuf,
    rm: PathBuf,
    server: String,
    slow: String,
    flaky: String,
}

impl Fixtures {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.jsonl");
        let lines: Vec<String> = (0..20)
            .map(|i| {
                serde_json::json!({
                    "prompt": format!("What is {i} + 1?"), "answer": format!("{}", i + 1),
                    "question": format!("What is {i} * 2?"), "solution": format!("{}", i * 2),
                })
                .to_string()
            })
            .collect();
        std::fs::write(&data, lines.join("\n") + "\n").unwrap();
        let rm = tiny_reward_model(&dir.path().join("rm"));
        Self {
            data,
            rm,
            server: serve(|_| false),
            slow: serve(|_| true),
            flaky: serve(|call| call % 2 == 1),
            _dir: dir,
        }
    }

    fn fill(&self, s: &str) -> String {
        s.replace("{data}", &self.data.display().to_string())
            .replace("{rm}", &self.rm.display().to_string())
            .replace("{server}", &self.server)
            .replace("{slow}", &self.slow)
            .replace("{flaky}", &self.flaky)
    }
}

/// A reward server on a free port, on its own thread, scoring each reply by its length; call
/// `n` (from 1) first waits half a second when `slow(n)`.
fn serve(slow: fn(usize) -> bool) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Room for calls still sleeping after their client gave up.
        let options = ServerOptions {
            max_concurrency: 8,
            ..ServerOptions::default()
        };
        let server = runtime
            .block_on(RewardServer::bind("127.0.0.1:0", options))
            .unwrap();
        tx.send(format!("http://{}", server.local_addr())).unwrap();
        let scorer = Arc::new(Length {
            slow,
            calls: AtomicUsize::new(0),
        });
        runtime
            .block_on(server.serve(scorer, std::future::pending()))
            .unwrap();
    });
    rx.recv().unwrap()
}

/// Scores a reply by its length in bytes.
struct Length {
    slow: fn(usize) -> bool,
    calls: AtomicUsize,
}

impl RewardFn for Length {
    fn name(&self) -> &str {
        "length"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        if (self.slow)(self.calls.fetch_add(1, Ordering::SeqCst) + 1) {
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(batch
            .iter()
            .map(|s| Score::new(s.response.len() as f64))
            .collect())
    }
}

/// A tiny random reward model (one-layer Llama, hidden size 16, a scalar head) with SmolLM2's
/// tokenizer and chat template, as an HF sequence-classification folder at `out`.
fn tiny_reward_model(out: &Path) -> PathBuf {
    let json = serde_json::json!({
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 512, "tie_word_embeddings": true, "rms_norm_eps": 1e-5,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
    });
    let mut model = ScalarModel::from_config(json, Device::Cpu).unwrap();
    model.source = rl_test_support::smollm2_tokenizer_dir();
    model.save_dir(out, Kind::Float).unwrap();
    out.to_owned()
}
