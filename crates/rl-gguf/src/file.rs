//! An open GGUF file: the memory-mapped bytes, the parsed header, and tensor access by name
//! (raw bytes, or dequantised to f32 in row-major order).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::header::{self, Header};
use super::{GgufError, Metadata, TensorInfo, dequant};

/// A GGUF model file (versions 2 and 3), memory-mapped; tensors are read on demand.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
}

impl GgufFile {
    /// Maps and parses the file at `path`, checking the header and that every tensor's data
    /// lies inside the file. Tensor data is not read until asked for.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. Undefined behaviour would
        // need another process to truncate or rewrite the file while it is mapped; model files
        // are written once and then only read, and every access below is bounds-checked against
        // the length seen at open.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let Header {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
        } = header::parse(&path, &map)?;
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Self {
            metadata: Metadata::new(path.clone(), metadata),
            path,
            map,
            version,
            alignment,
            data_offset,
            tensors,
            index,
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of tensor data: `general.alignment`, default 32.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The metadata key–value pairs.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor-table entry for `name`.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        match self.index.get(name) {
            Some(&i) => Ok(&self.tensors[i]),
            None => Err(self.unknown(name)),
        }
    }

    /// The raw (still quantised) bytes of tensor `name`, borrowed from the map.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let t = self.tensor_info(name)?;
        // In bounds and within usize: checked against the file length in `open`.
        let start = (self.data_offset + t.offset) as usize;
        Ok(&self.map[start..start + t.n_bytes as usize])
    }

    /// Tensor `name` dequantised to f32, with its row-major (PyTorch) shape: GGUF's dims
    /// reversed, so a `[n_in, n_out]` ggml weight comes back as `[n_out, n_in]`.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), GgufError> {
        let t = self.tensor_info(name)?;
        let data = dequant::dequantize(t.ggml_type, self.tensor_bytes(name)?).ok_or_else(|| {
            GgufError::UnsupportedType {
                path: self.path.clone(),
                tensor: name.into(),
                ty: t.ggml_type.name().into(),
                supported: dequant::SUPPORTED.map(|t| t.name()).join(", "),
            }
        })?;
        Ok((data, t.shape()))
    }

    /// The error for a missing tensor, suggesting the names closest to `name`.
    fn unknown(&self, name: &str) -> GgufError {
        let common = |t: &TensorInfo| {
            t.name
                .bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut near: Vec<&TensorInfo> = self.tensors.iter().collect();
        near.sort_by_key(|t| std::cmp::Reverse(common(t))); // stable: file order among ties
        let lead = match near.first() {
            Some(t) if common(t) > 0 => "the closest being",
            _ => "e.g.",
        };
        let names: Vec<String> = near
            .iter()
            .take(3)
            .map(|t| format!("`{}`", t.name))
            .collect();
        GgufError::UnknownTensor {
            path: self.path.clone(),
            name: name.into(),
            count: self.tensors.len(),
            examples: if names.is_empty() {
                String::new()
            } else {
                format!(", {lead} {}", names.join(", "))
            },
        }
    }
}
