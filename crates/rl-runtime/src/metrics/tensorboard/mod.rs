//! A TensorBoard event-file writer: scalars, text (Markdown) and histograms, readable by
//! TensorBoard and its `EventAccumulator`. It encodes the event protos in rl-proto (compiled by
//! protox) rather than using `tensorboard-rs`, which cannot write text summaries and pulls in an
//! image stack and a second protobuf runtime.

mod histogram;
mod record;

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use prost::Message;
use rl_proto::tensorboard::{
    DataType, Event, Summary, SummaryMetadata, TensorProto,
    event::What,
    summary::{Value, value::Data},
    summary_metadata::PluginData,
};

use super::{MetricSink, StepMetrics};

/// Appends events to one `events.out.tfevents.*` file in a log directory.
pub struct TensorBoardWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl TensorBoardWriter {
    /// Creates a new event file in `dir` (which must exist); earlier files there are kept, and
    /// TensorBoard reads them all in order.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let host = host.trim();
        let host = if host.is_empty() { "localhost" } else { host };
        let secs = now().floor() as u64;
        let path = (0..)
            .map(|n| {
                dir.join(format!(
                    "events.out.tfevents.{secs}.{host}.{}.{n}",
                    std::process::id()
                ))
            })
            .find(|p| !p.exists())
            .unwrap_or_else(|| dir.join("events.out.tfevents"));
        let file = File::options().write(true).create_new(true).open(&path)?;
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        writer.write_event(0, What::FileVersion("brain.Event:2".into()))?;
        writer.out.flush()?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_event(&mut self, step: u64, what: What) -> io::Result<()> {
        let event = Event {
            wall_time: now(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(what),
        };
        record::write_record(&mut self.out, &event.encode_to_vec())
    }

    fn write_values(&mut self, step: u64, value: Vec<Value>) -> io::Result<()> {
        if value.is_empty() {
            return Ok(());
        }
        self.write_event(step, What::Summary(Summary { value }))
    }
}

impl MetricSink for TensorBoardWriter {
    fn write(&mut self, step: u64, metrics: &StepMetrics) -> io::Result<()> {
        let scalars = metrics.scalars.iter().map(|(tag, &v)| Value {
            tag: tag.clone(),
            metadata: None,
            data: Some(Data::SimpleValue(v as f32)),
        });
        let texts = metrics.texts.iter().map(|(tag, text)| Value {
            tag: tag.clone(),
            metadata: Some(plugin("text", 2)),
            data: Some(Data::Tensor(TensorProto {
                dtype: DataType::DtString.into(),
                tensor_shape: None,
                string_val: vec![text.clone().into_bytes()],
            })),
        });
        let histograms = metrics.histograms.iter().filter_map(|(tag, values)| {
            histogram::histogram(values).map(|h| Value {
                tag: tag.clone(),
                metadata: None,
                data: Some(Data::Histo(h)),
            })
        });
        self.write_values(step, scalars.chain(texts).chain(histograms).collect())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for TensorBoardWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

fn plugin(name: &str, data_class: i32) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: name.into(),
            content: Vec::new(),
        }),
        data_class,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
