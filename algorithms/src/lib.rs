//! The PPO-family algorithms of `rl` (PPO, GRPO, Dr. GRPO, DAPO, RLOO, REINFORCE++) over the
//! shared, pure advantage / policy-loss / KL / aggregation functions of [`core`].

pub mod actor_loss;
mod common;
pub use common::KlInReward;
pub mod config;
pub mod core;
pub mod dapo;
pub mod grpo;
pub mod ppo;
pub mod reinforce_pp;
pub mod rloo;
mod state;

#[cfg(test)]
mod fixtures;

pub use actor_loss::ActorObjective;
pub use config::from_config;
pub use dapo::Dapo;
pub use grpo::Grpo;
pub use ppo::Ppo;
pub use reinforce_pp::ReinforcePp;
pub use rloo::Rloo;
