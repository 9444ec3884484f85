//! Replacing role processes that died or hung, where whoever started them can (`rl train` in
//! `processes` mode, Ray's actor restarts in `ray` mode): a [`Supervisor`] restarts them, and
//! the trainer reconnects. A lost
//! rollout worker is replaced at the next weight sync, which hands the new one the current
//! weights; a reward server that still fails after the scorer's own retries (with backoff) is
//! restarted, and the batch scored again, by [`Restarting`].

use std::sync::{Arc, Mutex};

use rl_core::{RewardError, RewardFn, Score, Scoring, config::RewardConfig};
use rl_reward::remote::RemoteScorer;

/// Restarts role processes.
pub trait Supervisor: Send + Sync {
    /// Stops rollout worker `index` if it still runs (it hung), starts a new one, and returns
    /// its address (`http://host:port`).
    fn restart_worker(&self, index: usize) -> Result<String, String>;

    /// The same for the reward server.
    fn restart_reward(&self) -> Result<String, String>;
}

/// A remote scorer that, when a batch fails after its own retries and the server no longer
/// answers Health, has the reward server restarted and scores the batch once more there. A
/// batch the live server refuses is not a reason to restart it.
pub struct Restarting {
    inner: Mutex<RemoteScorer>,
    config: RewardConfig,
    supervisor: Arc<dyn Supervisor>,
}

impl Restarting {
    /// The scorer of `config` (`reward.kind = "remote"`), restarted through `supervisor`.
    pub fn new(
        config: &RewardConfig,
        supervisor: Arc<dyn Supervisor>,
    ) -> Result<Self, RewardError> {
        Ok(Self {
            inner: Mutex::new(rl_reward::remote::connect(config)?),
            config: config.clone(),
            supervisor,
        })
    }
}

impl RewardFn for Restarting {
    fn name(&self) -> &str {
        "remote"
    }

    fn score(&self, batch: &[Scoring<'_>]) -> Result<Vec<Score>, RewardError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let error = match inner.score(batch) {
            Ok(scores) => return Ok(scores),
            Err(e) if inner.health().is_ok() => return Err(e),
            Err(e) => e,
        };
        tracing::warn!("the reward server is gone ({error}); restarting it");
        let url = self.supervisor.restart_reward().map_err(|e| RewardError {
            reward: "remote".into(),
            message: format!("{error}; restarting the reward server failed: {e}"),
        })?;
        tracing::info!("the reward server was restarted at {url}");
        let mut config = self.config.clone();
        config.url = Some(url);
        *inner = rl_reward::remote::connect(&config)?;
        inner.score(batch)
    }
}
