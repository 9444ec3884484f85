//! CUDA graphs: record the kernels a closure launches through tch once, then replay them with a
//! single launch. Decoding one token of a small model is hundreds of tiny kernels whose launch
//! cost dominates on a fast GPU; replaying them as a graph removes it. A thin C++ shim over
//! libtorch's `at::cuda::CUDAGraph` (`csrc/cuda_graph.cpp`) does the work.
//!
//! Rules of capture (CUDA's, not ours): inside the closure only device work is allowed — no
//! host↔device copies, no reading values back, no new shapes on replay. Inputs live in tensors
//! allocated before capture and are overwritten in place before each [`CudaGraph::replay`];
//! outputs are tensors the closure returned, overwritten by each replay.

#![allow(unsafe_code)] // the FFI boundary to the shim; every call is checked

use std::{
    ffi::{CStr, c_char, c_int, c_void},
    ptr::NonNull,
};

/// Why a graph could not be captured or replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CUDA graph {action} failed: {message}")]
pub struct GraphError {
    /// What was being done.
    pub action: &'static str,
    /// What libtorch or CUDA said.
    pub message: String,
}

#[cfg(rl_cuda_graph)]
unsafe extern "C" {
    fn rl_cuda_graph_last_error() -> *const c_char;
    fn rl_cuda_graph_pool(first: *mut u64, second: *mut u64) -> c_int;
    fn rl_cuda_graph_new() -> *mut c_void;
    fn rl_cuda_graph_begin(handle: *mut c_void, device: c_int, first: u64, second: u64) -> c_int;
    fn rl_cuda_graph_end(handle: *mut c_void) -> c_int;
    fn rl_cuda_graph_replay(handle: *mut c_void) -> c_int;
    fn rl_cuda_graph_free(handle: *mut c_void);
}

/// A memory pool graphs can share: their intermediate tensors come from it, so many graphs (one
/// per batch shape) cost the memory of the largest, not the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphPool(u64, u64);

impl GraphPool {
    /// A fresh pool.
    pub fn new() -> Result<Self, GraphError> {
        #[cfg(rl_cuda_graph)]
        {
            let (mut first, mut second) = (0u64, 0u64);
            // SAFETY: both pointers are valid for writes for the duration of the call.
            check("pool", unsafe {
                rl_cuda_graph_pool(&mut first, &mut second)
            })?;
            Ok(Self(first, second))
        }
        #[cfg(not(rl_cuda_graph))]
        Err(unavailable("pool"))
    }
}

/// A captured graph.
#[derive(Debug)]
pub struct CudaGraph {
    handle: NonNull<c_void>,
}

// SAFETY: the handle is an owned heap object only touched through &self/&mut self methods; CUDA
// graphs may be replayed from any host thread.
unsafe impl Send for CudaGraph {}

impl CudaGraph {
    /// Captures what `work` launches on CUDA device `device` into a graph using `pool`, and
    /// returns the graph with `work`'s result (its output tensors, refreshed by each replay).
    /// The device must be idle of other work from this thread (call
    /// `tch::Cuda::synchronize` first) and `work` must have run once eagerly with the same shapes.
    pub fn capture<T>(
        device: usize,
        pool: GraphPool,
        work: impl FnOnce() -> T,
    ) -> Result<(Self, T), GraphError> {
        #[cfg(rl_cuda_graph)]
        {
            // SAFETY: the shim allocates and returns an owned object or null.
            let raw = unsafe { rl_cuda_graph_new() };
            let handle = NonNull::new(raw).ok_or_else(|| last_error("creation"))?;
            let graph = Self { handle };
            // SAFETY: `handle` is live; the shim reports failures by return code.
            check("capture", unsafe {
                rl_cuda_graph_begin(graph.handle.as_ptr(), device as c_int, pool.0, pool.1)
            })?;
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // SAFETY: as above; ending also restores the thread's previous stream.
            let ended = check("capture", unsafe {
                rl_cuda_graph_end(graph.handle.as_ptr())
            });
            match out {
                Ok(out) => ended.map(|()| (graph, out)),
                Err(panic) => Err(GraphError {
                    action: "capture",
                    message: panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "the captured work panicked".into()),
                }),
            }
        }
        #[cfg(not(rl_cuda_graph))]
        {
            let _ = (device, pool, work);
            Err(unavailable("capture"))
        }
    }

    /// Launches the recorded work on the current stream.
    pub fn replay(&self) -> Result<(), GraphError> {
        #[cfg(rl_cuda_graph)]
        {
            // SAFETY: `handle` is live for as long as `self`.
            check("replay", unsafe {
                rl_cuda_graph_replay(self.handle.as_ptr())
            })
        }
        #[cfg(not(rl_cuda_graph))]
        Err(unavailable("replay"))
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        #[cfg(rl_cuda_graph)]
        // SAFETY: `handle` came from rl_cuda_graph_new and is freed exactly once, here.
        unsafe {
            rl_cuda_graph_free(self.handle.as_ptr())
        }
    }
}

/// Whether this build has the shim (libtorch with CUDA headers).
pub fn available() -> bool {
    cfg!(rl_cuda_graph)
}

#[cfg(rl_cuda_graph)]
fn check(action: &'static str, code: c_int) -> Result<(), GraphError> {
    if code == 0 {
        Ok(())
    } else {
        Err(last_error(action))
    }
}

#[cfg(rl_cuda_graph)]
fn last_error(action: &'static str) -> GraphError {
    // SAFETY: the shim returns a pointer to a thread-local NUL-terminated string that lives
    // until the next failing call on this thread; it is copied at once.
    let message = unsafe { CStr::from_ptr(rl_cuda_graph_last_error()) }
        .to_string_lossy()
        .into_owned();
    GraphError { action, message }
}

#[cfg(not(rl_cuda_graph))]
fn unavailable(action: &'static str) -> GraphError {
    GraphError {
        action,
        message: "this build of rl has no CUDA graph support (libtorch without CUDA headers)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_off_the_gpu_is_an_error_not_a_crash() {
        if tch::Cuda::is_available() {
            return; // the GPU check (scripts/gpu/check_rollout.sh) covers capture there
        }
        let err = match GraphPool::new() {
            Ok(pool) => CudaGraph::capture(0, pool, || ()).map(|_| ()).unwrap_err(),
            Err(e) => e,
        };
        assert!(!err.message.is_empty(), "{err}");
    }
}
