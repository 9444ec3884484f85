//! The update loop: one call per training step turns an [`Experience`] and its [`Targets`] into
//! optimiser steps. Sequences are shuffled each epoch (seeded by the step, so a restored run
//! shuffles the same way), split into mini-batches (one optimiser step each) and micro-batches
//! (one forward/backward each, gradients accumulated).

use std::collections::BTreeMap;

use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rl_algorithms::{
    Algorithm, AlgorithmError, Experience, LossInputs, Targets, math::truncated_is_weights,
};
use rl_core::config::LrSchedule;
use rl_model::{
    CausalLm, TrainingPass, backward_token_loss, heads::ScalarModel, logprobs::DEFAULT_CHUNK_TOKENS,
};
use tch::{Kind, Tensor, nn::VarStore};

use crate::group::ProcessGroup;
use crate::{
    AdamW, AdamWConfig, grad, master::MasterWeights, optimizer::StateError, reference_logprobs,
    schedule::learning_rate,
};

/// Why an update could not run. The weights are unchanged when it is returned before any
/// optimiser step; steps already taken in the same call stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LearnerError {
    /// The batch is malformed (shapes, empty, non-finite rewards).
    #[error("bad batch: {0}")]
    Batch(String),
    /// The algorithm refused the batch.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// A checkpoint's optimiser state does not fit.
    #[error(transparent)]
    State(#[from] StateError),
    /// A collective of the learner group failed (another rank died or timed out).
    #[error("{0}")]
    Group(String),
}

/// How an update runs (from `[learner]` and `[algorithm]`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSettings {
    /// Peak learning rate.
    pub lr: f64,
    /// Decay after warm-up.
    pub schedule: LrSchedule,
    /// Linear warm-up, in optimiser steps.
    pub warmup_steps: u64,
    /// Optimiser steps of the whole run (the schedule's horizon).
    pub total_steps: u64,
    /// Global gradient-norm bound; 0 = off.
    pub grad_clip: f64,
    /// Passes over each batch.
    pub epochs: u32,
    /// Sequences per optimiser step.
    pub mini_batch_size: usize,
    /// Sequences per forward/backward pass (at most).
    pub micro_batch_size: usize,
    /// Padded tokens (rows × longest row) per forward/backward pass, at most; None = no budget.
    /// Bounds activation memory when lengths vary.
    pub micro_batch_tokens: Option<usize>,
    /// Compute the policy's entropy for the loss and metrics: that of the tempered distribution,
    /// the one the rollouts were sampled from.
    pub entropy: bool,
    /// Sampling temperature of the rollouts: the update scores tokens under
    /// `log_softmax(logits / temperature)`, the distribution whose log-probs the sampler
    /// reported, so the importance ratio starts at 1 (up to rounding). `≤ 0` (greedy) means 1.
    pub temperature: f64,
    /// Encode the prompt that rows share once per pass ([`rl_model::packing`]); the gradients
    /// are the per-row pass's up to rounding. Micro-batches then take a group's rows together.
    pub shared_prefix: bool,
    /// Keep f32 master weights (the optimiser's copy) when the model computes in bf16/f16;
    /// false: AdamW updates the half-precision weights in place, saving 4 bytes per parameter
    /// at the cost of updates smaller than the weights' precision being rounded away.
    pub fp32_master_weights: bool,
    /// Seed of the shuffling.
    pub seed: u64,
    /// Samples of a stale policy (asynchronous rollouts), corrected by truncated importance
    /// sampling with this cap: the ratio and its clip are taken against the policy at the
    /// update's start, and each token's policy-gradient term carries the weight
    /// `min(π_start / π_sampler, cap)`. None: the sampler's log-probs are the old log-probs.
    pub is_cap: Option<f64>,
}

/// How an update treats the sampler's log-probs.
enum Staleness {
    /// They are the old log-probs (on-policy samples, or weights the caller set).
    OnPolicy,
    /// With one optimiser step per update, the policy at the update's start is the one each
    /// pass computes: the weights come from the pass itself, at no extra cost.
    InPass(f64),
    /// Otherwise one more pass scores the batch first: the batch with those old log-probs and
    /// weights.
    Scored(Experience),
}

