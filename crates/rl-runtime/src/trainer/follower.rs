//! A learner rank other than 0. `rl train` becomes one when the launcher's variables say so
//! (`RANK` > 0; torchrun, Slurm and Kubernetes operators set them, and so does `rl train` for
//! the ranks it starts itself): it builds the same learner and algorithm as rank 0, takes rank
//! 0's state, then runs its share of every update rank 0 sends, until rank 0 says the run is
//! over. It writes nothing: metrics, checkpoints and the policy are rank 0's.

use rl_core::Config;
use rl_learner::{
    group::ProcessGroup,
    share::{self, Shared},
};

use super::{
    TrainError,
    roles::{self, Devices, Trainee},
};

/// Follows rank 0 of `group` through the run `config` describes; the number of updates run.
pub fn follow(config: &Config, devices: Devices, group: ProcessGroup) -> Result<u64, TrainError> {
    let Trainee {
        mut learner,
        algorithm,
        ..
    } = roles::trainee(config, devices)?;
    let failed = |e: &dyn std::fmt::Display| TrainError::Group(e.to_string());
    learner.join(group);
    learner.align().map_err(|e| failed(&e))?;
    let device = learner.device();
    let mut updates = 0;
    loop {
        let Some(group) = learner.group() else {
            return Err(TrainError::Group("the learner left its group".into()));
        };
        match share::receive(group, device).map_err(|e| failed(&e))? {
            Shared::Stop => return Ok(updates),
            Shared::Update(batch, targets) => {
                learner
                    .update(algorithm.as_ref(), &batch, &targets)
                    .map_err(|e| TrainError::Update(e.to_string()))?;
                updates += 1;
            }
        }
    }
}
