//! The wire format of `rl` between processes: the protobuf packages under `proto/` (versioned:
//! `rl.v1`) and the prost messages and tonic client and server generated from them at build
//! time. Domain types and the conversions to and from these live with the crates that own
//! them (e.g. `rl_rollout::remote::convert`).

/// `rl.v1`: the rollout service (`proto/rl/v1/rollout.proto`).
pub mod v1 {
    // Generated code: documented from the proto's comments where it has them.
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("rl.v1");
}