/// What one update did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateStats {
    /// Means over the optimiser steps: the algorithm's metrics plus `actor/grad_norm` and
    /// `actor/lr`.
    pub metrics: BTreeMap<String, f64>,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Steps skipped because the gradient was not finite (logged as a warning each time).
    pub skipped: u64,
    /// Largest and mean |learner log-prob − sampler log-prob| over the response tokens of the
    /// first mini-batch, scored before any optimiser step (so by the policy that sampled them):
    /// the train/inference mismatch. Costs nothing: that pass is the update's own.
    pub logprob_diff: Option<(f64, f64)>,
    /// Importance ratios `exp(logprob − old_logprob)` of every response token of every pass
    /// (for a histogram).
    pub ratios: Vec<f64>,
}

/// What the passes of an update observe besides the loss.
#[derive(Debug, Default)]
struct Probe {
    /// Still before the update's first optimiser step.
    fresh: bool,
    max_diff: f64,
    sum_diff: f64,
    tokens: f64,
    ratios: Vec<f64>,
}

impl Probe {
    /// Records the current log-probs `[m, n]` against the sampler's `old` under `mask`.
    fn observe(&mut self, logprobs: &Tensor, old: &Tensor, mask: &Tensor) {
        let on = mask.to_kind(Kind::Bool);
        let delta = (logprobs - old).masked_select(&on).to_kind(Kind::Double);
        if delta.numel() == 0 {
            return;
        }
        if self.fresh {
            let abs = delta.abs();
            self.max_diff = self.max_diff.max(abs.max().double_value(&[]));
            self.sum_diff += abs.sum(Kind::Double).double_value(&[]);
            self.tokens += abs.numel() as f64;
        }
        let ratios = delta.exp().to_device(tch::Device::Cpu);
        self.ratios
            .extend(Vec::<f64>::try_from(ratios).unwrap_or_default());
    }
}

/// A critic being trained beside the policy.
struct Critic {
    model: ScalarModel,
    optimizer: AdamW,
    lr: f64,
}

