//! rl-learner's build script: the shared libtorch link setup (`../build-torch.rs`), plus the
//! fused AdamW shim (`csrc/fused_adamw.cpp`) compiled against the libtorch headers of the same
//! wheel. Without those headers the shim is left out and AdamW runs as separate tensor
//! operations (`cfg(rl_fused_adamw)` unset).

#[path = "../build-torch.rs"]
mod build_torch;

use std::path::PathBuf;

fn main() {
    build_torch::main();
    println!("cargo::rustc-check-cfg=cfg(rl_fused_adamw)");
    println!("cargo:rerun-if-changed=csrc/fused_adamw.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = PathBuf::from(lib);
    let Some(include) = lib.parent().map(|torch| torch.join("include")) else {
        return;
    };
    if !include.join("ATen/ops/_fused_adamw.h").exists() {
        println!("cargo:warning=libtorch has no fused AdamW kernel: AdamW runs unfused");
        return;
    }
    cc::Build::new()
        .cpp(true)
        .file("csrc/fused_adamw.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("rl_fused_adamw");
    println!("cargo:rustc-link-search=native={}", lib.display());
    for name in ["torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    println!("cargo:rustc-cfg=rl_fused_adamw");
}
