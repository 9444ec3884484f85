//! Helpers shared by rl-model's tests: reference JSON (written by scripts/parity/*.py) as tensors.

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