/// A policy being trained: the model, its variables and their optimiser, and optionally a
/// critic with its own optimiser and learning rate.
pub struct Learner {
    model: Box<dyn CausalLm>,
    vs: VarStore,
    /// f32 master weights when the model computes in bf16/f16 and the settings keep them.
    master: Option<MasterWeights>,
    optimizer: AdamW,
    critic: Option<Critic>,
    settings: UpdateSettings,
    updates: u64,
    group: Option<ProcessGroup>,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("settings", &self.settings)
            .field("updates", &self.updates)
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// A learner over `model` and its variables `vs` (every trainable variable is optimised).
    /// A bf16/f16 model gets f32 master weights unless `settings.fp32_master_weights` is off.
    pub fn new(
        model: Box<dyn CausalLm>,
        vs: VarStore,
        adamw: AdamWConfig,
        settings: UpdateSettings,
    ) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        // Half-precision compute: the optimiser updates f32 masters, which refresh the model.
        let half =
            settings.fp32_master_weights && vars.iter().any(|(_, t)| t.kind() != Kind::Float);
        let mut master = half.then(|| MasterWeights::new(&vs));
        let optimizer = match &mut master {
            Some(master) => {
                let weights = master.weights_mut();
                let triples = vars
                    .into_iter()
                    .filter_map(|(name, var)| {
                        let m = weights.get(&name)?.shallow_clone();
                        Some((name, m, var))
                    })
                    .collect();
                AdamW::with_sources(triples, adamw)
            }
            None => AdamW::new(vars, adamw),
        };
        Self {
            model,
            vs,
            master,
            optimizer,
            critic: None,
            settings,
            updates: 0,
            group: None,
        }
    }

    /// Makes this learner one rank of `group` (data parallelism). Every rank must be given the
    /// same batches, targets and settings: each runs a contiguous share of every mini-batch's
    /// rows, and the gradients and the loss metrics are summed over the ranks before each
    /// optimiser step, whose normalisers count the whole mini-batch. So every rank takes the
    /// step one learner would take on the whole mini-batch, and all hold the same weights.
    pub fn with_group(mut self, group: ProcessGroup) -> Self {
        self.join(group);
        self
    }

    /// [`Learner::with_group`] in place.
    pub fn join(&mut self, group: ProcessGroup) {
        self.group = Some(group);
    }

    /// Makes this rank's learner equal rank 0's: the weights (policy and critic), the f32
    /// master weights and the optimiser state, so that a group starts from one state (a
    /// resumed run's included). Every rank calls it; rank 0's is unchanged. Without a group it
    /// does nothing.
    pub fn align(&mut self) -> Result<(), LearnerError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let failed = |e: crate::group::GroupError| LearnerError::Group(e.to_string());
        let sorted = |vs: &VarStore| {
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            vars.into_iter().map(|(_, t)| t)
        };
        let mut weights: Vec<Tensor> = sorted(&self.vs).collect();
        if let Some(critic) = &self.critic {
            weights.extend(sorted(&critic.model.vs));
        }
        group.broadcast(&weights, 0).map_err(failed)?;
        let device = self.device();
        let state: Vec<(String, Tensor)> = self
            .state()
            .into_iter()
            .map(|(name, t)| (name, t.to_device(device)))
            .collect();
        let tensors: Vec<Tensor> = state.iter().map(|(_, t)| t.shallow_clone()).collect();
        group.broadcast(&tensors, 0).map_err(failed)?;
        self.load_state(&state)
    }

    /// The learner group this learner is a rank of, if any.
    pub fn group(&self) -> Option<&ProcessGroup> {
        self.group.as_ref()
    }

    /// Trains `critic` too, with its own AdamW at peak learning rate `lr` (same schedule).
    pub fn with_critic(mut self, critic: ScalarModel, adamw: AdamWConfig, lr: f64) -> Self {
        let mut params: Vec<(String, Tensor)> = critic
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        self.critic = Some(Critic {
            model: critic,
            optimizer: AdamW::new(params, adamw),
            lr,
        });
        self
    }

    /// The critic's values `[b, t-1]` of a batch (the value of each position that predicts a
    /// token), without gradient: `Experience::values` for algorithms with a critic.
    pub fn critic_values(&self, batch: &Experience) -> Option<Tensor> {
        let critic = self.critic.as_ref()?;
        let t = batch.input_ids.size()[1];
        Some(tch::no_grad(|| {
            critic
                .model
                .values(&batch.input_ids, &batch.attention_mask)
                .narrow(1, 0, t - 1)
        }))
    }

    /// The policy.
    pub fn model(&self) -> &dyn CausalLm {
        self.model.as_ref()
    }

    /// The policy's variables (for exporting checkpoints).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// The critic being trained, if any.
    pub fn critic(&self) -> Option<&ScalarModel> {
        self.critic.as_ref().map(|c| &c.model)
    }

    /// The device the policy trains on.
    pub fn device(&self) -> tch::Device {
        self.vs.device()
    }

    /// The policy's log-probs `[b, t-1]` of `batch` at the settings' temperature, without
    /// gradient, `micro_batch_size` rows per pass; 0 outside the response mask, like
    /// `batch.old_logprobs`, which they should match before the first step (see
    /// [`reference_logprobs`]).
    pub fn logprobs(&self, batch: &Experience) -> Tensor {
        reference_logprobs(
            self.model.as_ref(),
            batch,
            self.settings.temperature,
            self.settings.micro_batch_size,
        )
    }

    /// The weights by HF name, for syncing to rollout workers and checkpoints.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Optimiser state plus the update counter, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.optimizer.state();
        if self.master.is_some() {
            let masters = self.optimizer.masters();
            state.extend(masters.map(|(n, t)| (format!("master.{n}"), t.shallow_clone())));
        }
        if let Some(critic) = &self.critic {
            let prefixed = critic.optimizer.state().into_iter();
            state.extend(prefixed.map(|(n, t)| (format!("critic.{n}"), t)));
        }
        state.push(("learner.updates".into(), Tensor::from(self.updates as i64)));
        state
    }

    /// Restores [`state`](Self::state).
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), LearnerError> {
        let updates = state
            .iter()
            .find(|(n, _)| n == "learner.updates")
            .ok_or_else(|| StateError("no learner.updates".into()))?;
        if let Some(critic) = &mut self.critic {
            let own: Vec<(String, Tensor)> = state
                .iter()
                .filter_map(|(n, t)| {
                    Some((n.strip_prefix("critic.")?.to_owned(), t.shallow_clone()))
                })
                .collect();
            critic.optimizer.load_state(&own)?;
        }
        self.optimizer.load_state(state)?;
        if let Some(master) = &mut self.master {
            tch::no_grad(|| -> Result<(), LearnerError> {
                for (name, weight) in master.weights_mut().iter_mut() {
                    let key = format!("master.{name}");
                    let saved = state.iter().find(|(n, _)| *n == key).ok_or_else(|| {
                        StateError(format!(
                            "no {key}: the checkpoint has no f32 master weights"
                        ))
                    })?;
                    weight.copy_(&saved.1);
                }
                Ok(())
            })?;
            master
                .sync_into(&self.vs)
                .map_err(|e| StateError(format!("cannot refresh the compute weights: {e}")))?;
        }
        self.updates = updates.1.int64_value(&[]) as u64;
        Ok(())
    }

    /// Runs `algorithm`'s loss over `batch` with `targets`: epochs × mini-batches × micro-batches.
    pub fn update(
        &mut self,
        algorithm: &dyn Algorithm,
        batch: &Experience,
        targets: &Targets,
    ) -> Result<UpdateStats, LearnerError> {
        check_shapes(batch, targets)?;
        let s = self.settings.clone();
        let mut rows: Vec<i64> = match &targets.keep {
            Some(keep) => (0..keep.size()[0])
                .filter(|&i| keep.int64_value(&[i]) != 0)
                .collect(),
            None => (0..batch.input_ids.size()[0]).collect(),
        };
        if rows.is_empty() {
            return Err(LearnerError::Batch(
                "no sequence left to train on (every group was filtered)".into(),
            ));
        }
        let mut stats = UpdateStats::default();
        let mut scored_weights = None;
        let one_step = s.epochs == 1 && rows.len() <= s.mini_batch_size.max(1);
        let staleness = match s.is_cap {
            Some(_) if batch.is_weights.is_some() => Staleness::OnPolicy,
            Some(cap) if one_step => Staleness::InPass(cap),
            Some(cap) => {
                let start = self.logprobs(batch);
                let w = truncated_is_weights(&start, &batch.old_logprobs, &batch.mask, cap)
                    .map_err(|e| LearnerError::Batch(format!("importance weights: {e}")))?;
                scored_weights = Some((w.mean, w.capped_frac));
                Staleness::Scored(reweighted(batch, start, w.weights))
            }
            None => Staleness::OnPolicy,
        };
        let (batch, in_pass) = match &staleness {
            Staleness::Scored(scored) => (scored, None),
            Staleness::InPass(cap) => (batch, Some(*cap)),
            Staleness::OnPolicy => (batch, None),
        };
        let mut rng =
            StdRng::seed_from_u64(s.seed ^ self.updates.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut probe = Probe {
            fresh: true,
            ..Probe::default()
        };
        // Sequences with all-zero advantages then add nothing to the gradient.
        let skip_inert = algorithm.zero_advantage_is_inert() && self.critic.is_none() && !s.entropy;
        for _ in 0..s.epochs {
            rows.shuffle(&mut rng);
            for mini in rows.chunks(s.mini_batch_size.max(1)) {
                let mini = &self.pass_order(batch, mini)?;
                let step = self.optimizer.steps() + stats.skipped;
                let lr = learning_rate(s.lr, s.schedule, s.warmup_steps, step, s.total_steps);
                let pass = self.minibatch(
                    algorithm,
                    batch,
                    targets,
                    (mini, skip_inert, in_pass),
                    &mut probe,
                );
                let metrics = match pass {
                    Ok(metrics) => metrics,
                    Err(e) => {
                        // Gradients of the micro-batches before the failure must not leak
                        // into a later update.
                        self.zero_grad();
                        return Err(e);
                    }
                };
                let mut updates = vec![grad::Update {
                    optimizer: &mut self.optimizer,
                    lr,
                }];
                let critic_lr = self.critic.as_mut().map(|c| {
                    let critic_lr =
                        learning_rate(c.lr, s.schedule, s.warmup_steps, step, s.total_steps);
                    updates.push(grad::Update {
                        optimizer: &mut c.optimizer,
                        lr: critic_lr,
                    });
                    critic_lr
                });
                let (norms, stepped) = grad::guarded_step(&mut updates, s.grad_clip);
                if stepped {
                    if let Some(master) = &self.master {
                        master.sync_into(&self.vs).map_err(|e| {
                            LearnerError::Batch(format!("cannot refresh the compute weights: {e}"))
                        })?;
                    }
                    if let (Some(critic_lr), Some(&critic_norm)) = (critic_lr, norms.get(1)) {
                        *sums.entry("critic/grad_norm".into()).or_default() += critic_norm;
                        *sums.entry("critic/lr".into()).or_default() += critic_lr;
                    }
                    stats.steps += 1;
                    for (k, v) in metrics {
                        *sums.entry(k).or_default() += v;
                    }
                    *sums.entry("actor/grad_norm".into()).or_default() += norms[0];
                    *sums.entry("actor/lr".into()).or_default() += lr;
                } else {
                    stats.skipped += 1;
                    tracing::warn!(
                        "gradient norms are {norms:?} (policy, then critic): optimizer step skipped, weights unchanged"
                    );
                }
                probe.fresh = false;
            }
        }
        self.updates += 1;
        if let Some((mean, capped)) = scored_weights {
            sums.insert(IS_WEIGHT_MEAN.into(), mean * stats.steps.max(1) as f64);
            sums.insert(IS_CAPPED_FRAC.into(), capped * stats.steps.max(1) as f64);
        }
        if probe.tokens > 0.0 {
            stats.logprob_diff = Some((probe.max_diff, probe.sum_diff / probe.tokens));
        }
        stats.ratios = probe.ratios;
        let n = stats.steps.max(1) as f64;
        stats.metrics = sums.into_iter().map(|(k, v)| (k, v / n)).collect();
        Ok(stats)
    }

    /// The order in which `rows` of one mini-batch go through micro-batches: as given, or with
    /// shared-prefix packing, each group's rows together (in order of first appearance), so a
    /// micro-batch holds whole groups. The gradient of a mini-batch is a sum over its rows, so
    /// the order changes only rounding.
    fn pass_order(&self, batch: &Experience, rows: &[i64]) -> Result<Vec<i64>, LearnerError> {
        if !self.settings.shared_prefix {
            return Ok(rows.to_vec());
        }
        let groups = Vec::<i64>::try_from(batch.groups.to_device(tch::Device::Cpu))
            .map_err(|e| LearnerError::Batch(format!("cannot read group ids: {e}")))?;
        Ok(group_rows(rows, &groups))
    }

    /// Clears the policy's and the critic's gradients.
    fn zero_grad(&mut self) {
        self.optimizer.zero_grad();
        if let Some(c) = &mut self.critic {
            c.optimizer.zero_grad();
        }
    }

    /// Forward and backward over the micro-batches of `rows` (without the rows whose advantages
    /// are all zero when `skip_inert`; with importance weights from the pass itself under the
    /// cap `in_pass`); returns the summed metrics.
    fn minibatch(
        &self,
        algorithm: &dyn Algorithm,
        batch: &Experience,
        targets: &Targets,
        (rows, skip_inert, in_pass): (&[i64], bool, Option<f64>),
        probe: &mut Probe,
    ) -> Result<BTreeMap<String, f64>, LearnerError> {
        let device = batch.input_ids.device();
        let index = Tensor::from_slice(rows).to_device(device);
        let tokens = batch
            .mask
            .index_select(0, &index)
            .sum(Kind::Float)
            .double_value(&[]);
        if tokens == 0.0 {
            return Err(LearnerError::Batch(
                "a mini-batch has no response tokens to train on".into(),
            ));
        }
        let live = live_rows(&targets.advantages, &index)?;
        let inert = live.iter().filter(|&&l| !l).count();
        let mut metrics = BTreeMap::from([(
            "actor/zero_advantage_frac".to_owned(),
            inert as f64 / rows.len() as f64,
        )]);
        let mut sums = BTreeMap::new();
        // The normalisers above still count the rows left out, so the loss is the same.
        let passed: Vec<i64> = match skip_inert {
            true => rows
                .iter()
                .zip(&live)
                .filter(|(_, l)| **l)
                .map(|(r, _)| *r)
                .collect(),
            false => rows.to_vec(),
        };
        if passed.is_empty() {
            return Ok(metrics);
        }
        // In a group, this rank's share; a rank left without rows runs the first row with
        // weight 0, so that every rank joins the sums below with the same gradients and keys.
        let (passed, weight) = match &self.group {
            None => (passed, 1.0),
            Some(group) => match shard(&passed, group.rank(), group.world()) {
                mine if mine.is_empty() => (passed[..1].to_vec(), 0.0),
                mine => (mine, 1.0),
            },
        };
        let index = Tensor::from_slice(&passed).to_device(device);
        let lengths = Vec::<i64>::try_from(
            batch
                .attention_mask
                .index_select(0, &index)
                .sum_dim_intlist(1, false, Kind::Int64)
                .to_device(tch::Device::Cpu),
        )
        .map_err(|e| LearnerError::Batch(format!("cannot read sequence lengths: {e}")))?;
        let budget = (
            self.settings.micro_batch_size,
            self.settings.micro_batch_tokens,
        );
        for micro in micro_batches(&passed, &lengths, budget.0, budget.1) {
            let index = Tensor::from_slice(&micro.rows).to_device(device);
            // Rows are right-padded: columns past the longest row of the micro-batch go.
            let t = micro.longest.max(2);
            let take = |x: &Tensor| {
                let x = x.index_select(0, &index);
                let width = if x.size()[1] == batch.input_ids.size()[1] {
                    t
                } else {
                    t - 1
                };
                x.narrow(1, 0, width)
            };
            let take_opt = |x: &Option<Tensor>| x.as_ref().map(take);
            let ids = take(&batch.input_ids);
            let attention = take(&batch.attention_mask);
            let (old, adv, mask) = (
                take(&batch.old_logprobs),
                take(&targets.advantages),
                take(&batch.mask),
            );
            let values = self
                .critic
                .as_ref()
                .map(|c| c.model.values(&ids, &attention).narrow(1, 0, t - 1));
            let (reference, old_values, returns, is_weights) = (
                take_opt(&batch.ref_logprobs),
                take_opt(&batch.values),
                take_opt(&targets.returns),
                take_opt(&batch.is_weights),
            );
            // The memory-lean pass: the loss sees the log-probs as leaves, and the output
            // projection's backward recomputes each chunk's logits instead of keeping them.
            let mut outcome = None;
            let mut weighing = None;
            let pass = TrainingPass {
                scored: Some(&mask),
                temperature: self.settings.temperature,
                with_entropy: self.settings.entropy,
                chunk_tokens: DEFAULT_CHUNK_TOKENS,
                shared_prefix: self.settings.shared_prefix,
            };
            let _ = backward_token_loss(self.model.as_ref(), &ids, &attention, &pass, |stats| {
                if weight > 0.0 {
                    probe.observe(&stats.logprobs, &old, &mask);
                }
                // The pass computes the policy at the update's start: the old log-probs of
                // stale samples, and their weights back to the sampler.
                let start = in_pass.map(|cap| {
                    let start = stats.logprobs.detach();
                    let w = truncated_is_weights(&start, &old, &mask, cap);
                    (start, w)
                });
                let (old, is_weights) = match start {
                    Some((start, Ok(w))) => {
                        let tokens = mask.sum(Kind::Float).double_value(&[]);
                        weighing = Some((w.mean * tokens, w.capped_frac * tokens, tokens));
                        (start, Some(w.weights))
                    }
                    Some((_, Err(e))) => {
                        weighing = Some((f64::NAN, 0.0, 0.0));
                        outcome = Some(Err(AlgorithmError {
                            algorithm: "importance weights".into(),
                            message: e.to_string(),
                        }));
                        return (&stats.logprobs * 0.0).sum(Kind::Float);
                    }
                    None => (
                        old.shallow_clone(),
                        is_weights.as_ref().map(Tensor::shallow_clone),
                    ),
                };
                let result = algorithm.loss(&LossInputs {
                    logprobs: &stats.logprobs,
                    entropy: stats.entropy.as_ref(),
                    values: values.as_ref(),
                    old_logprobs: &old,
                    is_weights: is_weights.as_ref(),
                    ref_logprobs: reference.as_ref(),
                    old_values: old_values.as_ref(),
                    advantages: &adv,
                    returns: returns.as_ref(),
                    mask: &mask,
                    minibatch_tokens: tokens,
                    minibatch_sequences: rows.len() as f64,
                });
                // A refused loss still needs a differentiable scalar: zero gradients.
                let scalar = match &result {
                    Ok(loss) => &loss.loss * weight,
                    Err(_) => (&stats.logprobs * 0.0).sum(Kind::Float),
                };
                outcome = Some(result);
                scalar
            });
            let loss = outcome
                .ok_or_else(|| LearnerError::Batch("the loss was not computed".into()))??;
            for (k, v) in loss.metrics {
                *sums.entry(k).or_default() += v * weight;
            }
            if let Some((weights, capped, tokens)) = weighing {
                *sums.entry(IS_WEIGHT_SUM.into()).or_default() += weights * weight;
                *sums.entry(IS_CAPPED_SUM.into()).or_default() += capped * weight;
                *sums.entry(IS_TOKENS.into()).or_default() += tokens * weight;
            }
        }
        if let Some(group) = &self.group {
            self.sum_over_ranks(group, &mut sums)?;
        }
        // Token sums of the pass-made importance weights, over every rank: their means.
        if let Some(tokens) = sums.remove(IS_TOKENS) {
            let per = tokens.max(1.0);
            let weights = sums.remove(IS_WEIGHT_SUM).unwrap_or_default();
            let capped = sums.remove(IS_CAPPED_SUM).unwrap_or_default();
            metrics.insert(IS_WEIGHT_MEAN.into(), weights / per);
            metrics.insert(IS_CAPPED_FRAC.into(), capped / per);
        }
        metrics.extend(sums);
        Ok(metrics)
    }

    /// Sums the gradients (policy and critic) and the loss metrics `sums` over the ranks.
    fn sum_over_ranks(
        &self,
        group: &ProcessGroup,
        sums: &mut BTreeMap<String, f64>,
    ) -> Result<(), LearnerError> {
        let failed = |e: crate::group::GroupError| LearnerError::Group(e.to_string());
        let critic = self.critic.iter().flat_map(|c| c.optimizer.params());
        let grads: Vec<Tensor> = self
            .optimizer
            .params()
            .chain(critic)
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        group.all_reduce_sum(&grads).map_err(failed)?;
        let values = Tensor::from_slice(&sums.values().copied().collect::<Vec<f64>>());
        group
            .all_reduce_sum(std::slice::from_ref(&values))
            .map_err(failed)?;
        let values = Vec::<f64>::try_from(&values)
            .map_err(|e| LearnerError::Group(format!("cannot read the summed metrics: {e}")))?;
        for (v, total) in sums.values_mut().zip(values) {
            *v = total;
        }
        Ok(())
    }
}

