//! Metric sinks: what a training step reports (scalars, text, histograms) and the places it goes.

mod jsonl;
mod tensorboard;

use std::{collections::BTreeMap, io, path::Path};

pub use jsonl::JsonlWriter;
pub use tensorboard::TensorBoardWriter;

/// Everything one step reports, keyed by tag (`reward/mean`, `loss/policy`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepMetrics {
    /// Single numbers.
    pub scalars: BTreeMap<String, f64>,
    /// Markdown text (configs, sample generations).
    pub texts: BTreeMap<String, String>,
    /// Raw values summarised as histograms (`[n]` each).
    pub histograms: BTreeMap<String, Vec<f64>>,
}

impl StepMetrics {
    /// Adds a scalar.
    pub fn scalar(mut self, tag: impl Into<String>, value: f64) -> Self {
        self.scalars.insert(tag.into(), value);
        self
    }

    /// Adds a text.
    pub fn text(mut self, tag: impl Into<String>, text: impl Into<String>) -> Self {
        self.texts.insert(tag.into(), text.into());
        self
    }

    /// Adds a histogram of `values`.
    pub fn histogram(mut self, tag: impl Into<String>, values: Vec<f64>) -> Self {
        self.histograms.insert(tag.into(), values);
        self
    }
}

/// A destination for metrics. Implementations write through, so a crash loses nothing flushed.
pub trait MetricSink: Send {
    /// Records the metrics of `step`.
    fn write(&mut self, step: u64, metrics: &StepMetrics) -> io::Result<()>;
    /// Pushes buffered data to disk.
    fn flush(&mut self) -> io::Result<()>;
}

/// The sinks of one run, written together.
#[derive(Default)]
pub struct Metrics {
    sinks: Vec<Box<dyn MetricSink>>,
}

impl Metrics {
    /// The sinks `[logging]` asks for, in run directory `dir`.
    pub fn open(dir: &Path, tensorboard: bool, jsonl: bool) -> io::Result<Self> {
        let mut metrics = Self::default();
        if tensorboard {
            metrics
                .sinks
                .push(Box::new(TensorBoardWriter::create(dir)?));
        }
        if jsonl {
            metrics
                .sinks
                .push(Box::new(JsonlWriter::append(&dir.join("metrics.jsonl"))?));
        }
        Ok(metrics)
    }

    /// Adds a sink (e.g. a user's own).
    pub fn push(&mut self, sink: Box<dyn MetricSink>) {
        self.sinks.push(sink);
    }

    /// Writes `metrics` of `step` to every sink.
    pub fn write(&mut self, step: u64, metrics: &StepMetrics) -> io::Result<()> {
        self.sinks
            .iter_mut()
            .try_for_each(|s| s.write(step, metrics))
    }

    /// Flushes every sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.sinks.iter_mut().try_for_each(|s| s.flush())
    }
}
