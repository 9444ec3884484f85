//! The learner group: data-parallel learner ranks that meet through a TCP store and sum their
//! gradients with a real collective library, libtorch's own c10d: `ProcessGroupGloo` for CPU
//! tensors, `ProcessGroupNCCL` for CUDA tensors (in builds with NCCL's headers), reached through
//! the C++ shim `csrc/c10d.cpp`. Ranks find each other through the variables that torchrun,
//! Slurm and Kubernetes operators already set: `MASTER_ADDR`, `MASTER_PORT`, `RANK`,
//! `WORLD_SIZE`, `LOCAL_RANK` ([`Rendezvous::from_env`]).

#![allow(unsafe_code)] // the FFI boundary to the shim; tensors are checked before each call

use std::time::Duration;

use tch::{Device, Kind, Tensor};

/// Where the ranks meet and which one this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    /// Host of rank 0, which serves the TCP store (`MASTER_ADDR`).
    pub addr: String,
    /// Its port (`MASTER_PORT`).
    pub port: u16,
    /// This rank, `0..world` (`RANK`).
    pub rank: usize,
    /// Number of ranks (`WORLD_SIZE`).
    pub world: usize,
    /// This rank's index on its host, which picks its GPU (`LOCAL_RANK`; default 0).
    pub local_rank: usize,
    /// The launcher's agent already serves the store at `addr:port`, so rank 0 only connects
    /// to it (torchrun sets `TORCHELASTIC_USE_AGENT_STORE=True`).
    pub agent_store: bool,
}

impl Rendezvous {
    /// From the process's environment; `Ok(None)` when `WORLD_SIZE` is unset (one process,
    /// no group).
    pub fn from_env() -> Result<Option<Self>, GroupError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From the variables `get` returns (see [`Rendezvous::from_env`]).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, GroupError> {
        let Some(world) = get("WORLD_SIZE") else {
            return Ok(None);
        };
        let number = |name: &'static str, text: Option<String>, default: Option<usize>| {
            match (text, default) {
                (Some(text), _) => text.trim().parse::<usize>().map_err(|_| GroupError::Env {
                    name,
                    message: format!("{text:?} is not a whole number"),
                }),
                (None, Some(default)) => Ok(default),
                (None, None) => Err(GroupError::Env {
                    name,
                    message: "unset; a launcher (torchrun, Slurm, a Kubernetes operator) sets it beside WORLD_SIZE".into(),
                }),
            }
        };
        let world = number("WORLD_SIZE", Some(world), None)?;
        let rank = number("RANK", get("RANK"), None)?;
        let local_rank = number("LOCAL_RANK", get("LOCAL_RANK"), Some(0))?;
        let port = number("MASTER_PORT", get("MASTER_PORT"), None)?;
        let addr = get("MASTER_ADDR").filter(|a| !a.trim().is_empty());
        let addr = addr.ok_or_else(|| GroupError::Env {
            name: "MASTER_ADDR",
            message: "unset; give the host of rank 0".into(),
        })?;
        if world == 0 || rank >= world {
            return Err(GroupError::Env {
                name: "RANK",
                message: format!("{rank} with WORLD_SIZE {world}: need 0 <= RANK < WORLD_SIZE"),
            });
        }
        let port = u16::try_from(port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| GroupError::Env {
                name: "MASTER_PORT",
                message: format!("{port} is not a TCP port (1 to 65535)"),
            })?;
        let agent_store = get("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v == "True");
        Ok(Some(Self {
            addr,
            port,
            rank,
            world,
            local_rank,
            agent_store,
        }))
    }
}

/// The collective library under the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors.
    Gloo,
    /// NCCL: CUDA tensors.
    Nccl,
}

impl Backend {
    /// The backend for tensors on `device`.
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() {
            Self::Nccl
        } else {
            Self::Gloo
        }
    }
}

/// Why the group could not form or a collective failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// A rendezvous variable is missing or malformed.
    #[error("{name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong and what to set.
        message: String,
    },
    /// This build cannot form the group asked for.
    #[error("the learner group is not available in this build: {0}")]
    Unavailable(String),
    /// Joining or a collective failed (a rank died, timed out, or tensors did not fit).
    #[error("learner group: {0}")]
    Collective(String),
}

/// This process's membership of the learner group.
pub struct ProcessGroup {
    raw: ffi::Raw,
    rank: usize,
    world: usize,
    backend: Backend,
}

// The c10d process group is made for use from any one thread at a time.
unsafe impl Send for ProcessGroup {}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.rank)
            .field("world", &self.world)
            .field("backend", &self.backend)
            .finish()
    }
}