/// Metrics of the importance weights of stale samples: their mean, and how often the cap bit.
pub const IS_WEIGHT_MEAN: &str = "rollout/is_weight_mean";
/// See [`IS_WEIGHT_MEAN`].
pub const IS_CAPPED_FRAC: &str = "rollout/is_capped_frac";
/// Token sums behind the two, summed over micro-batches and ranks.
const IS_WEIGHT_SUM: &str = "rollout/is_weight_sum";
const IS_CAPPED_SUM: &str = "rollout/is_capped_sum";
const IS_TOKENS: &str = "rollout/is_tokens";

/// `batch` with the old log-probs `start` (the policy at the update's start) and the importance
/// weights `weights` of its samples back to the sampler.
fn reweighted(batch: &Experience, start: Tensor, weights: Tensor) -> Experience {
    let copy = |t: &Option<Tensor>| t.as_ref().map(Tensor::shallow_clone);
    Experience {
        input_ids: batch.input_ids.shallow_clone(),
        attention_mask: batch.attention_mask.shallow_clone(),
        mask: batch.mask.shallow_clone(),
        old_logprobs: start,
        ref_logprobs: copy(&batch.ref_logprobs),
        values: copy(&batch.values),
        rewards: batch.rewards.shallow_clone(),
        groups: batch.groups.shallow_clone(),
        is_weights: Some(weights),
    }
}

