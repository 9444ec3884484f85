//! Reward-model training from preference pairs with the Bradley–Terry loss (Ouyang et al. 2022,
//! as TRL's `RewardTrainer` and OpenRLHF's `RewardModelTrainer`): the model should score the
//! preferred response above the rejected one, `P(chosen ≻ rejected) = σ(r_c − r_r)`.
//! One step is one AdamW step over a batch of pairs, accumulated over micro-batches, with the
//! learner's schedule, global-norm clipping and non-finite guard.

use rl_core::config::LrSchedule;
use rl_model::heads::ScalarModel;
use tch::{Kind, Tensor};

use crate::{
    grad,
    optimizer::{AdamW, AdamWConfig},
    schedule::learning_rate,
};

/// Bradley–Terry loss, mean over pairs of `−log σ(r_c − r_r) = softplus(r_r − r_c)`.
/// `chosen`, `rejected`: `[b]` f32 rewards; returns a scalar.
pub fn bradley_terry_loss(chosen: &Tensor, rejected: &Tensor) -> Tensor {
    (rejected - chosen).softplus().mean(Kind::Float)
}

/// A micro-batch of pairs, encoded for the model: `input_ids`, `attention_mask` `[2b, t]` i64,
/// the `b` chosen rows first, then the `b` rejected rows in the same order.
#[derive(Debug)]
pub struct PairBatch {
    /// Token ids.
    pub input_ids: Tensor,
    /// 1 = token, 0 = pad.
    pub attention_mask: Tensor,
}

impl PairBatch {
    /// Pairs in the batch.
    pub fn pairs(&self) -> i64 {
        self.input_ids.size()[0] / 2
    }
}

/// How the reward model trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardModelSettings {
    /// Peak learning rate.
    pub lr: f64,
    /// Schedule after warm-up.
    pub schedule: LrSchedule,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Steps of the whole run (for the decay).
    pub total_steps: u64,
    /// Global gradient-norm clip; 0 = off.
    pub grad_clip: f64,
    /// AdamW's other hyper-parameters.
    pub adam: AdamWConfig,
}

