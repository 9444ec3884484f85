//! Compiles `proto/rl/v1/*.proto` and `proto/tensorboard/event.proto` into Rust with protox (a
//! protobuf compiler in Rust, so no system `protoc` is needed) and tonic-prost-build (messages,
//! clients and servers).

use std::error::Error;

/// The proto files, relative to `proto/`.
const PROTOS: &[&str] = &[
    "rl/v1/rollout.proto",
    "rl/v1/reward.proto",
    "tensorboard/event.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)?;
    Ok(())
}
