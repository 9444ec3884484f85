//! Reading GGUF model files (llama.cpp's format) in pure Rust. So far: ggml tensor types and
//! their dequantisation to f32.

pub mod dequant;
mod ggml_type;

pub use ggml_type::GgmlType;
