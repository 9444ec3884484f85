//! The controller side of `rl`: the run directory a training run writes into, the metric sinks
//! (TensorBoard event files, `metrics.jsonl`), the run's scorer ([`reward::scorer`]), and the driver that sets a run up.

pub mod metrics;
pub mod reward;
pub mod run_dir;
pub mod trainer;

pub use metrics::{MetricSink, Metrics, StepMetrics};
pub use run_dir::{RunDir, RunDirError};
