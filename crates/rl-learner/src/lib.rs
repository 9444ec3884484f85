//! The learner of `rl`: builds token-aligned experience from rollouts, and runs the PPO-family
//! update — epochs × mini-batches × micro-batches with gradient accumulation, AdamW with a
//! warm-up and decay schedule, global-norm clipping, and a non-finite guard that skips a step
//! instead of corrupting the weights. Its optimiser state is saved and restored exactly. It scores
//! batches without gradient ([`reference_logprobs`], [`Learner::logprobs`]) at the sampling
//! temperature. It also trains reward models on preference pairs ([`reward_model`],
//! Bradley–Terry). Data-parallel ranks sum their gradients through libtorch's c10d ([`group`]).

pub mod experience;
mod fused_adamw;
pub mod grad;
pub mod group;
mod learner;
mod logprobs;
pub mod master;
pub mod metrics;
pub mod optimizer;
pub mod reward_model;
pub mod schedule;
pub mod share;

pub use learner::{Learner, LearnerError, UpdateSettings, UpdateStats};
pub use logprobs::reference_logprobs;
pub use optimizer::{AdamW, AdamWConfig};
pub use reward_model::{
    PairBatch, PairStats, RewardModelError, RewardModelSettings, RewardModelTrainer,
    bradley_terry_loss,
};
