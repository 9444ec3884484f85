//! One file per subcommand; each is a thin layer over the library crates.

pub mod convert;
pub mod doctor;
pub mod generate;
pub mod logprobs;
pub mod planned;
pub mod train;

/// Arguments that do not make sense together or for the input given (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The device and precision of `--device` (auto, cpu, cuda, cuda:N) and `--dtype` (auto, f32,
/// bf16, f16; auto = bf16 on CUDA, f32 on CPU).
pub fn device_and_kind(device: &str, dtype: &str) -> anyhow::Result<(tch::Device, tch::Kind)> {
    use rl_core::config::{DType, DeviceSpec};
    let spec: DeviceSpec = device
        .parse()
        .map_err(|e: String| UsageError(format!("--device: {e}")))?;
    let device = rl_model::resolve_device(spec, "--device")?;
    let dtype = match dtype {
        "f32" => DType::F32,
        "bf16" => DType::Bf16,
        "f16" => DType::F16,
        _ => DType::Auto,
    };
    Ok((device, rl_model::resolve_kind(dtype, device)))
}
