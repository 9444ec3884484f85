//! Rollout workers over gRPC (`rl.v1.RolloutService`, `crates/rl-proto`): [`RolloutServer`]
//! serves any [`crate::RolloutWorker`] to other processes, and [`RemoteWorker`] is the
//! controller's handle to one, implementing the same trait as the in-process
//! [`crate::LocalWorker`].
//!
//! Generate streams completions back as they finish; UpdateWeights streams tensors in chunks
//! (so one bigger than the message cap still goes through), or BroadcastWeights announces
//! tensors that follow by collective broadcast ([`collective`]); Health reports the worker's
//! state.
//! A shared-secret token (`authorization: Bearer <token>`) guards every call when set.

mod client;
pub mod collective;
mod convert;
mod server;
mod weights;

pub use client::{ClientOptions, DEFAULT_CHUNK_BYTES, RemoteWorker};
pub use rl_proto::server::ServerError;
pub use server::{RolloutServer, ServerOptions};

/// The environment variable `rl rollout-worker` takes its shared secret from by default.
pub const TOKEN_ENV: &str = "RL_ROLLOUT_TOKEN";

/// Default cap on one message's size, both ways: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;
