//! The command-line interface: every subcommand and option, documented for `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// rl — reinforcement learning for LLM post-training (PPO, GRPO, RLOO, REINFORCE++, DAPO).
#[derive(Debug, Parser)]
#[command(name = "rl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print only warnings and errors; no progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Machine-readable output: logs as JSON lines on stderr, results as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a policy as CONFIG describes (a TOML file; see configs/ and configs/reference.toml).
    Train(TrainArgs),
    /// Sample completions from a model. [not yet available: comes with the generation engine]
    Generate(GenerateArgs),
    /// Print per-token log-probabilities (and entropies) of a text under a model, as JSON.
    Logprobs(LogprobsArgs),
    /// Convert a model (HF directory; GGUF next) into an HF safetensors directory that transformers loads.
    Convert(ConvertArgs),
    /// Score a model or checkpoint on an environment's held-out prompts. [not yet available: comes with the training loop]
    Eval(EvalArgs),
    /// Serve a reward function over gRPC (rl.v1) for remote trainers. [not yet available: comes with the gRPC runtime]
    RewardServer(ServeArgs),
    /// Serve a rollout worker over gRPC (rl.v1) for a remote controller. [not yet available: comes with the gRPC runtime]
    RolloutWorker(ServeArgs),
    /// Report the libtorch in use, CPU and CUDA devices, and check bf16 matmul and attention on each.
    Doctor,
}

/// `rl train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's TOML config. Keys left out take their defaults.
    pub config: PathBuf,
    /// Override a config key, e.g. `--set algorithm.clip_ratio=0.3`. Repeatable; applied in order.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory. Default: `<run.runs_dir>/<run.name>`, the name defaulting to
    /// `<config stem>-<UTC time>`.
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in `--run-dir` (or `runs/<run.name>`) instead of starting a new one.
    #[arg(long)]
    pub resume: bool,
}

/// `rl generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model: built-in name, HF directory or .gguf file.
    #[arg(long)]
    pub model: String,
    /// Prompt text.
    #[arg(long, conflicts_with = "file")]
    pub prompt: Option<String>,
    /// File with one prompt per line.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Wrap each prompt in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Tokens to generate per prompt.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: u32,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
}

/// `rl logprobs`.
#[derive(Debug, Args)]
pub struct LogprobsArgs {
    /// Model: built-in name (smollm2-135m-instruct), HF directory or .gguf file.
    #[arg(long)]
    pub model: String,
    /// Text to score.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// File whose contents are scored.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Render the text as one user turn with the model's chat template first.
    #[arg(long)]
    pub chat: bool,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Precision: auto (bf16 on CUDA, f32 on CPU), f32, bf16 or f16.
    #[arg(long, default_value = "auto", value_parser = ["auto", "f32", "bf16", "f16"])]
    pub dtype: String,
}

/// `rl convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input: .gguf file or HF directory.
    pub input: PathBuf,
    /// Output HF directory (created; must be absent or empty).
    pub out_dir: PathBuf,
    /// Precision of the written weights: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
    pub dtype: String,
}

/// `rl eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Config naming the environment and sampling settings.
    pub config: PathBuf,
    /// Model or checkpoint to evaluate instead of the config's `model.path`.
    #[arg(long)]
    pub model: Option<String>,
    /// Override a config key. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// `rl reward-server` and `rl rollout-worker`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config of the run this server belongs to.
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
}