/// Rank `rank`'s share of `rows` among `world` ranks: a contiguous block (groups packed
/// together stay together), the first ranks taking one row more when they do not divide.
fn shard(rows: &[i64], rank: usize, world: usize) -> Vec<i64> {
    let per = rows.len().div_ceil(world.max(1));
    rows.iter().skip(rank * per).take(per).copied().collect()
}

/// One micro-batch: its rows and the longest of their lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Micro {
    rows: Vec<i64>,
    longest: i64,
}

/// Splits `rows` (with sequence `lengths`, in the same order) into consecutive micro-batches of
/// at most `max_rows` rows and, with a token budget, at most `max_tokens` padded tokens
/// (rows × longest); a single row over the budget still makes its own micro-batch.
fn micro_batches(
    rows: &[i64],
    lengths: &[i64],
    max_rows: usize,
    max_tokens: Option<usize>,
) -> Vec<Micro> {
    let mut out: Vec<Micro> = Vec::new();
    let mut current = Micro {
        rows: Vec::new(),
        longest: 0,
    };
    for (&row, &len) in rows.iter().zip(lengths) {
        let longest = current.longest.max(len);
        let fits_rows = current.rows.len() < max_rows.max(1);
        let fits_tokens =
            max_tokens.is_none_or(|m| (current.rows.len() as i64 + 1) * longest <= m as i64);
        if !(current.rows.is_empty() || fits_rows && fits_tokens) {
            out.push(std::mem::replace(
                &mut current,
                Micro {
                    rows: Vec::new(),
                    longest: 0,
                },
            ));
        }
        current.longest = current.longest.max(len);
        current.rows.push(row);
    }
    if !current.rows.is_empty() {
        out.push(current);
    }
    out
}

