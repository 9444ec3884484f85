//! What this machine can run: the libtorch in use, CPU features, CUDA devices, and live checks
//! that bf16 matmul and scaled-dot-product attention work (with a throughput figure). `rl doctor`
//! prints this; everything is measured here, nothing assumed from build flags.

use std::time::Instant;

use serde::Serialize;
use tch::{Cuda, Device, Kind, Tensor};

use crate::{
    cuda_driver::{self, GpuInfo},
    device::{device_name, kind_name},
};

/// Where libtorch was loaded from and which build it is.
#[derive(Debug, Clone, Serialize)]
pub struct Libtorch {
    /// Folder of the loaded `libtorch_cpu.so`.
    pub lib_dir: Option<String>,
    /// `torch.__version__` of that build, e.g. `2.11.0+cu130`.
    pub version: Option<String>,
    /// CUDA version it was built against, if any.
    pub cuda_version: Option<String>,
    /// Whether libtorch can use CUDA here (support loaded and a driver present).
    pub has_cuda: bool,
    /// cuDNN usable.
    pub cudnn: bool,
    /// Intra-op CPU threads.
    pub cpu_threads: i32,
    /// MKL compiled in.
    pub mkl: bool,
}

/// Outcome of one live check on one device.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked, e.g. `bf16 matmul`.
    pub name: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Whether it ran and gave the right answer.
    pub ok: bool,
    /// A measurement or the error.
    pub detail: String,
}

/// Everything `rl doctor` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The loaded libtorch.
    pub libtorch: Libtorch,
    /// CUDA devices according to the driver.
    pub gpus: Vec<GpuInfo>,
    /// Why the driver could not be asked, if it could not.
    pub gpu_error: Option<String>,
    /// Devices libtorch can use.
    pub torch_cuda_devices: i64,
    /// Live checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Probes libtorch and every device; `on_check` is called before each check (for progress).
