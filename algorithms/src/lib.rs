//! The PPO-family algorithms of `rl` (PPO, GRPO, Dr. GRPO, DAPO, RLOO, REINFORCE++) over the
//! shared, pure advantage / policy-loss / KL / aggregation functions of [`core`].

pub mod actor_loss;
pub mod core;
pub mod grpo;

pub use actor_loss::ActorObjective;
pub use grpo::Grpo;