/// For each of the rows `index` selects, whether any of its advantages `[b, n]` is non-zero.
fn live_rows(advantages: &Tensor, index: &Tensor) -> Result<Vec<bool>, LearnerError> {
    let any = advantages.index_select(0, index).ne(0.0).any_dim(1, false);
    Vec::<bool>::try_from(any.to_device(tch::Device::Cpu))
        .map_err(|e| LearnerError::Batch(format!("cannot read the advantages: {e}")))
}

/// `rows` reordered so rows of one group (`groups[row]`) are adjacent, groups in order of first
/// appearance, rows of a group in their given order.
fn group_rows(rows: &[i64], groups: &[i64]) -> Vec<i64> {
    let mut first: Vec<i64> = Vec::new();
    for &row in rows {
        let g = groups[row as usize];
        if !first.contains(&g) {
            first.push(g);
        }
    }
    let rank = |row: &i64| first.iter().position(|&g| g == groups[*row as usize]);
    let mut out = rows.to_vec();
    out.sort_by_key(rank); // stable
    out
}

/// Every per-token tensor must be `[b, t-1]` and every per-sequence one `[b]`.
fn check_shapes(batch: &Experience, targets: &Targets) -> Result<(), LearnerError> {
    let size = batch.input_ids.size();
    let [b, t] = size[..] else {
        return Err(LearnerError::Batch(format!(
            "input_ids has shape {size:?}, expected [b, t]"
        )));
    };
    let per_token = [
        ("mask", Some(&batch.mask)),
        ("old_logprobs", Some(&batch.old_logprobs)),
        ("ref_logprobs", batch.ref_logprobs.as_ref()),
        ("values", batch.values.as_ref()),
        ("advantages", Some(&targets.advantages)),
        ("returns", targets.returns.as_ref()),
    ];
    for (name, tensor) in per_token {
        if let Some(tensor) = tensor
            && tensor.size() != [b, t - 1]
        {
            return Err(LearnerError::Batch(format!(
                "{name} has shape {:?}; with input_ids [{b}, {t}] it must be [{b}, {}]",
                tensor.size(),
                t - 1
            )));
        }
    }
    for (name, tensor) in [
        ("attention_mask", &batch.attention_mask),
        ("rewards", &batch.rewards),
        ("groups", &batch.groups),
    ] {
        let want: &[i64] = if name == "attention_mask" {
            &[b, t]
        } else {
            &[b]
        };
        if tensor.size() != want {
            return Err(LearnerError::Batch(format!(
                "{name} has shape {:?}, expected {want:?}",
                tensor.size()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_and_cover_every_row_once() {
        let rows = [7, 3, 9, 1, 4];
        let shards: Vec<Vec<i64>> = (0..2).map(|r| shard(&rows, r, 2)).collect();
        assert_eq!(shards, [vec![7, 3, 9], vec![1, 4]]);
        assert_eq!(shard(&rows[..1], 1, 2), Vec::<i64>::new());
        let three: Vec<i64> = (0..3).flat_map(|r| shard(&rows, r, 3)).collect();
        assert_eq!(three, rows);
    }

    #[test]
    fn group_rows_puts_each_group_together_in_order_of_first_appearance() {
        let groups = [0, 0, 1, 1, 2, 2];
        assert_eq!(group_rows(&[5, 0, 3, 1, 4, 2], &groups), [5, 4, 0, 1, 3, 2]);
        assert_eq!(group_rows(&[2, 3], &groups), [2, 3]);
    }

    #[test]
    fn micro_batches_respect_rows_and_the_token_budget() {
        let rows = [0, 1, 2, 3, 4];
        let lengths = [10, 30, 5, 5, 50];
        let sizes = |mb: Vec<Micro>| {
            mb.into_iter()
                .map(|m| (m.rows, m.longest))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sizes(micro_batches(&rows, &lengths, 2, None)),
            [(vec![0, 1], 30), (vec![2, 3], 5), (vec![4], 50)]
        );
        // Budget 60: [0, 1] = 2 × 30 fits; adding 2 would make 3 × 30 = 90; [2, 3] then 4
        // (3 × 50 = 150) does not fit; 4 alone (50) does.
        assert_eq!(
            sizes(micro_batches(&rows, &lengths, 8, Some(60))),
            [(vec![0, 1], 30), (vec![2, 3], 5), (vec![4], 50)]
        );
        // A row longer than the budget still trains, alone.
        assert_eq!(
            sizes(micro_batches(&[7], &[100], 8, Some(60))),
            [(vec![7], 100)]
        );
    }
}
