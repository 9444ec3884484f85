//! `rl reward-server --config C --listen ADDR`: the config's reward function served over gRPC
//! (`rl.v1.RewardService`: Score, Health) until SIGINT or SIGTERM. Prints one line once it
//! serves: `listening on ADDR (...)` (a JSON object with `--json`).

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use rl_core::{Config, RewardFn, config::RewardKind};
use rl_reward::remote::{RewardServer, ServeError, ServerOptions, TOKEN_ENV};
use serde_json::json;

use super::UsageError;
use crate::{cli::RewardServerArgs, console::Console};

/// Runs `rl reward-server`.
pub fn run(args: RewardServerArgs, console: Console) -> anyhow::Result<()> {
    let config = Config::load(&args.config, &args.overrides)?;
    let scorer = scorer(&config)?;
    let token = match &args.token_file {
        Some(path) => Some(read_token(path)?),
        None => match std::env::var_os(TOKEN_ENV) {
            None => None,
            // Set but blank would otherwise serve without a token, silently.
            Some(value) => Some(
                value
                    .into_string()
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| {
                        UsageError(format!(
                            "{TOKEN_ENV} is set but empty or not UTF-8: put the shared secret in \
                             it (e.g. `openssl rand -hex 32`), or unset it to serve without a token"
                        ))
                    })?,
            ),
        },
    };
    let max_request_time = Duration::try_from_secs_f64(args.max_request_s)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            UsageError(format!(
                "--max-request-s {}: give a number of seconds > 0, e.g. 60",
                args.max_request_s
            ))
        })?;
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
    };
    let secured = options.token.is_some();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shutdown = {
        let _inside = runtime.enter();
        super::stop_signal()?
    };
    let server = runtime
        .block_on(RewardServer::bind(&args.listen, options.clone()))
        .map_err(usage)?;
    let addr = server.local_addr();
    if !secured && !addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {addr} without a token: anyone who reaches this port can use the \
             scorer; set {TOKEN_ENV} or --token-file"
        );
    }
    if console.json {
        crate::console::out(json!({
            "listening": addr.to_string(),
            "scorer": scorer.name(),
            "max_concurrency": options.max_concurrency,
            "max_queue": options.max_queue,
            "max_batch": options.max_items,
            "token": secured,
        }))?;
    } else {
        crate::console::out(format!(
            "listening on {addr} (scorer {}, max concurrency {}, max queue {}, max batch {}{})",
            scorer.name(),
            options.max_concurrency,
            options.max_queue,
            options.max_items,
            if secured { ", token required" } else { "" }
        ))?;
    }
    runtime.block_on(server.serve(scorer, shutdown))?;
    tracing::info!("reward server stopped");
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

/// The shared secret in `path` (surrounding whitespace dropped).
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "--token-file {}: cannot read it ({e}); write the shared secret there (e.g. \
             `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(UsageError(format!(
            "--token-file {}: the file is empty; write the shared secret there",
            path.display()
        ))
        .into());
    }
    Ok(token.to_owned())
}

/// Settings the user gave that do not work (address, token, limits) exit 2.
fn usage(err: ServeError) -> anyhow::Error {
    match err {
        ServeError::Listen { .. } | ServeError::Config(_) => UsageError(err.to_string()).into(),
    }
}
