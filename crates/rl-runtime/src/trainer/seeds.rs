//! Determinism by derivation: every random stream of a step (task draw, request seeds,
//! evaluation samples) is a pure function of `(run.seed, step, index)`, never carried state,
//! so a resumed run draws exactly what an uninterrupted one would.

use rl_core::rng::splitmix64 as splitmix;

/// A seed for stream `(a, b)` under `seed`, decorrelated from its neighbours.
pub fn derive(seed: u64, a: u64, b: u64) -> u64 {
    splitmix(seed ^ splitmix(a ^ splitmix(b)))
}

/// Named streams of one step, so that two uses never share a seed.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// The step's training tasks.
    Tasks = 1,
    /// The step's generation requests.
    Rollout = 2,
    /// Sampled (pass@k) evaluation answers.
    Eval = 3,
}

/// The seed of `stream` at `step` of a run seeded with `seed`.
pub fn step_seed(seed: u64, step: u64, stream: Stream) -> u64 {
    derive(seed, step, stream as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_steps_get_distinct_seeds() {
        let seeds = [
            step_seed(0, 1, Stream::Tasks),
            step_seed(0, 1, Stream::Rollout),
            step_seed(0, 2, Stream::Tasks),
            step_seed(1, 1, Stream::Tasks),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(derive(7, 3, 4), derive(7, 3, 4));
    }
}
