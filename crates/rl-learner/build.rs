//! rl-learner's build script: the libtorch link setup ([`rl_build::link_libtorch`]), plus the
//! fused AdamW shim (`csrc/fused_adamw.cpp`) compiled against the libtorch headers of the same
//! wheel. Without those headers the shim is left out and AdamW runs as separate tensor
//! operations (`cfg(rl_fused_adamw)` unset).

use rl_build::Libtorch;

fn main() {
    rl_build::link_libtorch();
    println!("cargo::rustc-check-cfg=cfg(rl_fused_adamw)");
    let Some(torch) = Libtorch::from_env() else {
        return;
    };
    if !torch.has_header("ATen/ops/_fused_adamw.h") {
        println!("cargo:warning=libtorch has no fused AdamW kernel: AdamW runs unfused");
        return;
    }
    torch.shim("csrc/fused_adamw.cpp").compile("rl_fused_adamw");
    torch.link(&["torch_cpu", "c10"]);
    println!("cargo:rustc-cfg=rl_fused_adamw");
}
