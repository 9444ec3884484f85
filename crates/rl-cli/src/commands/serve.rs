//! What `rl rollout-worker` and `rl reward-server` (and the next servers) share on the command
//! line: the shared secret (`--token-file`, `--token-env`, the server's own variable), the
//! shutdown grace, the runtime, the stop signals and the ready line.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use rl_proto::{
    secret::{self, Secret},
    server::ServerError,
};
use serde_json::{Map, Value};

use super::UsageError;
use crate::{cli::ServeArgs, console::Console};

/// The server's shared secret: `--token-file`, else `--token-env VAR`, else `default_var`
/// when set.
pub fn token(args: &ServeArgs, default_var: &str) -> anyhow::Result<Option<Secret>> {
    let (var, named) = match &args.token_env {
        Some(var) => (var.as_str(), true),
        None => (default_var, false),
    };
    secret::load(args.token_file.as_deref(), var, named)
        .map_err(|e| UsageError(e.to_string()).into())
}

/// `--shutdown-grace-s` as a duration, checked.
pub fn grace(args: &ServeArgs) -> anyhow::Result<Duration> {
    seconds("--shutdown-grace-s", args.shutdown_grace_s, 0.0, 3600.0)
}

/// `value` seconds of the flag `flag`, which must lie in `[min, max]`.
pub fn seconds(flag: &str, value: f64, min: f64, max: f64) -> anyhow::Result<Duration> {
    if !(min..=max).contains(&value) {
        // 1e300 as typed, not as 301 digits.
        let shown = if value.abs() < 1e9 {
            value.to_string()
        } else {
            format!("{value:e}")
        };
        return Err(UsageError(format!(
            "{flag} {shown}: give a number of seconds from {min} to {max}"
        ))
        .into());
    }
    Ok(Duration::from_secs_f64(value))
}

/// The multi-threaded runtime a server runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A future that completes on the first SIGTERM or SIGINT, for servers to stop on; a second
/// signal exits at once (status 130). Call it inside the runtime before printing the ready
/// line, so a signal sent as soon as that line appears is not fatal.
pub fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!(
            "stopping: answering the calls in flight, taking no new ones (signal again to stop now)"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            eprintln!("second signal: stopping now");
            std::process::exit(130);
        });
    })
}

/// Prints the ready line once the server serves: `listening on ADDR (k v, ...)`, or with
/// `--json` one object with `listening` and `fields`.
pub fn announce(
    console: Console,
    addr: SocketAddr,
    fields: &[(&str, Value)],
    secured: bool,
) -> anyhow::Result<()> {
    if console.json {
        let mut object = Map::new();
        object.insert("listening".into(), addr.to_string().into());
        for (key, value) in fields {
            object.insert((*key).to_owned(), value.clone());
        }
        object.insert("token".into(), secured.into());
        return crate::console::out(Value::Object(object));
    }
    let text: Vec<String> = fields
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => format!("{} {s}", key.replace('_', " ")),
            other => format!("{} {other}", key.replace('_', " ")),
        })
        .collect();
    let token = if secured { ", token required" } else { "" };
    crate::console::out(format!("listening on {addr} ({}{token})", text.join(", ")))
}

/// Settings the user gave that do not work (address, token, limits) exit 2.
pub fn usage(err: ServerError) -> anyhow::Error {
    UsageError(err.to_string()).into()
}
