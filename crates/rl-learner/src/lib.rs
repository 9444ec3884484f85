//! The learner of `rl`: builds token-aligned experience from rollouts, and runs the PPO-family
//! update — epochs × mini-batches × micro-batches with gradient accumulation, AdamW with a
//! warm-up and decay schedule, global-norm clipping, and a non-finite guard that skips a step
//! instead of corrupting the weights. Its optimiser state is saved and restored exactly.

pub mod experience;
pub mod grad;
mod learner;
pub mod metrics;
pub mod optimizer;
pub mod schedule;

pub use learner::{Learner, LearnerError, UpdateSettings, UpdateStats};
pub use optimizer::{AdamW, AdamWConfig};
