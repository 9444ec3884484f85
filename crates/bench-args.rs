//! Command-line handling shared by the crates' bench binaries (included with `#[path]`): every
//! bench takes `--name value` options, `--device auto|cpu|cuda`, `--dtype`, and runs a small
//! smoke configuration unless cargo passed `--bench`.

use tch::{Device, Kind};

/// The bench's arguments.
pub struct BenchArgs {
    args: Vec<String>,
}

impl BenchArgs {
    /// The process's arguments.
    pub fn from_env() -> Self {
        Self {
            args: std::env::args().collect(),
        }
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    /// `--bench` absent: `cargo test --all-targets` runs the binary as a quick smoke test.
    pub fn smoke(&self) -> bool {
        !self.flag("--bench")
    }

    /// The value after `name`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.args
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.args.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("bad value for {name}: {v}"))
            })
            .unwrap_or(default)
    }

    /// `--device` (default: the first GPU, else the CPU).
    pub fn device(&self) -> Device {
        match self.get("--device", String::from("auto")).as_str() {
            "cpu" => Device::Cpu,
            "cuda" => Device::Cuda(0),
            _ => Device::cuda_if_available(),
        }
    }

    /// `--dtype` f32 or bf16 (default: bf16 on CUDA, f32 on the CPU).
    pub fn kind(&self, device: Device) -> Kind {
        let default = if device.is_cuda() { "bf16" } else { "f32" };
        match self.get("--dtype", String::from(default)).as_str() {
            "bf16" => Kind::BFloat16,
            _ => Kind::Float,
        }
    }
}
