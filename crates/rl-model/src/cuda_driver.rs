//! Names, memory and compute capability of the CUDA devices, read through the driver API
//! (`libcuda.so.1`, loaded at run time so CPU-only machines need no CUDA at all). tch exposes
//! only the device count.

#![allow(unsafe_code)] // FFI into the CUDA driver; every call is checked for CUDA_SUCCESS.

use std::ffi::{c_char, c_int};

use libloading::{Library, Symbol};
use serde::Serialize;

/// One CUDA device as the driver describes it.
#[derive(Debug, Clone, Serialize)]
pub struct GpuInfo {
    /// Ordinal (`cuda:N`).
    pub index: usize,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Total memory in bytes.
    pub total_memory: u64,
    /// Compute capability, e.g. `(9, 0)` for Hopper.
    pub compute_capability: (i32, i32),
}

/// Bytes of device memory in use on the current CUDA context's device (`total - free`, as the
/// driver sees it: every process's allocations, the caching allocator's reserve included). `None`
/// without a driver or context.
pub fn memory_in_use() -> Option<u64> {
    // SAFETY: as in `gpus`; cuMemGetInfo_v2 writes two size_t values.
    unsafe {
        let lib = Library::new("libcuda.so.1").ok()?;
        let info: Symbol<'_, unsafe extern "C" fn(*mut usize, *mut usize) -> c_int> =
            lib.get(b"cuMemGetInfo_v2\0").ok()?;
        let (mut free, mut total) = (0usize, 0usize);
        (info(&mut free, &mut total) == 0).then(|| (total - free) as u64)
    }
}

const ATTR_CC_MAJOR: c_int = 75;
const ATTR_CC_MINOR: c_int = 76;

/// Every device the driver reports, or why none could be read (no driver, driver error).
pub fn gpus() -> Result<Vec<GpuInfo>, String> {
    // SAFETY: loading the system CUDA driver runs no initialisers beyond its own.
    let lib = unsafe { Library::new("libcuda.so.1") }
        .map_err(|_| "no CUDA driver (libcuda.so.1) found".to_string())?;
    type Init = unsafe extern "C" fn(u32) -> c_int;
    type Count = unsafe extern "C" fn(*mut c_int) -> c_int;
    type Get = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type Name = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type Mem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
    type Attr = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
    // SAFETY: the symbol types match the CUDA driver API's C signatures (cuda.h).
    unsafe {
        let sym = |name: &[u8]| -> Result<Symbol<'_, *const ()>, String> {
            lib.get(name)
                .map_err(|e| format!("CUDA driver lacks {}: {e}", String::from_utf8_lossy(name)))
        };
        let init: Init = std::mem::transmute(*sym(b"cuInit\0")?);
        let count: Count = std::mem::transmute(*sym(b"cuDeviceGetCount\0")?);
        let get: Get = std::mem::transmute(*sym(b"cuDeviceGet\0")?);
        let name: Name = std::mem::transmute(*sym(b"cuDeviceGetName\0")?);
        let mem: Mem = std::mem::transmute(*sym(b"cuDeviceTotalMem_v2\0")?);
        let attr: Attr = std::mem::transmute(*sym(b"cuDeviceGetAttribute\0")?);
        let check = |rc: c_int, what: &str| {
            if rc == 0 {
                Ok(())
            } else {
                Err(format!("{what} failed with CUDA error {rc}"))
            }
        };
        check(init(0), "cuInit")?;
        let mut n = 0;
        check(count(&mut n), "cuDeviceGetCount")?;
        (0..n)
            .map(|i| {
                let mut dev = 0;
                check(get(&mut dev, i), "cuDeviceGet")?;
                let mut buf = [0 as c_char; 256];
                check(
                    name(buf.as_mut_ptr(), buf.len() as c_int, dev),
                    "cuDeviceGetName",
                )?;
                let name = std::ffi::CStr::from_ptr(buf.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                let mut bytes = 0usize;
                check(mem(&mut bytes, dev), "cuDeviceTotalMem")?;
                let (mut major, mut minor) = (0, 0);
                check(attr(&mut major, ATTR_CC_MAJOR, dev), "cuDeviceGetAttribute")?;
                check(attr(&mut minor, ATTR_CC_MINOR, dev), "cuDeviceGetAttribute")?;
                Ok(GpuInfo {
                    index: i as usize,
                    name,
                    total_memory: bytes as u64,
                    compute_capability: (major, minor),
                })
            })
            .collect()
    }
}
