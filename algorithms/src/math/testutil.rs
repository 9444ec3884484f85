//! Helpers of the unit tests: small tensors from literals, and closeness checks.

use tch::{Kind, Tensor};

/// NaN, standing in for whatever garbage padding positions hold.
pub const PAD: f32 = f32::NAN;

/// A `[rows, cols]` f32 tensor.
pub fn t2(rows: &[&[f32]]) -> Tensor {
    let cols = rows.first().map_or(0, |r| r.len()) as i64;
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_slice(&flat).reshape([rows.len() as i64, cols])
}

/// A `[n]` f32 tensor.
pub fn t1(xs: &[f32]) -> Tensor {
    Tensor::from_slice(xs)
}

/// A `[n]` i64 tensor of group ids.
pub fn ids(xs: &[i64]) -> Tensor {
    Tensor::from_slice(xs)
}

/// The flattened values of `x` as f32.
pub fn values(x: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&x.detach().to_kind(Kind::Float).reshape([-1])).unwrap()
}

/// The value of a one-element tensor.
pub fn scalar(x: &Tensor) -> f64 {
    x.double_value(&[])
}

/// Asserts `got` (flattened) equals `want` to within 1e-5 (absolute), NaN never equal.
#[track_caller]
pub fn assert_close(got: &Tensor, want: &[f32]) {
    let got = values(got);
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5,
            "element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

/// Asserts a one-element tensor equals `want` to within 1e-5.
#[track_caller]
pub fn assert_scalar(got: &Tensor, want: f64) {
    let g = scalar(got);
    assert!((g - want).abs() <= 1e-5, "got {g}, want {want}");
}
