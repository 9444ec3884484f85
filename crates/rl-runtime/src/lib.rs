//! The controller of `rl`: the [`trainer`] that sets a run up and drives its step loop over the
//! roles, the run directory it writes into, the metric sinks (TensorBoard event files,
//! `metrics.jsonl`) and the run's scorer ([`reward::scorer`]).

pub mod metrics;
pub mod reward;
pub mod run_dir;
pub mod trainer;
pub mod weight_group;

pub use metrics::{MetricSink, Metrics, StepMetrics};
pub use run_dir::{RunDir, RunDirError};
