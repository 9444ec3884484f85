//! Console output: `tracing` logs (human or JSON lines, on stderr) and progress bars that hide
//! themselves under `--quiet`, `--json` or when stderr is not a terminal.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// How the user asked to be talked to.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    /// `--quiet`.
    pub quiet: bool,
    /// `--json`.
    pub json: bool,
}

impl Console {
    /// Installs the log subscriber: `RUST_LOG` if set, else info (warn with `--quiet`).
    pub fn init(self, verbose: u8) {
        let level = match (self.quiet, verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal());
        if self.json {
            builder.json().flatten_event(true).init();
        } else {
            builder.with_target(false).compact().init();
        }
    }

    /// A progress bar over `len` items (hidden when quiet, JSON or not a terminal).
    pub fn progress(self, len: u64, what: &str) -> ProgressBar {
        if self.quiet || self.json {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        bar
    }
}

/// Writes `text` and a newline to stdout. A closed pipe (`rl ... | head`) ends the output
/// quietly instead of failing.
pub fn out(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
