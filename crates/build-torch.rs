//! Build script shared by every crate that links libtorch (`build = "../build-torch.rs"`).
//!
//! torch-sys links only what the linker sees used, so `libtorch_cuda` would be dropped and CUDA
//! never detected (tch-rs #980, #907): force it in with `--no-as-needed`. Add an rpath to the
//! libtorch folder so binaries and tests run without `LD_LIBRARY_PATH`. The folder comes from
//! torch-sys (`links = "tch"`), so the crate must depend on `torch-sys` directly.

use std::path::Path;

/// Emits the link flags and rpath (called directly, or by a crate's own build script).
pub fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // rl-model's CUDA graph shim links the wheel's CUDA runtime (nvidia/*/lib): find it at run
    // time too. Link args do not propagate to dependents, so every linking crate adds it.
    if let Some((dir, _)) = cuda_runtime(Path::new(&lib)) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    let cuda = ["torch_cuda", "torch"]
        .into_iter()
        .filter(|name| Path::new(&lib).join(format!("lib{name}.so")).exists())
        .map(|name| format!("-l{name}"))
        .collect::<Vec<_>>();
    if !cuda.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        for flag in cuda {
            println!("cargo:rustc-link-arg={flag}");
        }
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// The CUDA runtime library (`libcudart.so*`) of libtorch's wheel (`lib` is `torch/lib`), as
/// (folder, file name).
pub fn cuda_runtime(lib: &Path) -> Option<(std::path::PathBuf, String)> {
    let site = lib.parent()?.parent()?;
    ["cu13", "cu12", "cuda_runtime"].iter().find_map(|d| {
        let dir = site.join("nvidia").join(d).join("lib");
        let file = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with("libcudart.so"))
            .min_by_key(String::len)?;
        Some((dir, file))
    })
}
