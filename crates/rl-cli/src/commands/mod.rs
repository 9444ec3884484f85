//! One file per subcommand; each is a thin layer over the library crates.

pub mod convert;
pub mod doctor;
pub mod eval;
pub mod generate;
pub mod logprobs;
pub mod reward_server;
pub mod rollout_worker;
pub mod serve;
pub mod train;
pub mod train_reward_model;

use rl_core::config::{DType, DeviceSpec};
use tch::{Device, Kind};

use crate::cli::PlacementArgs;

/// Arguments that do not make sense together or for the input given (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The device and precision `--device` and `--dtype` name, checked against this machine.
pub fn placement(args: &PlacementArgs) -> anyhow::Result<(Device, Kind)> {
    let spec: DeviceSpec = args
        .device
        .parse()
        .map_err(|e: String| UsageError(format!("--device: {e}")))?;
    let device = rl_model::resolve_device(spec, "--device")?;
    let dtype = match args.dtype.as_str() {
        "f32" => DType::F32,
        "bf16" => DType::Bf16,
        "f16" => DType::F16,
        _ => DType::Auto,
    };
    Ok((device, rl_model::resolve_kind(dtype, device)))
}
