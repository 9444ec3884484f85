//! rl-model's build script: the shared libtorch link setup (`../build-torch.rs`), plus the CUDA
//! graph shim (`csrc/cuda_graph.cpp`) compiled against the libtorch headers of the same wheel.
//! A libtorch without CUDA headers (a CPU-only build) leaves the shim out; `cuda_graph.rs` then
//! reports CUDA graphs as unavailable.

#[path = "../build-torch.rs"]
mod build_torch;

use std::path::{Path, PathBuf};

fn main() {
    build_torch::main();
    println!("cargo::rustc-check-cfg=cfg(rl_cuda_graph)");
    println!("cargo:rerun-if-changed=csrc/cuda_graph.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = PathBuf::from(lib);
    let Some(torch) = lib.parent() else { return };
    let include = torch.join("include");
    let Some(cuda_include) = cuda_headers(torch) else {
        println!("cargo:warning=no CUDA runtime headers next to libtorch: CUDA graphs disabled");
        return;
    };
    if !include.join("ATen/cuda/CUDAGraph.h").exists() {
        return;
    }
    cc::Build::new()
        .cpp(true)
        .file("csrc/cuda_graph.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(cuda_include)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("rl_cuda_graph");
    println!("cargo:rustc-link-search=native={}", lib.display());
    for name in ["c10_cuda", "torch_cuda"] {
        if lib.join(format!("lib{name}.so")).exists() {
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }
    // The CUDA headers' inline functions call the runtime directly.
    if let Some((dir, file)) = build_torch::cuda_runtime(&lib) {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim={file}");
    }
    println!("cargo:rustc-cfg=rl_cuda_graph");
}

/// `cuda_runtime_api.h`'s folder: the wheel's `nvidia/*/include`, else `CUDA_HOME` or
/// `/usr/local/cuda`.
fn cuda_headers(torch: &Path) -> Option<PathBuf> {
    let site = torch.parent()?;
    let mut candidates: Vec<PathBuf> = ["cu13", "cu12", "cuda_runtime"]
        .iter()
        .map(|d| site.join("nvidia").join(d).join("include"))
        .collect();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(Path::new(&home).join("include"));
    }
    candidates.push("/usr/local/cuda/include".into());
    candidates
        .into_iter()
        .find(|d| d.join("cuda_runtime_api.h").exists())
}
