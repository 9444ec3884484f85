//! Rollout for `rl`: the generation engine (prefill and decode over a slot-based KV cache,
//! continuous batching, per-row sampling) and the rollout-worker actor that owns one policy
//! replica on its own thread, in this process or served to others over gRPC ([`remote`]).

pub mod engine;
mod error;
mod graphs;
mod params;
mod prefill;
pub mod remote;
mod request;
pub mod sampler;
pub mod stop;
pub mod worker;

pub use engine::{Engine, EngineConfig};
pub use error::RolloutError;
pub use params::SamplingParams;
pub use request::{Completion, Event, FinishReason, GenerateRequest, Prompt, RequestError};
pub use worker::{LocalWorker, RolloutWorker, WorkerInfo};
