//! Build-script support for every crate that links libtorch (a build-dependency; each such
//! crate's `build.rs` calls [`link_libtorch`]).
//!
//! torch-sys links only what the linker sees used, so `libtorch_cuda` would be dropped and CUDA
//! never detected (tch-rs #980, #907): force it in with `--no-as-needed`. Add an rpath to the
//! libtorch folder so binaries and tests run without `LD_LIBRARY_PATH`. The folder comes from
//! torch-sys (`links = "tch"`), so the crate must depend on `torch-sys` directly.
//!
//! [`Libtorch`] compiles the C++ shims (CUDA graphs, fused AdamW) against the headers of the same
//! wheel, so a shim never sees another libtorch's ABI.

use std::path::{Path, PathBuf};

/// Emits the link flags and rpaths every libtorch-linking crate needs.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(torch) = Libtorch::from_env() else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        return;
    };
    let lib = &torch.lib;
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // rl-model's CUDA graph shim links the wheel's CUDA runtime (nvidia/*/lib): find it at run
    // time too. Link args do not propagate to dependents, so every linking crate adds it.
    if let Some((dir, _)) = torch.cuda_runtime() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    let cuda = ["torch_cuda", "torch"]
        .into_iter()
        .filter(|name| torch.has_library(name))
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

/// The libtorch that torch-sys links: its `lib` folder and the headers beside it.
pub struct Libtorch {
    /// `torch/lib`.
    pub lib: PathBuf,
    /// `torch/include`.
    pub include: PathBuf,
}

impl Libtorch {
    /// The libtorch torch-sys reported (`DEP_TCH_LIBTORCH_LIB`), if any.
    pub fn from_env() -> Option<Self> {
        let lib = PathBuf::from(std::env::var_os("DEP_TCH_LIBTORCH_LIB")?);
        let include = lib.parent()?.join("include");
        Some(Self { lib, include })
    }

    /// Whether `torch/include/<header>` exists (a CPU-only or older libtorch lacks some).
    pub fn has_header(&self, header: &str) -> bool {
        self.include.join(header).exists()
    }

    /// Whether `torch/lib/lib<name>.so` exists.
    pub fn has_library(&self, name: &str) -> bool {
        self.lib.join(format!("lib{name}.so")).exists()
    }

    /// A C++17 build of the shim `source` against these headers, with libtorch's ABI flags;
    /// the caller adds includes and calls `compile`.
    pub fn shim(&self, source: &str) -> cc::Build {
        println!("cargo:rerun-if-changed={source}");
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .file(source)
            .include(&self.include)
            .include(self.include.join("torch/csrc/api/include"))
            .flag("-std=c++17")
            .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
            .flag("-DGLOG_USE_GLOG_EXPORT")
            .warnings(false);
        build
    }

    /// Links the shim against each of `names` that this libtorch has.
    pub fn link(&self, names: &[&str]) {
        println!("cargo:rustc-link-search=native={}", self.lib.display());
        for name in names.iter().filter(|name| self.has_library(name)) {
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }

    /// The wheel's CUDA runtime library (`nvidia/*/lib/libcudart.so*`), as (folder, file name).
    pub fn cuda_runtime(&self) -> Option<(PathBuf, String)> {
        let site = self.lib.parent()?.parent()?;
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

    /// `cuda_runtime_api.h`'s folder: the wheel's `nvidia/*/include`, else `CUDA_HOME` or
    /// `/usr/local/cuda`.
    pub fn cuda_headers(&self) -> Option<PathBuf> {
        let site = self.lib.parent()?.parent()?;
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
}
