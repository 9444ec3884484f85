//! Helpers shared by rl-model's tests: reference JSON (written by scripts/parity/*.py) as tensors,
//! and transformers' answers from scripts/parity/reward_model_reference.py run at test time.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use tch::{Kind, Tensor};

/// Reads a reference JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `json[key]`, a list of numbers (`[n]`) or of equal-length rows (`[rows, n]`), as a tensor.
pub fn tensor(json: &serde_json::Value, key: &str, kind: Kind) -> Tensor {
    let rows = json[key]
        .as_array()
        .unwrap_or_else(|| panic!("reference has no list {key:?}"));
    let number = |v: &serde_json::Value| {
        v.as_f64()
            .unwrap_or_else(|| panic!("{key}: {v} is not a number"))
    };
    let flat: Vec<f64> = rows
        .iter()
        .flat_map(|r| match r.as_array() {
            Some(row) => row.iter().map(number).collect(),
            None => vec![number(r)],
        })
        .collect();
    let t = Tensor::from_slice(&flat).to_kind(kind);
    if rows.first().is_some_and(|r| r.is_array()) {
        t.reshape([rows.len() as i64, -1])
    } else {
        t
    }
}

/// `$RL_TORCH_VENV/bin/python scripts/parity/reward_model_reference.py mode dir request`, parsed.
pub fn transformers(mode: &str, dir: &Path, request: &serde_json::Value) -> serde_json::Value {
    let python = rl_test_support::python();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let req = tmp.path().join("request.json");
    std::fs::write(&req, request.to_string()).expect("request written");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/parity/reward_model_reference.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([mode.as_ref(), dir.as_os_str(), req.as_os_str()])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reward_model_reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from reward_model_reference.py")
}

/// A 2-D i64 tensor as rows (for JSON requests).
pub fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).expect("a 2-D i64 tensor")
}
