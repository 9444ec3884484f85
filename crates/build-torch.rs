//! Build script shared by every crate that links libtorch (`build = "../build-torch.rs"`).
//!
//! torch-sys links only what the linker sees used, so `libtorch_cuda` would be dropped and CUDA
//! never detected (tch-rs #980, #907): force it in with `--no-as-needed`. Add an rpath to the
//! libtorch folder so binaries and tests run without `LD_LIBRARY_PATH`. The folder comes from
//! torch-sys (`links = "tch"`), so the crate must depend on `torch-sys` directly.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
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
