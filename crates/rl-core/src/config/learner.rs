//! `[learner]`: optimiser, schedule and batching of the policy (and critic) updates.

use serde::{Deserialize, Serialize};

use super::validate::Validator;

crate::choice! {
    /// Learning-rate schedule after warm-up.
    pub enum LrSchedule {
        /// Keep the peak rate.
        Constant = "constant",
        /// Decay linearly to 0 at the last step.
        Linear = "linear",
        /// Cosine decay to 0 at the last step.
        Cosine = "cosine",
    }
}

/// `[learner]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerConfig {
    /// Peak learning rate of the policy (AdamW).
    pub lr: f64,
    /// Peak learning rate of the critic (PPO only).
    pub critic_lr: f64,
    /// Schedule after warm-up.
    pub lr_schedule: LrSchedule,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW β1 and β2.
    pub adam_betas: [f64; 2],
    /// AdamW ε.
    pub adam_eps: f64,
    /// Gradients are clipped to this global L2 norm; 0 = off.
    pub grad_clip: f64,
    /// Samples per optimiser step; must divide the samples of a training step.
    pub mini_batch_size: u32,
    /// Samples per forward/backward pass (gradient accumulation); must divide `mini_batch_size`.
    pub micro_batch_size: u32,
    /// Padded tokens (rows × longest row) per forward/backward, at most; 0 = no budget.
    pub micro_batch_tokens: u32,
    /// Keep f32 master weights and optimiser state when the model computes in bf16/f16.
    pub fp32_master_weights: bool,
    /// Encode the prompt a group of samples shares once per forward/backward instead of once
    /// per sample (shared-prefix packing); the loss and gradients are the same.
    pub shared_prefix: bool,
    /// Recompute activations in the backward pass to save memory; refused until the model
    /// can recompute them.
    pub gradient_checkpointing: bool,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            critic_lr: 1e-5,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            weight_decay: 0.0,
            adam_betas: [0.9, 0.999],
            adam_eps: 1e-8,
            grad_clip: 1.0,
            mini_batch_size: 16,
            micro_batch_size: 4,
            micro_batch_tokens: 0,
            fp32_master_weights: true,
            shared_prefix: true,
            gradient_checkpointing: false,
        }
    }
}

impl LearnerConfig {
    pub(crate) fn validate(&self, v: &mut Validator, samples_per_step: u64) {
        v.open_range("learner.lr", self.lr, 0.0, 1.0);
        v.open_range("learner.critic_lr", self.critic_lr, 0.0, 1.0);
        v.require(
            (0.0..1.0).contains(&self.weight_decay),
            "learner.weight_decay",
            self.weight_decay,
            "must be in [0, 1)",
        );
        let ok = self.adam_betas.iter().all(|b| (0.0..1.0).contains(b));
        v.require(
            ok,
            "learner.adam_betas",
            format!("{:?}", self.adam_betas),
            "both must be in [0, 1)",
        );
        v.positive("learner.adam_eps", self.adam_eps);
        v.non_negative("learner.grad_clip", self.grad_clip);
        v.not_yet(
            !self.gradient_checkpointing,
            "learner.gradient_checkpointing",
            self.gradient_checkpointing,
            "recomputing activations needs a checkpoint API that tch does not offer; set learner.gradient_checkpointing = false (lower learner.micro_batch_size or set learner.micro_batch_tokens to save memory)",
        );
        v.at_least_one("learner.mini_batch_size", self.mini_batch_size.into());
        v.at_least_one("learner.micro_batch_size", self.micro_batch_size.into());
        let mini = u64::from(self.mini_batch_size);
        if mini > 0 {
            let rule = format!(
                "must divide the {samples_per_step} samples of a step (rollout.prompts_per_step * rollout.samples_per_prompt)"
            );
            let ok = samples_per_step.is_multiple_of(mini);
            v.require(ok, "learner.mini_batch_size", mini, rule);
        }
        let micro = self.micro_batch_size;
        if micro > 0 {
            let rule = format!(
                "must divide learner.mini_batch_size = {}",
                self.mini_batch_size
            );
            let ok = self.mini_batch_size.is_multiple_of(micro);
            v.require(ok, "learner.micro_batch_size", micro, rule);
        }
    }
}
