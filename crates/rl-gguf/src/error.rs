//! Errors of the GGUF reader: every one names the file and says what to do about it.

use std::path::PathBuf;

/// What can go wrong opening a GGUF file or reading a tensor or metadata value from it.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("cannot read GGUF file {path}: {source}. Check that the path exists and is readable")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error(
        "{path} is not a GGUF file: it starts with {found:02x?} instead of the magic \"GGUF\" (47 47 55 46). Pass a .gguf model file (e.g. from scripts/fetch-model.sh)"
    )]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// The bytes found where the magic should be (fewer when the file is shorter).
        found: Vec<u8>,
    },
    /// A GGUF version this reader does not know.
    #[error(
        "{path} is GGUF version {version}, but this reader supports versions 2 and 3. Re-export the model with a current llama.cpp / gguf-py (convert_hf_to_gguf.py writes version 3)"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version field as read (little-endian).
        version: u32,
    },
    /// A big-endian GGUF file (version field byte-swapped).
    #[error(
        "{path} is a big-endian GGUF file (version {version} byte-swapped); this reader supports only little-endian GGUF. Convert it on a little-endian machine or with gguf-py's gguf_convert_endian.py"
    )]
    BigEndian {
        /// The file.
        path: PathBuf,
        /// The version, once byte-swapped.
        version: u32,
    },
    /// The header, metadata or tensor table runs past the end of the file.
    #[error(
        "{path} is truncated: reading {what} at byte {offset} needs at least {needed} byte(s), but the file is {len} bytes long. The download or copy is probably incomplete; fetch the file again"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// A tensor's data lies (partly) past the end of the file.
    #[error(
        "{path} is truncated: tensor `{tensor}` occupies bytes {start}..{end}, but the file is {len} bytes long. The download or copy is probably incomplete; fetch the file again"
    )]
    TensorPastEnd {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// First byte of its data (absolute).
        start: u64,
        /// One past its last byte (absolute).
        end: u64,
        /// The file's length.
        len: u64,
    },
    /// The file breaks the GGUF format in some other way.
    #[error(
        "{path} is not a valid GGUF file: {what}. The file is corrupt or was written by a broken exporter; re-export it"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        what: String,
    },
    /// No tensor with that name.
    #[error(
        "{path} has no tensor named `{name}`; it has {count} tensors{examples}. Check the name (GGUF uses llama.cpp names such as `blk.0.attn_q.weight`)"
    )]
    UnknownTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// How many tensors the file has.
        count: usize,
        /// A few names the file does have, formatted for the message.
        examples: String,
    },
    /// A tensor whose ggml type cannot be dequantised here.
    #[error(
        "tensor `{tensor}` in {path} has ggml type {ty}, which this reader cannot dequantise; supported types: {supported}. Re-quantise the model to one of those (llama-quantize) or use a different GGUF file"
    )]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its ggml type name.
        ty: String,
        /// The types that are supported, comma-separated.
        supported: String,
    },
    /// A metadata key that is absent.
    #[error(
        "{path} has no metadata key `{key}`. The model's exporter did not write it; check the key name or re-export the model"
    )]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A metadata value of another type than the caller needs.
    #[error("metadata key `{key}` in {path} is {found}, expected {expected}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the value is (type, and the value when short).
        found: String,
    },
}
