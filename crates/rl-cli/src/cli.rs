//! The command-line interface: every subcommand and option, documented for `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rl_rollout::engine::MAX_BATCH;

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
    /// Sample completions from a model for one prompt or a JSONL file of prompts; writes JSONL.
    Generate(GenerateArgs),
    /// Print per-token log-probabilities (and entropies) of a text under a model, as JSON.
    Logprobs(LogprobsArgs),
    /// Convert a model (built-in name, HF directory or .gguf file) into an HF safetensors directory that transformers loads.
    Convert(ConvertArgs),
    /// Score a model on an environment's held-out tasks: greedy accuracy and pass@k, per-sample JSONL.
    Eval(EvalArgs),
    /// Serve the config's reward function over gRPC (rl.v1.RewardService) until SIGINT or SIGTERM.
    RewardServer(RewardServerArgs),
    /// Serve one policy replica as a rollout worker over gRPC (rl.v1.RolloutService) until SIGINT or SIGTERM.
    RolloutWorker(RolloutWorkerArgs),
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
    /// Model: built-in name (smollm2-135m-instruct), HF directory or .gguf file.
    #[arg(long)]
    pub model: String,
    /// One prompt text.
    #[arg(long, conflicts_with = "file")]
    pub prompt: Option<String>,
    /// JSONL file of prompts: each line `{"prompt": "..."}` or `{"messages": [{"role": ..,
    /// "content": ..}]}` (always chat-rendered), with an optional `"id"` copied to the output.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Render each `prompt` as one user turn with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// System message put before the user turn of chat-rendered `prompt`s.
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Where to write the completions (JSONL, one line per completion, in prompt order).
    /// Default: standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Completions per prompt.
    #[arg(long, short, default_value_t = 1)]
    pub n: u32,
    /// Most tokens generated per completion.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: u32,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Drop tokens less likely than min-p times the most likely one; 0 = off.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f64,
    /// Stop at this string (cut from the text). Repeatable.
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Stop at this token id (kept in `token_ids`). Repeatable.
    #[arg(long = "stop-token-id", value_name = "ID")]
    pub stop_token_ids: Vec<u32>,
    /// Keep generating past end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Seed: completion j of prompt i draws from seed + i, so reruns repeat. Default: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write each generated token's log-probability.
    #[arg(long)]
    pub logprobs: bool,
    /// Device and precision.
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Completions decoded together (KV-cache slots), 1 to 65536. The cache holds only the
    /// slots and lengths in use, so a large value costs memory only when that much runs.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(1..=MAX_BATCH))]
    pub max_batch: i64,
    /// Tokens per completion, prompt included. Default: the model's context, at most 2048.
    #[arg(long, value_parser = clap::value_parser!(i64).range(2..))]
    pub max_seq_len: Option<i64>,
    /// On CUDA, replay decode steps as CUDA graphs (experimental: not yet verified on a GPU;
    /// a capture failure falls back to eager decoding).
    #[arg(long)]
    pub cuda_graphs: bool,
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
    /// Where and in which precision the model runs.
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// `--device` and `--dtype` of the commands that load a model.
#[derive(Debug, Args)]
pub struct PlacementArgs {
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
    /// Config naming the environment and sampling settings. Default: the built-in defaults
    /// (`configs/reference.toml`).
    pub config: Option<PathBuf>,
    /// Model or checkpoint to evaluate instead of the config's `model.path`.
    #[arg(long)]
    pub model: Option<String>,
    /// Environment to evaluate on instead of the config's `env.name` (arithmetic, countdown,
    /// jsonl, calculator); the other `env.*` keys still apply.
    #[arg(long)]
    pub env: Option<String>,
    /// Override a config key. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Held-out tasks to evaluate.
    #[arg(long, short, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub n: u64,
    /// Samples per task for pass@k (at `rollout.temperature`, 1 if that is 0); 1 = greedy only.
    #[arg(long, short, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Per-sample JSONL. Default: `<run.runs_dir>/eval-<env>.jsonl` (a new name if taken).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `rl rollout-worker`.
#[derive(Debug, Args)]
pub struct RolloutWorkerArgs {
    /// Address to listen on: HOST:PORT (port 0 picks a free port, which the ready line names),
    /// or a bare PORT on 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Model: built-in name (smollm2-135m-instruct), HF directory or .gguf file.
    #[arg(long)]
    pub model: String,
    /// Where and in which precision the model runs.
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Completions decoded together (KV-cache slots), 1 to 65536. The cache holds only the
    /// slots and lengths in use, so a large value costs memory only when that much runs.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(1..=MAX_BATCH))]
    pub max_batch: i64,
    /// Tokens per completion, prompt included. Default: the model's context, at most 2048.
    #[arg(long, value_parser = clap::value_parser!(i64).range(2..))]
    pub max_seq_len: Option<i64>,
    /// Largest gRPC message received or sent, in MiB (weight updates are chunked under it).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub max_message_mib: u32,
    /// The shared secret and how the server stops.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What every `rl` server takes alike: its shared secret and how it stops.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// File holding a shared secret; every call must then carry `authorization: Bearer
    /// <secret>`.
    #[arg(long, value_name = "FILE", conflicts_with = "token_env")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the shared secret instead. Default: the server's own
    /// ($RL_ROLLOUT_TOKEN, $RL_REWARD_TOKEN) when it is set; set but blank is refused. Without a
    /// secret any client that reaches the port is served (and listening beyond loopback logs a
    /// warning).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// On SIGINT or SIGTERM, how long the calls in flight may take before the server stops
    /// anyway, in seconds (0 to 3600); a second signal stops it at once.
    #[arg(long, default_value_t = 10.0)]
    pub shutdown_grace_s: f64,
}

/// `rl reward-server`.
#[derive(Debug, Args)]
pub struct RewardServerArgs {
    /// Config whose `[env]` and `[reward]` define the scorer (reward.kind = "rule").
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config key, e.g. `--set reward.format_weight=0.1`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Address to listen on: HOST:PORT (port 0 picks a free port, which the ready line names),
    /// or a bare PORT on 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub listen: String,
    /// Batches scored at the same time, each on its own thread. Default: the CPU cores.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_concurrency: Option<u32>,
    /// Batches that may wait for a slot; more are refused at once (RESOURCE_EXHAUSTED).
    /// Default: 4 × --max-concurrency.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_queue: Option<u32>,
    /// Items one request may hold (clients split bigger batches).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_batch: u32,
    /// Text one item may hold (response, prompt, answer, metadata), in KiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_item_kib: u32,
    /// Largest gRPC message received or sent, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub max_message_mib: u32,
    /// Longest time one request may take, queueing included (then DEADLINE_EXCEEDED), in
    /// seconds (0.001 to 86400); a client's shorter deadline wins.
    #[arg(long, default_value_t = 60.0)]
    pub max_request_s: f64,
    /// The shared secret and how the server stops.
    #[command(flatten)]
    pub serve: ServeArgs,
}
