//! Argument checks shared by the algorithm functions: shapes, masks, finiteness, parameter
//! ranges, and the host copies the sequential recurrences run on.

use tch::{Device, Kind, Tensor};

use super::error::{MathError, Result};

/// `(b, t)` of a 2-d tensor, or a shape error naming it.
pub(crate) fn dims2(name: &'static str, x: &Tensor) -> Result<(i64, i64)> {
    match x.size()[..] {
        [b, t] => Ok((b, t)),
        _ => Err(shape_error(name, x, "a 2-d [b, t] tensor".into())),
    }
}

/// `b` of a 1-d tensor, or a shape error naming it.
pub(crate) fn dims1(name: &'static str, x: &Tensor) -> Result<i64> {
    match x.size()[..] {
        [b] => Ok(b),
        _ => Err(shape_error(name, x, "a 1-d [b] tensor".into())),
    }
}

/// Fails unless `x` has exactly `shape`; `of` says where that shape comes from (`the mask`).
pub(crate) fn expect(name: &'static str, x: &Tensor, shape: &[i64], of: &str) -> Result<()> {
    if x.size() == shape {
        Ok(())
    } else {
        Err(shape_error(name, x, format!("{shape:?} ({of})")))
    }
}

fn shape_error(name: &'static str, x: &Tensor, expected: String) -> MathError {
    MathError::Shape {
        name,
        got: x.size(),
        expected,
    }
}

/// Fails with a parameter error unless `ok`.
pub(crate) fn param(name: &'static str, value: f64, ok: bool, rule: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(MathError::Param { name, value, rule })
    }
}

/// The mask as booleans: nonzero = valid.
pub(crate) fn valid(mask: &Tensor) -> Tensor {
    mask.ne(0)
}

/// `x` as f32 on `valid`'s device with every invalid position set to 0, so that whatever
/// padding holds (even NaN) reaches neither the result nor the gradient.
pub(crate) fn zero_invalid(x: &Tensor, valid: &Tensor) -> Tensor {
    x.to_device(valid.device())
        .to_kind(Kind::Float)
        .masked_fill(&valid.logical_not(), 0.0)
}

/// Counts the valid positions and checks that every input is finite there, with one
/// device-to-host copy. Each input has `valid`'s shape (any device). Returns the count.
pub(crate) fn scan(valid: &Tensor, inputs: &[(&'static str, &Tensor)]) -> Result<i64> {
    let invalid = valid.logical_not();
    let mut flags = vec![valid.sum(Kind::Int64)];
    for (_, x) in inputs {
        let finite = x.to_device(valid.device()).isfinite();
        flags.push(finite.logical_or(&invalid).all().to_kind(Kind::Int64));
    }
    let flags = Vec::<i64>::try_from(&Tensor::stack(&flags, 0).to_device(Device::Cpu))?;
    if let Some(i) = flags[1..].iter().position(|&ok| ok == 0) {
        return Err(MathError::NonFinite { name: inputs[i].0 });
    }
    Ok(flags[0])
}

/// Checks per-token `inputs` against `mask` (`[b, t]`): the same shape, finite at valid
/// positions, and at least `needs` valid positions for `op`. Returns the valid positions (bool)
/// and their count, with one device-to-host copy.
pub(crate) fn token_inputs(
    mask: &Tensor,
    inputs: &[(&'static str, &Tensor)],
    op: &'static str,
    needs: i64,
) -> Result<(Tensor, i64)> {
    let (b, t) = dims2("mask", mask)?;
    for &(name, x) in inputs {
        expect(name, x, &[b, t], "the mask's shape")?;
    }
    let valid = valid(mask);
    let n = scan(&valid, inputs)?;
    enough("mask", op, n, needs)?;
    Ok((valid, n))
}

/// Fails with a non-finite error if any element of `x` is NaN or ±inf.
pub(crate) fn all_finite(name: &'static str, x: &Tensor) -> Result<()> {
    if x.numel() == 0 || x.isfinite().all().int64_value(&[]) != 0 {
        Ok(())
    } else {
        Err(MathError::NonFinite { name })
    }
}

/// Fails with an empty-mask error unless `valid >= needs`.
pub(crate) fn enough(name: &'static str, op: &'static str, valid: i64, needs: i64) -> Result<()> {
    if valid >= needs {
        Ok(())
    } else {
        Err(MathError::EmptyMask {
            name,
            op,
            valid,
            needs,
        })
    }
}

/// A host copy of `x` (any float kind, any shape), flattened, as f32 and cut off from autograd.
pub(crate) fn host(x: &Tensor) -> Result<Vec<f32>> {
    let flat = x
        .detach()
        .to_kind(Kind::Float)
        .reshape([-1])
        .to_device(Device::Cpu);
    Ok(Vec::<f32>::try_from(&flat)?)
}

/// A host copy of `valid` (bool), flattened.
pub(crate) fn host_valid(valid: &Tensor) -> Result<Vec<bool>> {
    let flat = valid
        .to_kind(Kind::Int8)
        .reshape([-1])
        .to_device(Device::Cpu);
    Ok(Vec::<i8>::try_from(&flat)?
        .into_iter()
        .map(|v| v != 0)
        .collect())
}

/// Fails with a non-finite error if any of `values` at a `valid` position is NaN or ±inf.
pub(crate) fn host_finite(name: &'static str, values: &[f32], valid: &[bool]) -> Result<()> {
    let bad = values
        .iter()
        .zip(valid)
        .any(|(x, &ok)| ok && !x.is_finite());
    if bad {
        Err(MathError::NonFinite { name })
    } else {
        Ok(())
    }
}

/// A `shape` f32 tensor on `device` from host data.
pub(crate) fn to_device(data: &[f32], shape: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(data).reshape(shape).to_device(device)
}
