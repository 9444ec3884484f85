//! Our TensorBoard event files, read back by TensorBoard's own `EventAccumulator`.

mod common;

use rl_runtime::{MetricSink, Metrics, StepMetrics, metrics::TensorBoardWriter};

#[test]
fn tensorboard_reads_back_scalars_texts_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = TensorBoardWriter::create(dir.path()).unwrap();
    for step in 1..=3u64 {
        let m = StepMetrics::default()
            .scalar("reward/mean", step as f64 * 0.5)
            .scalar("loss/policy", -(step as f64))
            .histogram(
                "advantages",
                (0..100)
                    .map(|i| f64::from(i) / 10.0 - step as f64)
                    .collect(),
            );
        writer.write(step, &m).unwrap();
    }
    writer
        .write(
            3,
            &StepMetrics::default().text("samples", "**Q:** 2+2?\n\nA: 4 ✓"),
        )
        .unwrap();
    writer.flush().unwrap();

    let got = common::read_events(dir.path());
    assert_eq!(
        got["scalars"]["reward/mean"],
        serde_json::json!([[1, 0.5], [2, 1.0], [3, 1.5]])
    );
    assert_eq!(
        got["scalars"]["loss/policy"][2],
        serde_json::json!([3, -3.0])
    );
    let hist = &got["histograms"]["advantages"];
    assert_eq!(hist.as_array().unwrap().len(), 3);
    assert_eq!(hist[0]["num"], 100.0);
    assert_eq!(hist[0]["bucket_total"], 100.0);
    assert_eq!(hist[0]["min"], -1.0);
    assert!((hist[0]["max"].as_f64().unwrap() - 8.9).abs() < 1e-9);
    assert_eq!(
        got["texts"]["samples"],
        serde_json::json!([[3, "**Q:** 2+2?\n\nA: 4 ✓"]])
    );
}

#[test]
fn a_resumed_run_adds_a_file_and_tensorboard_reads_both() {
    let dir = tempfile::tempdir().unwrap();
    for step in [1u64, 2] {
        let mut metrics = Metrics::open(dir.path(), true, true).unwrap();
        metrics
            .write(step, &StepMetrics::default().scalar("x", step as f64))
            .unwrap();
    }
    let files = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("events.out.tfevents")
    });
    assert_eq!(files.count(), 2);
    let got = common::read_events(dir.path());
    assert_eq!(got["scalars"]["x"], serde_json::json!([[1, 1.0], [2, 2.0]]));
    let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2], "metrics.jsonl is appended to, not replaced");
}
