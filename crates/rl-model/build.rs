//! rl-model's build script: the libtorch link setup ([`rl_build::link_libtorch`]), plus the CUDA
//! graph shim (`csrc/cuda_graph.cpp`) compiled against the libtorch headers of the same wheel.
//! A libtorch without CUDA headers (a CPU-only build) leaves the shim out; `cuda_graph.rs` then
//! reports CUDA graphs as unavailable.

use rl_build::Libtorch;

fn main() {
    rl_build::link_libtorch();
    println!("cargo::rustc-check-cfg=cfg(rl_cuda_graph)");
    let Some(torch) = Libtorch::from_env() else {
        return;
    };
    let Some(cuda_include) = torch.cuda_headers() else {
        println!("cargo:warning=no CUDA runtime headers next to libtorch: CUDA graphs disabled");
        return;
    };
    if !torch.has_header("ATen/cuda/CUDAGraph.h") {
        return;
    }
    torch
        .shim("csrc/cuda_graph.cpp")
        .include(cuda_include)
        .compile("rl_cuda_graph");
    torch.link(&["c10_cuda", "torch_cuda"]);
    // The CUDA headers' inline functions call the runtime directly.
    if let Some((dir, file)) = torch.cuda_runtime() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim={file}");
    }
    println!("cargo:rustc-cfg=rl_cuda_graph");
}