impl ProcessGroup {
    /// Joins the group `rendezvous` describes over `backend`; returns once every rank has
    /// joined, or fails after `timeout`.
    pub fn join(
        rendezvous: &Rendezvous,
        backend: Backend,
        timeout: Duration,
    ) -> Result<Self, GroupError> {
        let raw = ffi::join(rendezvous, backend, timeout)?;
        Ok(Self {
            raw,
            rank: rendezvous.rank,
            world: rendezvous.world,
            backend,
        })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// Replaces each of `tensors` by its elementwise sum over the ranks. They must be on one
    /// device; they travel as one flat buffer per dtype, so the collective runs once per dtype.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<(), GroupError> {
        self.flat(tensors, |flat| ffi::all_reduce_sum(&self.raw, flat))
    }

    /// Replaces each of `tensors` by rank `root`'s.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), GroupError> {
        if root >= self.world {
            return Err(GroupError::Collective(format!(
                "broadcast from rank {root} in a group of {}",
                self.world
            )));
        }
        self.flat(tensors, |flat| ffi::broadcast(&self.raw, flat, root))
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<(), GroupError> {
        ffi::barrier(&self.raw)
    }

    /// Runs `collective` on one contiguous buffer per dtype holding `tensors` (dtypes in order
    /// of first appearance, the same on every rank), then copies the results back.
    fn flat(
        &self,
        tensors: &[Tensor],
        collective: impl Fn(&Tensor) -> Result<(), GroupError>,
    ) -> Result<(), GroupError> {
        let Some(first) = tensors.first() else {
            return Ok(());
        };
        let device = first.device();
        if let Some(t) = tensors.iter().find(|t| t.device() != device) {
            return Err(GroupError::Collective(format!(
                "tensors of one collective must be on one device: {device:?} beside {:?}",
                t.device()
            )));
        }
        if Backend::for_device(device) != self.backend {
            return Err(GroupError::Collective(format!(
                "{device:?} tensors in a {:?} group",
                self.backend
            )));
        }
        let mut kinds: Vec<Kind> = Vec::new();
        for t in tensors {
            if !kinds.contains(&t.kind()) {
                kinds.push(t.kind());
            }
        }
        for kind in kinds {
            let same: Vec<&Tensor> = tensors.iter().filter(|t| t.kind() == kind).collect();
            let parts: Vec<Tensor> = same.iter().map(|t| t.reshape([-1])).collect();
            let flat = Tensor::cat(&parts, 0).contiguous();
            collective(&flat)?;
            let mut offset = 0;
            for t in same {
                let n = t.numel() as i64;
                let mut target = t.shallow_clone();
                tch::no_grad(|| target.copy_(&flat.narrow(0, offset, n).view_as(t)));
                offset += n;
            }
        }
        Ok(())
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        ffi::free(&self.raw);
    }
}

