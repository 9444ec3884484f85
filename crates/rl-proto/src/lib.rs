//! The wire formats of `rl`: the protobuf packages under `proto/` (the services between
//! processes, versioned `rl.v1`; TensorBoard's event records, `tensorboard`) and the prost messages and tonic client and server generated from them at build
//! time, plus what every service shares: the server skeleton ([`server`]), the client's dial
//! ([`client`]), the bearer token ([`auth`], [`secret`]) and addresses ([`addr`]).
//! Domain types and the conversions to and from these live with the crates that own them
//! (e.g. `rl_rollout::remote::convert`, `rl_reward::remote::convert`).

pub mod addr;
pub mod auth;
pub mod client;
pub mod secret;
pub mod server;

/// `rl.v1`: the rollout service (`proto/rl/v1/rollout.proto`) and the reward service
/// (`proto/rl/v1/reward.proto`).
pub mod v1 {
    // Generated code: documented from the proto's comments where it has them.
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("rl.v1");
}

/// `tensorboard`: the event-file records TensorBoard reads (`proto/tensorboard/event.proto`, a
/// subset of TensorFlow's protos with upstream's field numbers).
pub mod tensorboard {
    // Generated code: documented from the proto's comments where it has them.
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("tensorboard");
}
