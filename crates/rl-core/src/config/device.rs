//! Where a role runs: `"auto"`, `"cpu"`, `"cuda"` or `"cuda:N"`, and the numeric precision it uses.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A device as written in the config. `Auto` means the first CUDA device if there is one, else CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// First CUDA device when available, otherwise the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A CUDA device by ordinal; `None` (written `"cuda"`) means device 0.
    Cuda(Option<usize>),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(None)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|n| Self::Cuda(Some(n)))
                .ok_or_else(|| {
                    format!(
                        "invalid device {s:?}: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\""
                    )
                }),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(None) => f.write_str("cuda"),
            Self::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

crate::choice! {
    /// Numeric precision of model weights and activations.
    pub enum DType {
        /// bf16 on CUDA, f32 on CPU.
        Auto = "auto",
        /// 32-bit float.
        F32 = "f32",
        /// bfloat16.
        Bf16 = "bf16",
        /// IEEE half precision.
        F16 = "f16",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for s in ["auto", "cpu", "cuda", "cuda:3"] {
            assert_eq!(
                s.parse::<DeviceSpec>().map(|d| d.to_string()),
                Ok(s.to_owned())
            );
        }
        assert_eq!("cuda:1".parse(), Ok(DeviceSpec::Cuda(Some(1))));
    }

    #[test]
    fn rejects_unknown_devices_with_the_allowed_forms() {
        for s in ["gpu", "cuda:", "cuda:x", "CPU"] {
            let err = s.parse::<DeviceSpec>().unwrap_err();
            assert!(err.contains("\"cuda:N\""), "{err}");
        }
    }
}
