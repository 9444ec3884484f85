//! A GGUF tensor-table entry: name, dims, ggml type and where the data lies.

use super::GgmlType;

/// One tensor as the file's tensor table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// llama.cpp name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// ggml's `ne`: dims innermost (contiguous) first, the reverse of PyTorch order.
    pub dims: Vec<u64>,
    /// Element encoding.
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the file's data section.
    pub offset: u64,
    /// Byte length of the data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Row-major (PyTorch) shape: `dims` reversed. A 0-d tensor has shape `[]`.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Number of elements (product of `dims`).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Bytes of a tensor of type `ty` with ggml dims `dims`, or `None` when the innermost dim is
/// not a whole number of blocks or the element count or size overflows u64.
pub(crate) fn byte_size(ty: GgmlType, dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    let bs = ty.block_size() as u64;
    let inner = dims.first().copied().unwrap_or(1);
    if inner % bs != 0 {
        return None;
    }
    let row = (inner / bs).checked_mul(ty.type_size() as u64)?;
    dims.iter()
        .skip(1)
        .try_fold(row, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(byte_size(GgmlType::F32, &[3, 2]), Some(24));
        assert_eq!(byte_size(GgmlType::Q4_0, &[64, 3]), Some(2 * 18 * 3));
        assert_eq!(byte_size(GgmlType::Q6_K, &[256]), Some(210));
        assert_eq!(byte_size(GgmlType::F16, &[]), Some(2)); // 0-d: one element
        assert_eq!(byte_size(GgmlType::Q4_0, &[48]), None); // not whole blocks
        assert_eq!(byte_size(GgmlType::F32, &[1 << 62, 2]), None);
        // Zero bytes, but 2^64 elements: rejected rather than overflowing n_elements().
        assert_eq!(byte_size(GgmlType::Q4_0, &[1 << 32, 1 << 32, 0]), None);
    }
}
