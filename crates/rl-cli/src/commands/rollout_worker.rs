//! `rl rollout-worker --listen ADDR --model M`: one policy replica on one device, served over
//! gRPC (`rl.v1.RolloutService`: Generate, UpdateWeights, Health, and JoinWeightGroup and
//! BroadcastWeights for weights by collective broadcast over c10d) until SIGINT or SIGTERM.
//! Prints one line once it serves: `listening on ADDR (...)` (a JSON object with `--json`).

use std::sync::Arc;

use rl_model::kind_name;
use rl_rollout::{
    Engine, EngineConfig, LocalWorker, RolloutError, RolloutWorker,
    remote::{RolloutServer, ServerOptions, TOKEN_ENV},
};
use rl_runtime::weight_group::C10dGroup;
use serde_json::json;

use super::{UsageError, serve};
use crate::{cli::RolloutWorkerArgs, console::Console};

/// Runs `rl rollout-worker`.
pub fn run(args: RolloutWorkerArgs, console: Console) -> anyhow::Result<()> {
    crate::placement::processes::watch_parent();
    let token = serve::token(&args.serve, TOKEN_ENV)?;
    let shutdown_grace = serve::grace(&args.serve)?;
    let (device, kind) = super::placement(&args.placement)?;
    let runtime = serve::runtime()?;
    let _runtime = runtime.enter();
    let shutdown = serve::stop_signal()?;

    // The cheap checks (address, token, tokenizer) before the model is loaded.
    let options = ServerOptions {
        token,
        max_message_bytes: (args.max_message_mib as usize) << 20,
        shutdown_grace,
    };
    let secured = options.token.is_some();
    let server = runtime
        .block_on(RolloutServer::bind(&args.listen, options))
        .map_err(serve::usage)?;
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

    let fields = [
        ("model", json!(args.model)),
        ("device", json!(info.device)),
        ("dtype", json!(kind_name(kind))),
        ("max_batch", json!(info.max_batch)),
        ("max_seq_len", json!(info.max_seq_len)),
        ("policy_version", json!(info.policy_version)),
    ];
    serve::announce(console, server.local_addr(), &fields, secured)?;
    let server = server.with_weight_group(Arc::new(C10dGroup::new(device)));
    runtime.block_on(server.serve(Arc::new(worker), shutdown))?;
    tracing::info!("rollout worker stopped");
    // Work still running on the runtime's threads must not hold the exit up.
    runtime.shutdown_background();
    Ok(())
}

/// Engine settings that do not fit (batch, length) exit 2.
fn usage(err: RolloutError) -> anyhow::Error {
    match err {
        RolloutError::Config(_) => UsageError(err.to_string()).into(),
        other => other.into(),
    }
}
