//! Policy models of `rl` on libtorch (tch). This crate will hold the transformer architectures,
//! checkpoint loading and export; today it resolves devices and precisions and probes what the
//! local libtorch and accelerators can do (`rl doctor`).

pub mod cuda_driver;
pub mod device;
pub mod probe;

pub use device::{DeviceError, resolve_device, resolve_kind};
