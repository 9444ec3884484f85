//! Parsing a GGUF header (versions 2 and 3, little-endian): magic, version, counts, metadata
//! key–value pairs, tensor table, alignment and the start of the data section.
//!
//! Layout (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>): `"GGUF"`, `u32`
//! version, `u64` tensor count, `u64` metadata count; each pair is a string key, a `u32` value
//! type and the value; each tensor is a string name, `u32` n_dims, `u64` dims, `u32` ggml type,
//! `u64` offset. Strings are a `u64` byte length and UTF-8 bytes. The data section starts at the
//! next multiple of `general.alignment` (default 32). Every length is checked against the bytes
//! left before anything is allocated, so a corrupt file gives an error, never a panic or a
//! huge allocation.

use std::collections::HashSet;
use std::path::Path;

use super::metadata::{Array, Value};
use super::tensor::{TensorInfo, byte_size};
use super::{GgmlType, GgufError};

/// `"GGUF"` as the first four bytes.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Deepest nesting of metadata arrays accepted (bounds recursion on crafted files).
const MAX_ARRAY_DEPTH: usize = 16;

/// What the header says.
pub(crate) struct Header {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
}

/// Parses the header of the GGUF bytes `buf` (the whole file), checking that every tensor's
/// data lies inside the file.
pub(crate) fn parse(path: &Path, buf: &[u8]) -> Result<Header, GgufError> {
    if buf.len() < 4 || buf[..4] != MAGIC {
        return Err(GgufError::NotGguf {
            path: path.into(),
            found: buf[..buf.len().min(4)].to_vec(),
        });
    }
    let mut c = Cursor {
        path,
        buf,
        pos: 4,
        what: "the version".into(),
    };
    let version = c.u32()?;
    if !matches!(version, 2 | 3) {
        let swapped = version.swap_bytes();
        return Err(if matches!(swapped, 2 | 3) {
            GgufError::BigEndian {
                path: path.into(),
                version: swapped,
            }
        } else {
            GgufError::UnsupportedVersion {
                path: path.into(),
                version,
            }
        });
    }
    c.what = "the tensor count".into();
    let n_tensors = c.u64()?;
    c.what = "the metadata count".into();
    let n_kv = c.u64()?;

    // Each pair needs at least a key length and a value type; each tensor at least 24 bytes.
    c.what = format!("{n_kv} metadata pairs");
    c.need(n_kv.saturating_mul(12))?;
    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut keys = HashSet::new();
    for i in 0..n_kv {
        c.what = format!("metadata key #{i}");
        let key = c.string()?;
        c.what = format!("the value of metadata key `{key}`");
        let ty = c.u32()?;
        let value = c.value(ty, 0)?;
        if !keys.insert(key.clone()) {
            return Err(c.malformed(format!("metadata key `{key}` appears twice")));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_i128() {
            Some(a) if a > 0 && (a as u64).is_power_of_two() && a <= u32::MAX.into() => a as u64,
            _ => {
                return Err(c.malformed(format!(
                    "general.alignment is {}; it must be a power of two (default 32)",
                    v.describe()
                )));
            }
        },
    };

    c.what = format!("{n_tensors} tensor infos");
    c.need(n_tensors.saturating_mul(24))?;
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut names = HashSet::new();
    for i in 0..n_tensors {
        c.what = format!("the name of tensor #{i}");
        let name = c.string()?;
        c.what = format!("the info of tensor `{name}`");
        let n_dims = c.u32()?;
        if n_dims > MAX_DIMS {
            return Err(c.malformed(format!(
                "tensor `{name}` has {n_dims} dims; ggml allows at most {MAX_DIMS}"
            )));
        }
        let dims = (0..n_dims)
            .map(|_| c.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let type_id = c.u32()?;
        let offset = c.u64()?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            c.malformed(format!(
                "tensor `{name}` has ggml type id {type_id}, which ggml does not define"
            ))
        })?;
        let n_bytes = byte_size(ggml_type, &dims).ok_or_else(|| {
            c.malformed(format!(
                "tensor `{name}` has dims {dims:?}, which do not fit {ggml_type} blocks of {} elements (or overflow)",
                ggml_type.block_size()
            ))
        })?;
        if offset % alignment != 0 {
            return Err(c.malformed(format!(
                "tensor `{name}` starts at data offset {offset}, not a multiple of the alignment {alignment}"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(c.malformed(format!("tensor name `{name}` appears twice")));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            n_bytes,
        });
    }

    let data_offset = (c.pos as u64).next_multiple_of(alignment);
    let len = buf.len() as u64;
    for t in &tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.n_bytes));
        if end.is_none_or(|end| end > len) {
            return Err(GgufError::TensorPastEnd {
                path: path.into(),
                tensor: t.name.clone(),
                start: data_offset.saturating_add(t.offset),
                end: data_offset
                    .saturating_add(t.offset)
                    .saturating_add(t.n_bytes),
                len,
            });
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// A read position in the file; `what` names the item being read, for errors.
struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
    what: String,
}

impl<'a> Cursor<'a> {
    fn malformed(&self, what: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.into(),
            what,
        }
    }

    /// Fails unless `n` more bytes are left.
    fn need(&self, n: u64) -> Result<(), GgufError> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(GgufError::Truncated {
                path: self.path.into(),
                what: self.what.clone(),
                offset: self.pos as u64,
                needed: n,
                len: self.buf.len() as u64,
            });
        }
        Ok(())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        self.need(n)?;
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.u64()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| self.malformed(format!("{} is not valid UTF-8 ({e})", self.what)))
    }

    /// Reads `n` fixed-size elements with `f`, after checking they fit.
    fn vec<T, const N: usize>(&mut self, n: u64, f: fn([u8; N]) -> T) -> Result<Vec<T>, GgufError> {
        self.need(n.saturating_mul(N as u64))?;
        (0..n).map(|_| self.array().map(f)).collect()
    }

    /// A value of GGUF type `ty`; `depth` counts enclosing arrays.
    fn value(&mut self, ty: u32, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array()?)),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(u32::from_le_bytes(self.array()?)),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => Value::Bool(self.array::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => Value::Array(self.array_value(depth)?),
            10 => Value::U64(u64::from_le_bytes(self.array()?)),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            _ => {
                return Err(self.malformed(format!(
                    "{} has value type {ty}; GGUF defines types 0 to 12",
                    self.what
                )));
            }
        })
    }

    /// An array: `u32` element type, `u64` length, elements.
    fn array_value(&mut self, depth: usize) -> Result<Array, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.malformed(format!(
                "{} nests arrays deeper than {MAX_ARRAY_DEPTH} levels",
                self.what
            )));
        }
        let ty = self.u32()?;
        let n = self.u64()?;
        Ok(match ty {
            0 => Array::U8(self.vec(n, u8::from_le_bytes)?),
            1 => Array::I8(self.vec(n, i8::from_le_bytes)?),
            2 => Array::U16(self.vec(n, u16::from_le_bytes)?),
            3 => Array::I16(self.vec(n, i16::from_le_bytes)?),
            4 => Array::U32(self.vec(n, u32::from_le_bytes)?),
            5 => Array::I32(self.vec(n, i32::from_le_bytes)?),
            6 => Array::F32(self.vec(n, f32::from_le_bytes)?),
            7 => Array::Bool(self.vec(n, |[b]: [u8; 1]| b != 0)?),
            8 => {
                self.need(n.saturating_mul(8))?;
                Array::String((0..n).map(|_| self.string()).collect::<Result<_, _>>()?)
            }
            9 => {
                self.need(n.saturating_mul(12))?;
                Array::Array(
                    (0..n)
                        .map(|_| self.array_value(depth + 1))
                        .collect::<Result<_, _>>()?,
                )
            }
            10 => Array::U64(self.vec(n, u64::from_le_bytes)?),
            11 => Array::I64(self.vec(n, i64::from_le_bytes)?),
            12 => Array::F64(self.vec(n, f64::from_le_bytes)?),
            _ => {
                return Err(self.malformed(format!(
                    "{} is an array with element type {ty}; GGUF defines types 0 to 12",
                    self.what
                )));
            }
        })
    }
}
