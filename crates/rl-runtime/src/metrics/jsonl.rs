//! `metrics.jsonl`: one JSON object per logged step, `{"step": 3, "time": <unix s>, "<tag>": v, ...}`,
//! for scripts and notebooks that do not want to parse event files.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

use super::{MetricSink, StepMetrics};

/// Appends scalar metrics to a JSON-lines file; texts and histograms are left to TensorBoard.
pub struct JsonlWriter {
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Opens `path` for appending (a resumed run continues the same file).
    pub fn append(path: &Path) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Self {
            out: BufWriter::new(file),
        })
    }
}

impl MetricSink for JsonlWriter {
    fn write(&mut self, step: u64, metrics: &StepMetrics) -> io::Result<()> {
        if metrics.scalars.is_empty() {
            return Ok(());
        }
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut line = Map::new();
        line.insert("step".into(), step.into());
        line.insert("time".into(), time.into());
        for (tag, &v) in &metrics.scalars {
            // JSON has no NaN/inf: write them as null rather than corrupting the line.
            line.insert(
                tag.clone(),
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
            );
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