/// A fingerprint of `tensors`' values (their bytes as f64, in order): equal on every rank
/// exactly when the ranks hold the same weights.
pub fn fingerprint(tensors: &[Tensor]) -> Result<u64, GroupError> {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for t in tensors {
        let flat = t.to_kind(Kind::Double).to_device(Device::Cpu).reshape([-1]);
        let values = Vec::<f64>::try_from(flat)
            .map_err(|e| GroupError::Collective(format!("cannot read a tensor: {e}")))?;
        for v in values {
            hash = (hash ^ v.to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(hash)
}

#[cfg(rl_c10d)]
mod ffi {
    use std::{
        ffi::{CStr, CString, c_char, c_int, c_long, c_void},
        ptr::NonNull,
        time::Duration,
    };

    use tch::Tensor;

    use super::{Backend, GroupError, Rendezvous};

    /// The shim's group object.
    pub struct Raw(NonNull<c_void>);

    /// The `at::Tensor*` a tch handle holds.
    type Handle = *const torch_sys::C_tensor;

    unsafe extern "C" {
        fn rl_group_last_error() -> *const c_char;
        fn rl_group_has_nccl() -> c_int;
        fn rl_group_new(
            host: *const c_char,
            port: c_int,
            rank: c_int,
            world: c_int,
            timeout_ms: c_long,
            nccl: c_int,
            agent_store: c_int,
        ) -> *mut c_void;
        fn rl_group_free(group: *mut c_void);
        fn rl_group_all_reduce_sum(group: *mut c_void, tensors: *const Handle, n: usize) -> c_int;
        fn rl_group_broadcast(
            group: *mut c_void,
            tensors: *const Handle,
            n: usize,
            root: c_int,
        ) -> c_int;
        fn rl_group_barrier(group: *mut c_void) -> c_int;
    }

    fn last_error() -> String {
        // SAFETY: the shim returns a NUL-terminated string owned by its thread-local error.
        unsafe { CStr::from_ptr(rl_group_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    fn check(code: c_int) -> Result<(), GroupError> {
        if code == 0 {
            Ok(())
        } else {
            Err(GroupError::Collective(last_error()))
        }
    }

    fn int(value: usize, what: &str) -> Result<c_int, GroupError> {
        c_int::try_from(value)
            .map_err(|_| GroupError::Collective(format!("{what} {value} is too large")))
    }

    pub fn join(
        rendezvous: &Rendezvous,
        backend: Backend,
        timeout: Duration,
    ) -> Result<Raw, GroupError> {
        let nccl = backend == Backend::Nccl;
        // SAFETY: a plain query of the shim.
        if nccl && unsafe { rl_group_has_nccl() } == 0 {
            return Err(GroupError::Unavailable(
                "NCCL: rl was built without nccl.h and complete CUDA headers".into(),
            ));
        }
        let host = CString::new(rendezvous.addr.as_str())
            .map_err(|_| GroupError::Collective("MASTER_ADDR holds a NUL byte".into()))?;
        let timeout_ms = c_long::try_from(timeout.as_millis()).unwrap_or(c_long::MAX);
        // SAFETY: `host` outlives the call; the shim copies what it keeps.
        let raw = unsafe {
            rl_group_new(
                host.as_ptr(),
                c_int::from(rendezvous.port),
                int(rendezvous.rank, "rank")?,
                int(rendezvous.world, "world size")?,
                timeout_ms,
                c_int::from(nccl),
                c_int::from(rendezvous.agent_store),
            )
        };
        NonNull::new(raw).map(Raw).ok_or_else(|| {
            GroupError::Collective(format!(
                "cannot join the group at {}:{} as rank {} of {}: {}",
                rendezvous.addr,
                rendezvous.port,
                rendezvous.rank,
                rendezvous.world,
                last_error()
            ))
        })
    }

    pub fn free(raw: &Raw) {
        // SAFETY: `raw` came from rl_group_new and is freed once, by the owner's Drop.
        unsafe { rl_group_free(raw.0.as_ptr()) }
    }

    pub fn all_reduce_sum(raw: &Raw, tensor: &Tensor) -> Result<(), GroupError> {
        let handle = tensor.as_ptr();
        // SAFETY: one live, contiguous tensor; the shim writes into it in place.
        check(unsafe { rl_group_all_reduce_sum(raw.0.as_ptr(), &handle, 1) })
    }

    pub fn broadcast(raw: &Raw, tensor: &Tensor, root: usize) -> Result<(), GroupError> {
        let handle = tensor.as_ptr();
        let root = int(root, "root rank")?;
        // SAFETY: as for all_reduce_sum.
        check(unsafe { rl_group_broadcast(raw.0.as_ptr(), &handle, 1, root) })
    }

    pub fn barrier(raw: &Raw) -> Result<(), GroupError> {
        // SAFETY: a live group.
        check(unsafe { rl_group_barrier(raw.0.as_ptr()) })
    }
}

#[cfg(not(rl_c10d))]
mod ffi {
    use std::time::Duration;

    use tch::Tensor;

    use super::{Backend, GroupError, Rendezvous};

    /// No group exists in this build.
    pub struct Raw;

    fn unavailable() -> GroupError {
        GroupError::Unavailable(
            "rl was built without Gloo's headers: apt install libgloo-dev (or set GLOO_INCLUDE) and rebuild".into(),
        )
    }

    pub fn join(_: &Rendezvous, _: Backend, _: Duration) -> Result<Raw, GroupError> {
        Err(unavailable())
    }

    pub fn free(_: &Raw) {}

    pub fn all_reduce_sum(_: &Raw, _: &Tensor) -> Result<(), GroupError> {
        Err(unavailable())
    }

    pub fn broadcast(_: &Raw, _: &Tensor, _: usize) -> Result<(), GroupError> {
        Err(unavailable())
    }

    pub fn barrier(_: &Raw) -> Result<(), GroupError> {
        Err(unavailable())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_launchers_variables_make_a_rendezvous() {
        assert_eq!(Rendezvous::from_vars(vars(&[])).unwrap(), None);
        let got = Rendezvous::from_vars(vars(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            Rendezvous {
                addr: "10.0.0.1".into(),
                port: 29500,
                rank: 1,
                world: 2,
                local_rank: 0,
                agent_store: false
            }
        );
    }

    #[test]
    fn missing_or_malformed_variables_name_the_variable() {
        let base = [
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ];
        let err = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            Rendezvous::from_vars(vars(&all)).unwrap_err().to_string()
        };
        assert!(err(&[]).starts_with("RANK: unset"), "{}", err(&[]));
        assert!(err(&[("RANK", "2")]).contains("need 0 <= RANK < WORLD_SIZE"));
        assert!(err(&[("RANK", "x")]).contains("\"x\" is not a whole number"));
        let no_port = Rendezvous::from_vars(vars(&[
            ("WORLD_SIZE", "1"),
            ("RANK", "0"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "70000"),
        ]));
        assert!(no_port.unwrap_err().to_string().contains("not a TCP port"));
    }
}
