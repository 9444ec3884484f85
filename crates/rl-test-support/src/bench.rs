//! Command-line options every bench binary shares, flattened into each bench's own clap
//! `Parser`. `cargo bench` passes `--bench`; without it (as under `cargo test --all-targets`) a
//! bench runs a small smoke configuration of the same code path, so benches cannot rot.

use clap::Args;
use rl_core::config::{DType, DeviceSpec};

/// Whether this is a measurement or a smoke run.
#[derive(Debug, Clone, Args)]
pub struct Mode {
    /// Run the full measurement (`cargo bench` passes this); without it, a quick smoke run.
    #[arg(long)]
    pub bench: bool,
}

impl Mode {
    /// A smoke run: `--bench` absent.
    pub fn smoke(&self) -> bool {
        !self.bench
    }

    /// `full` for a measurement, `smoke` otherwise.
    pub fn pick<T>(&self, smoke: T, full: T) -> T {
        if self.bench { full } else { smoke }
    }
}

/// A libtorch bench's mode, and where and in what precision it runs (named as in the config).
#[derive(Debug, Clone, Args)]
pub struct TorchMode {
    /// Measurement or smoke run.
    #[command(flatten)]
    pub mode: Mode,
    /// Device: auto (the first GPU, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Precision: auto (bf16 on CUDA, f32 on the CPU), f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    pub dtype: DType,
}
