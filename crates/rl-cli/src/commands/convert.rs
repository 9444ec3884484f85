//! `rl convert IN OUT_DIR`: load a model and write it as an HF safetensors directory.

use std::time::Instant;

use rl_model::export::save_hf_dir;
use serde_json::json;
use tch::{Device, Kind};
use tracing::info;

use crate::{cli::ConvertArgs, console::Console};

/// Runs `rl convert`.
pub fn run(args: ConvertArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let kind = match args.dtype.as_str() {
        "bf16" => Kind::BFloat16,
        "f16" => Kind::Half,
        _ => Kind::Float,
    };
    let input = args.input.to_string_lossy();
    let model = rl_model::load(&input, Device::Cpu, Kind::Float)?;
    info!(input = %input, arch = model.config.name(), "loaded");
    save_hf_dir(&model, &args.out_dir, kind)?;
    let params: i64 = model
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    info!(out = %args.out_dir.display(), params, seconds = start.elapsed().as_secs_f64(), "written");
    if console.json {
        crate::console::out(
            json!({ "out_dir": args.out_dir, "arch": model.config.name(), "parameters": params, "dtype": args.dtype }),
        )?;
    } else if !console.quiet {
        crate::console::out(format!(
            "wrote {} ({} parameters, {})",
            args.out_dir.display(),
            params,
            args.dtype
        ))?;
    }
    Ok(())
}