pub fn probe(mut on_check: impl FnMut(&str, &str)) -> Report {
    let libtorch = libtorch();
    let (gpus, gpu_error) = match cuda_driver::gpus() {
        Ok(g) => (g, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let torch_cuda_devices = Cuda::device_count();
    let mut devices = vec![Device::Cpu];
    devices.extend((0..torch_cuda_devices as usize).map(Device::Cuda));
    let mut checks = Vec::new();
    for device in devices {
        let name = device_name(device);
        let kinds: &[Kind] = if device.is_cuda() {
            &[Kind::BFloat16, Kind::Float]
        } else {
            &[Kind::Float, Kind::BFloat16]
        };
        for &kind in kinds {
            let label = format!("{} matmul", kind_name(kind));
            on_check(&label, &name);
            checks.push(run_check(label, &name, || matmul_check(device, kind)));
        }
        let kind = if device.is_cuda() {
            Kind::BFloat16
        } else {
            Kind::Float
        };
        let label = format!("SDPA causal {}", kind_name(kind));
        on_check(&label, &name);
        checks.push(run_check(label, &name, || sdpa_check(device, kind)));
    }
    Report {
        libtorch,
        gpus,
        gpu_error,
        torch_cuda_devices,
        checks,
    }
}

fn run_check(name: String, device: &str, f: impl FnOnce() -> Result<String, String>) -> Check {
    // libtorch errors surface as TchError through the f_ APIs; a panic here would be a bug in
    // tch, and doctor must still report the other checks.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("libtorch raised an unexpected error".into()));
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(e) => (false, e),
    };
    Check {
        name,
        device: device.into(),
        ok,
        detail,
    }
}

/// `ones[n,n] @ ones[n,n]` must be `n` everywhere (exact in bf16 for n = 2^k); timed for TFLOP/s.
fn matmul_check(device: Device, kind: Kind) -> Result<String, String> {
    let n: i64 = if device.is_cuda() { 8192 } else { 512 };
    let reps = if device.is_cuda() { 20 } else { 5 };
    let err = |e: tch::TchError| e.to_string();
    let a = Tensor::f_ones([n, n], (kind, device)).map_err(err)?;
    let c = a.f_matmul(&a).map_err(err)?; // warm-up (kernel selection, allocator)
    let expected = Tensor::f_full([n, n], n as f64, (kind, device)).map_err(err)?;
    if !c.f_equal(&expected).map_err(err)? {
        return Err(format!("wrong result: ones@ones != {n}"));
    }
    sync(device);
    let start = Instant::now();
    for _ in 0..reps {
        let _ = a.f_matmul(&a).map_err(err)?;
    }
    sync(device);
    let secs = start.elapsed().as_secs_f64();
    let flops = 2.0 * (n as f64).powi(3) * f64::from(reps);
    let rate = flops / secs;
    Ok(if rate >= 1e12 {
        format!("{n}x{n}: {:.1} TFLOP/s", rate / 1e12)
    } else {
        format!("{n}x{n}: {:.1} GFLOP/s", rate / 1e9)
    })
}

/// Causal SDPA against the same attention written out in f32; the largest error must be small.
fn sdpa_check(device: Device, kind: Kind) -> Result<String, String> {
    let err = |e: tch::TchError| e.to_string();
    let (b_sz, heads, q_len, head_dim) = (2, 4, 128, 64);
    tch::manual_seed(0);
    let opts = (Kind::Float, device);
    let q = Tensor::f_randn([b_sz, heads, q_len, head_dim], opts).map_err(err)?;
    let k = Tensor::f_randn([b_sz, heads, q_len, head_dim], opts).map_err(err)?;
    let v = Tensor::f_randn([b_sz, heads, q_len, head_dim], opts).map_err(err)?;
    let fast = Tensor::f_scaled_dot_product_attention::<Tensor>(
        &q.to_kind(kind),
        &k.to_kind(kind),
        &v.to_kind(kind),
        None,
        0.0,
        true,
        None,
        false,
    )
    .map_err(err)?
    .to_kind(Kind::Float);
    let scores = q.matmul(&k.transpose(-2, -1)) / (head_dim as f64).sqrt();
    let mask = Tensor::ones([q_len, q_len], (Kind::Bool, device))
        .tril(0)
        .logical_not();
    let reference = scores
        .masked_fill(&mask, f64::NEG_INFINITY)
        .softmax(-1, Kind::Float)
        .matmul(&v);
    let max_err = (fast - reference).abs().max().double_value(&[]);
    let tol = if kind == Kind::Float { 1e-4 } else { 5e-2 };
    if max_err <= tol {
        Ok(format!("max |err| vs eager f32 = {max_err:.1e}"))
    } else {
        Err(format!(
            "max |err| vs eager f32 = {max_err:.1e} > {tol:.0e}"
        ))
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        Cuda::synchronize(i as i64);
    }
}

/// The loaded libtorch: found through this process's memory map, its version read from the
/// `torch/version.py` beside it (PyPI torch layout).
fn libtorch() -> Libtorch {
    let lib_dir = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| {
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .find(|p| p.ends_with("/libtorch_cpu.so"))
                .and_then(|p| {
                    std::path::Path::new(p)
                        .parent()
                        .map(|d| d.display().to_string())
                })
        });
    let version_py = lib_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(format!("{d}/../version.py")).ok());
    // Lines like `__version__ = '2.11.0+cu130'` and `cuda: Optional[str] = '13.0'`.
    let field = |name: &str| {
        let text = version_py.as_deref()?;
        let line = text.lines().find(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', ':', '=']))
        })?;
        let value = line.rsplit('=').next()?.trim().trim_matches(['\'', '"']);
        (!value.is_empty() && value != "None").then(|| value.to_owned())
    };
    Libtorch {
        version: field("__version__"),
        cuda_version: field("cuda"),
        lib_dir,
        has_cuda: tch::utils::has_cuda(),
        cudnn: Cuda::cudnn_is_available(),
        cpu_threads: tch::get_num_threads(),
        mkl: tch::utils::has_mkl(),
    }
}
