//! `rl rollout-worker --listen ADDR --model M`: one policy replica on one device, served over
//! gRPC (`rl.v1.RolloutService`: Generate, UpdateWeights, Health) until SIGINT or SIGTERM.
//! Prints one line once it serves: `listening on ADDR (...)` (a JSON object with `--json`).

use std::sync::Arc;

use anyhow::Context;
use rl_model::kind_name;
use rl_rollout::{
    Engine, EngineConfig, LocalWorker, RolloutError, RolloutWorker,
    remote::{RolloutServer, ServerOptions},
};
use serde_json::json;

use super::UsageError;
use crate::{cli::RolloutWorkerArgs, console::Console};

/// Runs `rl rollout-worker`.
pub fn run(args: RolloutWorkerArgs, console: Console) -> anyhow::Result<()> {
    let token = args.token_env.as_deref().map(read_token).transpose()?;
    let (device, kind) = super::placement(&args.placement)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let _runtime = runtime.enter();
    let shutdown = super::stop_signal()?;

    // The cheap checks (address, token, tokenizer) before the model is loaded.
    let options = ServerOptions {
        token,
        max_message_bytes: (args.max_message_mib as usize) << 20,
    };
    let server = runtime
        .block_on(RolloutServer::bind(&args.listen, options))
        .map_err(usage)?;
    let tokenizer = rl_model::load_tokenizer(&args.model)?;
    let loaded = rl_model::load(&args.model, device, kind)?;
    let config = EngineConfig {
        max_batch: args.max_batch,
        max_seq_len: args.max_seq_len,
        ..EngineConfig::default()
    };
    let worker = LocalWorker::spawn("rollout-worker", move || {
        Engine::new(loaded, tokenizer, config)
    })
    .map_err(usage)?;
    let info = runtime.block_on(worker.info())?;

    let addr = server.local_addr();
    let secured = args.token_env.is_some();
    if console.json {
        crate::console::out(json!({
            "listening": addr.to_string(),
            "model": args.model,
            "device": info.device,
            "dtype": kind_name(kind),
            "max_batch": info.max_batch,
            "max_seq_len": info.max_seq_len,
            "policy_version": info.policy_version,
            "token": secured,
        }))?;
    } else {
        crate::console::out(format!(
            "listening on {addr} (model {}, {}, {}, max batch {}, max seq len {}, policy version {}{})",
            args.model,
            info.device,
            kind_name(kind),
            info.max_batch,
            info.max_seq_len,
            info.policy_version,
            if secured { ", token required" } else { "" }
        ))?;
    }
    runtime.block_on(server.serve(Arc::new(worker), shutdown))?;
    tracing::info!("rollout worker stopped");
    Ok(())
}

/// The shared secret from the environment variable `var`.
fn read_token(var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(token) if !token.is_empty() => Ok(token),
        _ => Err(UsageError(format!(
            "--token-env {var}: the environment variable {var} is unset, empty or not UTF-8; \
             export the shared secret in it (e.g. `export {var}=$(openssl rand -hex 32)`) and give \
             clients the same one, or drop --token-env"
        ))
        .into()),
    }
}

/// Settings the user gave that do not work (address, token, batch or length) exit 2.
fn usage(err: RolloutError) -> anyhow::Error {
    match err {
        RolloutError::Listen { .. } | RolloutError::Config(_) => UsageError(err.to_string()).into(),
        other => other.into(),
    }
}
