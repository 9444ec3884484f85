//! `rl doctor`: what this machine offers `rl` — the libtorch in use, CPU and CUDA devices — and
//! live checks of bf16/f32 matmul (with throughput) and causal attention on every device.

use anyhow::bail;
use rl_model::probe::{self, Report};

use crate::console::Console;

/// Runs `rl doctor`; fails if any check fails.
pub fn run(console: Console) -> anyhow::Result<()> {
    let checks_per_device = 3;
    let devices = 1 + tch::Cuda::device_count().max(0) as u64;
    let bar = console.progress(devices * checks_per_device, "checking");
    let report = probe::probe(|name, device| {
        bar.set_message(format!("{name} on {device}"));
        bar.inc(1);
    });
    bar.finish_and_clear();
    if console.json {
        crate::console::out(serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::console::out(render(&report).trim_end())?;
    }
    if !report.ok() {
        bail!(
            "some checks failed (see above); the libtorch in use cannot run every role on this machine"
        );
    }
    Ok(())
}

fn render(r: &Report) -> String {
    let t = &r.libtorch;
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = format!("rl {}\n\nlibtorch\n", env!("CARGO_PKG_VERSION"));
    out += &format!("  version        {}\n", or_unknown(&t.version));
    out += &format!("  location       {}\n", or_unknown(&t.lib_dir));
    out += &format!(
        "  built for CUDA {}\n",
        t.cuda_version.clone().unwrap_or_else(|| "no".into())
    );
    out += &format!(
        "  CUDA usable    {}   cuDNN {}\n",
        yes(t.has_cuda),
        yes(t.cudnn)
    );
    out += &format!(
        "  CPU threads    {}   MKL {}\n\n",
        t.cpu_threads,
        yes(t.mkl)
    );
    out += "devices\n  cpu\n";
    for g in &r.gpus {
        let (major, minor) = g.compute_capability;
        let gib = g.total_memory as f64 / (1u64 << 30) as f64;
        let bf16 = if major >= 8 {
            "bf16 native"
        } else {
            "bf16 emulated"
        };
        out += &format!(
            "  cuda:{}  {}  {gib:.1} GiB  sm_{major}{minor}  {bf16}\n",
            g.index, g.name
        );
    }
    if let Some(e) = &r.gpu_error {
        out += &format!("  (no CUDA devices: {e})\n");
    } else if r.torch_cuda_devices != r.gpus.len() as i64 {
        out += &format!(
            "  (the driver lists {} GPU(s) but libtorch can use {})\n",
            r.gpus.len(),
            r.torch_cuda_devices
        );
    }
    out += "\nchecks\n";
    for c in &r.checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        out += &format!("  {mark} {:<7} {:<18} {}\n", c.device, c.name, c.detail);
    }
    out
}
