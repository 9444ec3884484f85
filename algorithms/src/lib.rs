//! The [`Algorithm`] trait, through which the learner runs any RL algorithm, and `rl`'s PPO-family
//! algorithms (PPO, GRPO, Dr. GRPO, DAPO, RLOO, REINFORCE++) over the shared, pure advantage /
//! policy-loss / KL / aggregation functions of [`math`].

pub mod actor_loss;
mod algorithm;
mod common;
pub use common::KlInReward;
pub mod dapo;
pub mod grpo;
pub mod math;
pub mod ppo;
pub mod registry;
pub mod reinforce_pp;
pub mod rloo;
mod state;

#[cfg(test)]
mod fixtures;

pub use actor_loss::ActorObjective;
pub use algorithm::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
pub use dapo::Dapo;
pub use grpo::Grpo;
pub use ppo::Ppo;
pub use registry::from_config;
pub use reinforce_pp::ReinforcePp;
pub use rloo::Rloo;
