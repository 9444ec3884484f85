//! ATen's fused AdamW kernel (`at::_fused_adamw_`, behind `torch.optim.AdamW(fused=True)`),
//! reached through a small C++ shim (`csrc/fused_adamw.cpp`). The AdamW step is memory-bound:
//! the kernel reads and writes each parameter, gradient and moment once, where separate tensor
//! operations make about eight passes. [`crate::AdamW`] keeps its own moments and step count,
//! so its state is saved and restored the same way whichever path computes the step.

#![allow(unsafe_code)] // the FFI boundary to the shim; the tensors are checked before the call

use tch::{Kind, Tensor};

/// One parameter's tensors for the fused step: the weight, its gradient and its two moments.
pub(crate) struct Group<'a> {
    pub param: &'a Tensor,
    pub grad: Tensor,
    pub m: &'a Tensor,
    pub v: &'a Tensor,
}

/// AdamW's hyper-parameters for step number `step` (1 for the first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hyper {
    pub step: u64,
    pub lr: f64,
    pub betas: (f64, f64),
    pub weight_decay: f64,
    pub eps: f64,
}

/// Whether the fused kernel can take `groups`: all f32, contiguous, of matching shapes, on one
/// device. Checked before the call, so the kernel never stops half-way through the parameters.
pub(crate) fn fits(groups: &[Group<'_>]) -> bool {
    let Some(first) = groups.first() else {
        return false;
    };
    let device = first.param.device();
    groups.iter().all(|g| {
        let shape = g.param.size();
        [g.param, &g.grad, g.m, g.v].iter().all(|t| {
            t.kind() == Kind::Float
                && t.is_contiguous()
                && t.device() == device
                && t.size() == shape
        })
    })
}

#[cfg(rl_fused_adamw)]
mod ffi {
    use std::ffi::{c_char, c_int};
    use tch::Tensor;

    /// The `at::Tensor*` a tch handle holds (`torch_api.h`: `typedef torch::Tensor *tensor`).
    pub type Handle = *const torch_sys::C_tensor;

    unsafe extern "C" {
        pub fn rl_fused_adamw_last_error() -> *const c_char;
        #[allow(clippy::too_many_arguments)]
        pub fn rl_fused_adamw(
            params: *const Handle,
            grads: *const Handle,
            exp_avgs: *const Handle,
            exp_avg_sqs: *const Handle,
            n: usize,
            step: f64,
            lr: f64,
            beta1: f64,
            beta2: f64,
            weight_decay: f64,
            eps: f64,
        ) -> c_int;
    }

    pub fn handle(t: &Tensor) -> Handle {
        t.as_ptr()
    }
}

/// Whether this build has the fused kernel.
pub(crate) fn available() -> bool {
    cfg!(rl_fused_adamw)
}

/// One fused AdamW step over `groups`, which must [`fit`](fits); the error says why the kernel
/// refused.
#[cfg(rl_fused_adamw)]
pub(crate) fn step(groups: &[Group<'_>], h: Hyper) -> Result<(), String> {
    let params: Vec<ffi::Handle> = groups.iter().map(|g| ffi::handle(g.param)).collect();
    let grads: Vec<ffi::Handle> = groups.iter().map(|g| ffi::handle(&g.grad)).collect();
    let m: Vec<ffi::Handle> = groups.iter().map(|g| ffi::handle(g.m)).collect();
    let v: Vec<ffi::Handle> = groups.iter().map(|g| ffi::handle(g.v)).collect();
    // SAFETY: every handle points at an at::Tensor that `groups` keeps alive for the call; the
    // shim only reads the pointers and catches every C++ exception.
    let failed = tch::no_grad(|| unsafe {
        ffi::rl_fused_adamw(
            params.as_ptr(),
            grads.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            groups.len(),
            h.step as f64,
            h.lr,
            h.betas.0,
            h.betas.1,
            h.weight_decay,
            h.eps,
        )
    });
    if failed == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated string that lives until the next call.
    let why = unsafe { std::ffi::CStr::from_ptr(ffi::rl_fused_adamw_last_error()) };
    Err(why.to_string_lossy().into_owned())
}

/// Without the shim there is no fused kernel.
#[cfg(not(rl_fused_adamw))]
pub(crate) fn step(_groups: &[Group<'_>], _h: Hyper) -> Result<(), String> {
    Err("this build has no fused AdamW kernel".into())
}