/// What a step or an evaluation measured, averaged over its pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairStats {
    /// Bradley–Terry loss.
    pub loss: f64,
    /// Share of pairs scored the right way round (`r_c > r_r`).
    pub accuracy: f64,
    /// Mean `r_c − r_r`.
    pub margin: f64,
    /// Mean reward of the chosen responses.
    pub chosen: f64,
    /// Mean reward of the rejected responses.
    pub rejected: f64,
    /// Pairs seen.
    pub pairs: i64,
    /// Gradient norm before clipping (training steps only).
    pub grad_norm: f64,
    /// Learning rate of the step (training steps only).
    pub lr: f64,
    /// Whether the step was skipped because the gradient was not finite.
    pub skipped: bool,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum RewardModelError {
    /// The batch is malformed.
    #[error("reward-model batch: {0}")]
    Batch(String),
    /// libtorch refused an operation.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Trains a [`ScalarModel`] (f32) on preference pairs.
pub struct RewardModelTrainer {
    model: ScalarModel,
    optimizer: AdamW,
    settings: RewardModelSettings,
    skipped: u64,
}

/// Sums of a pass over micro-batches, turned into [`PairStats`].
#[derive(Default)]
struct Sums {
    loss: f64,
    right: f64,
    margin: f64,
    chosen: f64,
    rejected: f64,
    pairs: i64,
}

impl Sums {
    /// Scores `batch` (`[2b]` rewards split into chosen and rejected) and adds its statistics;
    /// returns the mean loss of the micro-batch as a tensor (with its graph when grad is on).
    fn add(&mut self, model: &ScalarModel, batch: &PairBatch) -> Result<Tensor, RewardModelError> {
        let device = model.vs.device();
        let (ids, mask) = (&batch.input_ids, &batch.attention_mask);
        if ids.size().len() != 2 || ids.size() != mask.size() || ids.size()[0] % 2 != 0 {
            return Err(RewardModelError::Batch(format!(
                "input_ids {:?} and attention_mask {:?} must be the same [2b, t] (b chosen rows, then b rejected)",
                ids.size(),
                mask.size()
            )));
        }
        let b = batch.pairs();
        if b == 0 {
            return Err(RewardModelError::Batch("no pairs".into()));
        }
        let rewards = model.rewards(&ids.to_device(device), &mask.to_device(device)); // [2b]
        let (chosen, rejected) = (rewards.narrow(0, 0, b), rewards.narrow(0, b, b));
        let loss = bradley_terry_loss(&chosen, &rejected);
        let diff = (&chosen - &rejected).detach();
        let n = b as f64;
        self.loss += loss.double_value(&[]) * n;
        self.right += diff.gt(0.0).sum(Kind::Float).double_value(&[]);
        self.margin += diff.sum(Kind::Float).double_value(&[]);
        self.chosen += chosen.detach().sum(Kind::Float).double_value(&[]);
        self.rejected += rejected.detach().sum(Kind::Float).double_value(&[]);
        self.pairs += b;
        Ok(loss)
    }

    fn stats(&self) -> PairStats {
        let n = self.pairs.max(1) as f64;
        PairStats {
            loss: self.loss / n,
            accuracy: self.right / n,
            margin: self.margin / n,
            chosen: self.chosen / n,
            rejected: self.rejected / n,
            pairs: self.pairs,
            ..PairStats::default()
        }
    }
}

impl RewardModelTrainer {
    /// A trainer of `model` (its trainable variables, f32) with fresh AdamW moments.
    pub fn new(model: ScalarModel, settings: RewardModelSettings) -> Self {
        let params = model
            .vs
            .trainable_variables()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("p{i}"), p))
            .collect();
        let optimizer = AdamW::new(params, settings.adam);
        Self {
            model,
            optimizer,
            settings,
            skipped: 0,
        }
    }

    /// The model being trained.
    pub fn model(&self) -> &ScalarModel {
        &self.model
    }

    /// Optimiser steps taken plus those skipped.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps() + self.skipped
    }

    /// One optimiser step over `micro_batches` (gradients accumulated, each micro-batch
    /// weighted by its share of the pairs). A non-finite gradient skips the step and leaves the
    /// weights as they were ([`PairStats::skipped`]).
    pub fn step(&mut self, micro_batches: &[PairBatch]) -> Result<PairStats, RewardModelError> {
        let total: i64 = micro_batches.iter().map(PairBatch::pairs).sum();
        if total == 0 {
            return Err(RewardModelError::Batch(
                "a step needs at least one pair".into(),
            ));
        }
        let s = self.settings;
        let lr = learning_rate(
            s.lr,
            s.schedule,
            s.warmup_steps,
            self.steps(),
            s.total_steps,
        );
        let mut sums = Sums::default();
        for batch in micro_batches {
            let loss = match sums.add(&self.model, batch) {
                Ok(loss) => loss,
                Err(e) => {
                    self.optimizer.zero_grad();
                    return Err(e);
                }
            };
            (loss * (batch.pairs() as f64 / total as f64)).backward();
        }
        let update = grad::Update {
            optimizer: &mut self.optimizer,
            lr,
        };
        let (norms, stepped) = grad::guarded_step(&mut [update], s.grad_clip);
        let (norm, skipped) = (norms[0], !stepped);
        if skipped {
            self.skipped += 1;
            tracing::warn!("gradient norm is {norm}: reward-model step skipped, weights unchanged");
        }
        Ok(PairStats {
            grad_norm: norm,
            lr,
            skipped,
            ..sums.stats()
        })
    }

    /// Loss and accuracy on `batches`, without gradients.
    pub fn evaluate(&self, batches: &[PairBatch]) -> Result<PairStats, RewardModelError> {
        let _guard = tch::no_grad_guard();
        let mut sums = Sums::default();
        for batch in batches {
            let _loss = sums.add(&self.model, batch)?;
        }
        Ok(sums.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bradley_terry_is_softplus_of_the_reversed_margin() {
        let chosen = Tensor::from_slice(&[2.0f32, 0.0, -1.0]);
        let rejected = Tensor::from_slice(&[0.0f32, 0.0, 1.0]);
        let loss = bradley_terry_loss(&chosen, &rejected).double_value(&[]);
        // −log σ(2) = 0.126928, −log σ(0) = ln 2, −log σ(−2) = 2.126928
        let want = (0.126_928 + std::f64::consts::LN_2 + 2.126_928) / 3.0;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    }

    #[test]
    fn bradley_terry_gradient_raises_chosen_and_lowers_rejected() {
        let chosen = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
        let rejected = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
        bradley_terry_loss(&chosen, &rejected).backward();
        // d/dr_c softplus(r_r − r_c) = −σ(r_r − r_c) = −0.5 at a zero margin.
        assert!((chosen.grad().double_value(&[0]) + 0.5).abs() < 1e-6);
        assert!((rejected.grad().double_value(&[0]) - 0.5).abs() < 1e-6);
    }
}
