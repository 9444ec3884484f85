//! Reading GGUF model files (llama.cpp's format) in pure Rust: header, typed metadata, tensor
//! table, and tensor data dequantised to f32. No tch types here; callers turn the
//! `(Vec<f32>, shape)` pairs into tensors.
//!
//! ```no_run
//! # fn main() -> Result<(), rl_gguf::GgufError> {
//! let gguf = rl_gguf::GgufFile::open("model.gguf")?;
//! let layers = gguf.metadata().get_u32("llama.block_count")?;
//! let (data, shape) = gguf.tensor_f32("token_embd.weight")?; // shape: [vocab, d_model]
//! # Ok(()) }
//! ```

pub mod dequant;
mod error;
mod file;
mod ggml_type;
mod header;
mod metadata;
mod tensor;

pub use error::GgufError;
pub use file::GgufFile;
pub use ggml_type::GgmlType;
pub use header::{DEFAULT_ALIGNMENT, MAGIC};
pub use metadata::{Array, Metadata, Value};
pub use tensor::TensorInfo;
