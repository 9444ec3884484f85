//! The `rl` binary: parses the command line, sets up the console, runs the subcommand, and turns
//! any error into one readable paragraph and a non-zero exit code (2: bad input, 1: failure).

mod cli;
mod commands;
mod console;
mod placement;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use console::Console;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let console = Console {
        quiet: cli.quiet,
        json: cli.json,
    };
    console.init(cli.verbose);
    let result = match cli.command {
        Command::Train(args) => commands::train::run(args, console),
        Command::Doctor => commands::doctor::run(console),
        Command::Generate(args) => commands::generate::run(args, console),
        Command::Logprobs(args) => commands::logprobs::run(args, console),
        Command::Convert(args) => commands::convert::run(args, console),
        Command::Eval(args) => commands::eval::run(args, console),
        Command::RewardServer(args) => commands::reward_server::run(args, console),
        Command::RolloutWorker(args) => commands::rollout_worker::run(args, console),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = report(&err);
            if console.json {
                eprintln!(
                    "{}",
                    serde_json::json!({ "level": "ERROR", "error": message })
                );
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The error and its causes, `outer: cause: ...`, leaving out a cause whose text the message
/// already holds (errors that quote their source would otherwise say it twice).
fn report(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

/// 2 when the user's input (config, arguments) is at fault, 1 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_input = err.downcast_ref::<rl_core::ConfigError>().is_some()
        || err.downcast_ref::<commands::UsageError>().is_some()
        || err.downcast_ref::<rl_runtime::RunDirError>().is_some()
        || err.downcast_ref::<rl_model::DeviceError>().is_some()
        || err
            .downcast_ref::<rl_runtime::trainer::TrainError>()
            .is_some_and(|e| matches!(e, rl_runtime::trainer::TrainError::Setup(_)))
        || err
            .downcast_ref::<rl_model::ModelError>()
            .is_some_and(|e| !matches!(e, rl_model::ModelError::Torch(_)));
    if bad_input { 2 } else { 1 }
}
