//! Resolving the config's device and precision names to tch's `Device` and `Kind`, and naming
//! them back as configs write them.

use rl_core::config::{DType, DeviceSpec};
use tch::{Cuda, Device, Kind};

/// A device the config names that this machine does not have.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// CUDA asked for, none usable.
    #[error(
        "{key} = \"{spec}\" asks for CUDA, but libtorch sees no CUDA device here{hint}. Use \"cpu\" or \"auto\", or run `rl doctor` to see what is available"
    )]
    NoCuda {
        /// Config key.
        key: String,
        /// The value.
        spec: DeviceSpec,
        /// Why, when known.
        hint: &'static str,
    },
    /// Ordinal past the last device.
    #[error("{key} = \"{spec}\": this machine has {count} CUDA device(s), numbered from 0")]
    NoSuchDevice {
        /// Config key.
        key: String,
        /// The value.
        spec: DeviceSpec,
        /// Devices present.
        count: usize,
    },
}

/// The tch device for `spec`; `key` names the config key in errors.
pub fn resolve_device(spec: DeviceSpec, key: &str) -> Result<Device, DeviceError> {
    let count = usize::try_from(Cuda::device_count()).unwrap_or(0);
    match spec {
        DeviceSpec::Auto => Ok(if count > 0 {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            if count == 0 {
                let hint = if tch::utils::has_cuda() {
                    ""
                } else {
                    " (this libtorch was built without CUDA)"
                };
                return Err(DeviceError::NoCuda {
                    key: key.into(),
                    spec,
                    hint,
                });
            }
            let n = n.unwrap_or(0);
            if n >= count {
                return Err(DeviceError::NoSuchDevice {
                    key: key.into(),
                    spec,
                    count,
                });
            }
            Ok(Device::Cuda(n))
        }
    }
}

/// The tch kind for `dtype` on `device`: `auto` is bf16 on CUDA and f32 on CPU.
pub fn resolve_kind(dtype: DType, device: Device) -> Kind {
    match dtype {
        DType::Auto if device.is_cuda() => Kind::BFloat16,
        DType::Auto | DType::F32 => Kind::Float,
        DType::Bf16 => Kind::BFloat16,
        DType::F16 => Kind::Half,
    }
}

/// `f32`, `bf16` or `f16`, as the config writes it (f32 for any other kind).
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bf16",
        Kind::Half => "f16",
        _ => "f32",
    }
}

/// `cpu` or `cuda:N`, as the config writes it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}
