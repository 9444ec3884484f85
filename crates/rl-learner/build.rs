//! rl-learner's build script: the libtorch link setup ([`rl_build::link_libtorch`]), plus two
//! C++ shims compiled against the libtorch headers of the same wheel:
//!
//! - the fused AdamW step (`csrc/fused_adamw.cpp`, `cfg(rl_fused_adamw)`); without its header
//!   AdamW runs as separate tensor operations;
//! - the learner group's collectives through libtorch's c10d (`csrc/c10d.cpp`, `cfg(rl_c10d)`):
//!   TCPStore and ProcessGroupGloo, whose header needs Gloo's headers (Debian's `libgloo-dev`,
//!   or a folder named by `GLOO_INCLUDE`); ProcessGroupNCCL too when the wheel's `nccl.h` and
//!   complete CUDA headers are present (`RL_NCCL`). Only headers are used: the code is
//!   libtorch's own.

use std::path::{Path, PathBuf};

use rl_build::Libtorch;

fn main() {
    rl_build::link_libtorch();
    println!("cargo::rustc-check-cfg=cfg(rl_fused_adamw)");
    println!("cargo::rustc-check-cfg=cfg(rl_c10d)");
    println!("cargo::rustc-check-cfg=cfg(rl_nccl)");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    let Some(torch) = Libtorch::from_env() else {
        return;
    };
    fused_adamw(&torch);
    c10d(&torch);
}

fn fused_adamw(torch: &Libtorch) {
    if !torch.has_header("ATen/ops/_fused_adamw.h") {
        println!("cargo:warning=libtorch has no fused AdamW kernel: AdamW runs unfused");
        return;
    }
    torch.shim("csrc/fused_adamw.cpp").compile("rl_fused_adamw");
    torch.link(&["torch_cpu", "c10"]);
    println!("cargo:rustc-cfg=rl_fused_adamw");
}

fn c10d(torch: &Libtorch) {
    if !torch.has_header("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp") {
        println!("cargo:warning=libtorch has no c10d headers: the learner group is unavailable");
        return;
    }
    let Some(gloo) = gloo_headers() else {
        println!(
            "cargo:warning=no Gloo headers (apt install libgloo-dev, or set GLOO_INCLUDE): the learner group is unavailable"
        );
        return;
    };
    let mut build = torch.shim("csrc/c10d.cpp");
    build.define("USE_C10D_GLOO", None);
    if let Some(dir) = gloo {
        build.include(dir);
    }
    let nccl = nccl_headers(torch);
    if let Some(dirs) = &nccl {
        build.define("USE_C10D_NCCL", None).define("RL_NCCL", None);
        for dir in dirs {
            build.include(dir);
        }
    }
    build.compile("rl_c10d");
    torch.link(&["torch_cpu", "c10"]);
    if nccl.is_some() {
        torch.link(&["torch_cuda", "c10_cuda"]);
        println!("cargo:rustc-cfg=rl_nccl");
    }
    println!("cargo:rustc-cfg=rl_c10d");
}

/// Where `gloo/algorithm.h` is: `Some(None)` in the compiler's own search path (/usr/include),
/// `Some(Some(dir))` under `$GLOO_INCLUDE`, `None` nowhere.
fn gloo_headers() -> Option<Option<PathBuf>> {
    if let Some(dir) = std::env::var_os("GLOO_INCLUDE").map(PathBuf::from) {
        return dir.join("gloo/algorithm.h").exists().then_some(Some(dir));
    }
    // Tracked even while absent, so installing libgloo-dev later brings the shim in.
    println!("cargo:rerun-if-changed=/usr/include/gloo/algorithm.h");
    Path::new("/usr/include/gloo/algorithm.h")
        .exists()
        .then_some(None)
}

/// The include folders NCCL's process group needs: the wheel's `nvidia/nccl/include` and CUDA
/// headers complete enough for `cuda_fp16.h` (its `nv/target`).
fn nccl_headers(torch: &Libtorch) -> Option<Vec<PathBuf>> {
    let cuda = torch.cuda_headers()?;
    let nccl = torch.lib.parent()?.parent()?.join("nvidia/nccl/include");
    (nccl.join("nccl.h").exists() && cuda.join("nv/target").exists()).then(|| vec![nccl, cuda])
}
