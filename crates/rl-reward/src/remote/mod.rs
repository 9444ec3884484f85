//! Reward functions over gRPC (`rl.v1.RewardService`, `crates/rl-proto/proto/rl/v1/reward.proto`):
//! [`RewardServer`] serves any [`rl_core::RewardFn`] to other processes (`rl reward-server`), and
//! [`RemoteScorer`] is a trainer's handle to one, itself a `RewardFn` (`reward.kind = "remote"`,
//! built by [`connect`]).
//!
//! Score takes a batch of (task, response) items and answers one score or per-item error each;
//! Health reports the scorer, its load and the limits. A shared-secret token (`authorization:
//! Bearer <token>`) guards every call when set.

mod client;
mod convert;
mod deadline;
mod gate;
mod retry;
mod server;

use std::time::Duration;

use rl_core::{
    RewardError,
    config::{RewardConfig, RewardKind},
};

pub use client::{ClientOptions, RemoteScorer};
pub use rl_proto::server::ServerError;
pub use server::{RewardServer, ServerOptions};

/// Default cap on one message's size, both ways: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Default cap on the items of one request.
pub const DEFAULT_MAX_ITEMS: usize = 4096;
/// Default cap on the text of one item: 1 MiB.
pub const DEFAULT_MAX_ITEM_BYTES: usize = 1 << 20;
/// The environment variable holding the shared secret, for `rl reward-server` and for
/// [`connect`].
pub const TOKEN_ENV: &str = "RL_REWARD_TOKEN";

/// The `reward.kind = "remote"` scorer `[reward]` describes: the server at `reward.url`, each
/// attempt given `reward.timeout_s`, `reward.attempts` tries per request, and the token from
/// `$RL_REWARD_TOKEN` when set. Connects on first use.
pub fn connect(config: &RewardConfig) -> Result<RemoteScorer, RewardError> {
    let error = |message: String| RewardError {
        reward: "remote".to_owned(),
        message,
    };
    if config.kind != RewardKind::Remote {
        return Err(error(format!(
            "reward.kind = \"{}\" is not a remote reward; set reward.kind = \"remote\"",
            config.kind
        )));
    }
    let url = config.url.as_deref().ok_or_else(|| {
        error("reward.kind = \"remote\" needs reward.url = \"http://host:port\"".into())
    })?;
    let timeout = Duration::try_from_secs_f64(config.timeout_s)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            error(format!(
                "reward.timeout_s = {}: must be a number of seconds > 0",
                config.timeout_s
            ))
        })?;
    let token = rl_proto::secret::load(None, TOKEN_ENV, false).map_err(|e| error(e.to_string()))?;
    let options = ClientOptions {
        token,
        timeout,
        attempts: config.attempts,
        ..ClientOptions::default()
    };
    RemoteScorer::new(url, options)
}
