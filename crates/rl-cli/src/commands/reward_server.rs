//! `rl reward-server --config C --listen ADDR`: the config's reward function served over gRPC
//! (`rl.v1.RewardService`: Score, Health) until SIGINT or SIGTERM. Prints one line once it
//! serves: `listening on ADDR (...)` (a JSON object with `--json`).

use std::sync::Arc;

use rl_core::{Config, RewardFn, config::RewardKind};
use rl_reward::remote::{RewardServer, ServerOptions, TOKEN_ENV};
use serde_json::json;

use super::{UsageError, serve};
use crate::{cli::RewardServerArgs, console::Console};

/// Runs `rl reward-server`.
pub fn run(args: RewardServerArgs, console: Console) -> anyhow::Result<()> {
    crate::placement::processes::watch_parent();
    let config = Config::load(&args.config, &args.overrides)?;
    let scorer = scorer(&config)?;
    let token = serve::token(&args.serve, TOKEN_ENV)?;
    let shutdown_grace = serve::grace(&args.serve)?;
    let max_request_time = serve::seconds("--max-request-s", args.max_request_s, 0.001, 86_400.0)?;
    let defaults = ServerOptions::default();
    let max_concurrency = args
        .max_concurrency
        .map_or(defaults.max_concurrency, |n| n as usize);
    let options = ServerOptions {
        token,
        max_concurrency,
        max_queue: args.max_queue.map_or(4 * max_concurrency, |n| n as usize),
        max_items: args.max_batch as usize,
        max_item_bytes: (args.max_item_kib as usize) << 10,
        max_message_bytes: (args.max_message_mib as usize) << 20,
        max_request_time,
        shutdown_grace,
    };
    let secured = options.token.is_some();

    let runtime = serve::runtime()?;
    let shutdown = {
        let _inside = runtime.enter();
        serve::stop_signal()?
    };
    let server = runtime
        .block_on(RewardServer::bind(&args.listen, options.clone()))
        .map_err(serve::usage)?;
    let fields = [
        ("scorer", json!(scorer.name())),
        ("max_concurrency", json!(options.max_concurrency)),
        ("max_queue", json!(options.max_queue)),
        ("max_batch", json!(options.max_items)),
    ];
    serve::announce(console, server.local_addr(), &fields, secured)?;
    runtime.block_on(server.serve(scorer, shutdown))?;
    tracing::info!("reward server stopped");
    // A scorer still running on a blocking thread must not hold the exit up.
    runtime.shutdown_background();
    Ok(())
}

/// The scorer `[env]` and `[reward]` describe.
fn scorer(config: &Config) -> anyhow::Result<Arc<dyn RewardFn>> {
    match config.reward.kind {
        RewardKind::Rule | RewardKind::Model => {
            let reward =
                rl_runtime::reward::scorer(config).map_err(|e| UsageError(e.to_string()))?;
            Ok(Arc::from(reward))
        }
        RewardKind::Remote => Err(UsageError(
            "reward.kind = \"remote\": a reward server does not forward to another one. Point \
             the trainer's reward.url at that server directly, or serve reward.kind = \"rule\""
                .into(),
        )
        .into()),
    }
}
