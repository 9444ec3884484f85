//! Dequantisation of ggml tensor data to f32: one pure function per supported type, each taking
//! whole blocks of little-endian bytes and returning the elements in storage order.
//!
//! Block layouts follow ggml's `ggml-common.h` / `ggml-quants.c` and gguf-py's `quants.py`
//! (the tests compare against the latter). `f16` below is an IEEE half stored little-endian.
//! The arithmetic is done in the same order as the reference, in f32 without fused
//! multiply-adds, so results are bit-identical to gguf-py.

use super::GgmlType;

/// The types [`dequantize`] handles, in the order error messages list them.
pub const SUPPORTED: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// `data` (whole blocks of type `ty`, as laid out in a GGUF file) as f32 values, or `None` when
/// `ty` is not in [`SUPPORTED`]. A trailing partial block, which a valid tensor never has, is
/// ignored.
pub fn dequantize(ty: GgmlType, data: &[u8]) -> Option<Vec<f32>> {
    Some(match ty {
        GgmlType::F32 => f32s(data),
        GgmlType::F16 => f16s(data),
        GgmlType::BF16 => bf16s(data),
        GgmlType::Q8_0 => q8_0(data),
        GgmlType::Q4_0 => q4_0(data),
        GgmlType::Q4_1 => q4_1(data),
        GgmlType::Q4_K => q4_k(data),
        GgmlType::Q5_K => q5_k(data),
        GgmlType::Q6_K => q6_k(data),
        _ => return None,
    })
}

/// IEEE 754 half-precision bits to f32 (exact: every f16 is an f32). NaN payloads are kept.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        // Zero and subnormals: man · 2⁻²⁴, exact in f32.
        0 => {
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 { -v } else { v }
        }
        // Infinity and NaN.
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        // Normal: rebias the exponent from 15 to 127.
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// The little-endian f16 at byte `i` of `b`, as f32.
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// F32: 4 bytes per element, little-endian.
pub fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// F16: 2 bytes per element, IEEE half, little-endian.
pub fn f16s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(2).map(|b| f16_at(b, 0)).collect()
}

/// BF16: 2 bytes per element, the top half of an f32's bits, little-endian.
pub fn bf16s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(2)
        .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
        .collect()
}

/// Q8_0: blocks of 32 elements in 34 bytes: `d: f16`, `qs: [i8; 32]`; `y[i] = qs[i] · d`.
pub fn q8_0(data: &[u8]) -> Vec<f32> {
    const QK: usize = 32;
    let mut out = Vec::with_capacity(data.len() / 34 * QK);
    for b in data.chunks_exact(2 + QK) {
        let d = f16_at(b, 0);
        out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
    }
    out
}

/// Q4_0: blocks of 32 elements in 18 bytes: `d: f16`, `qs: [u8; 16]` holding 4-bit values,
/// element `i` in the low nibble of `qs[i]` and element `i + 16` in its high nibble;
/// `y = (q − 8) · d`.
pub fn q4_0(data: &[u8]) -> Vec<f32> {
    const QK: usize = 32;
    let mut out = Vec::with_capacity(data.len() / 18 * QK);
    for b in data.chunks_exact(2 + QK / 2) {
        let d = f16_at(b, 0);
        let qs = &b[2..];
        out.extend(qs.iter().map(|&q| d * f32::from((q & 0x0f) as i8 - 8)));
        out.extend(qs.iter().map(|&q| d * f32::from((q >> 4) as i8 - 8)));
    }
    out
}

/// Q4_1: blocks of 32 elements in 20 bytes: `d: f16`, `m: f16`, `qs: [u8; 16]` nibbles laid
/// out as in Q4_0; `y = q · d + m`.
pub fn q4_1(data: &[u8]) -> Vec<f32> {
    const QK: usize = 32;
    let mut out = Vec::with_capacity(data.len() / 20 * QK);
    for b in data.chunks_exact(4 + QK / 2) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let qs = &b[4..];
        out.extend(qs.iter().map(|&q| d * f32::from(q & 0x0f) + m));
        out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
    }
    out
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K super-block, packed in 12
/// bytes: sub-blocks 0–3 keep theirs in the low 6 bits of bytes `j` (scale) and `j + 4` (min);
/// sub-blocks 4–7 keep the low 4 bits in byte `j + 4` (scale low nibble, min high nibble) and
/// the top 2 bits in the top 2 bits of bytes `j − 4` (scale) and `j` (min).
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (s[j] & 0x3f, s[j + 4] & 0x3f)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    };
    (f32::from(sc), f32::from(m))
}

/// Q4_K: super-blocks of 256 elements in 144 bytes: `d: f16`, `dmin: f16`, `scales: [u8; 12]`,
/// `qs: [u8; 128]`. `scales` packs 8 six-bit (scale, min) pairs: pairs 0–3 in the low 6 bits of
/// bytes 0–3 (scales) and 4–7 (mins); pairs 4–7 have their low 4 bits in bytes 8–11 (scale in
/// the low nibble, min in the high) and their top 2 bits in the top 2 bits of bytes 0–3
/// (scales) and 4–7 (mins). Sub-block `j` holds 32 elements; its 4-bit values are the low
/// (`j` even) or high (`j` odd) nibbles of `qs[32·(j/2)..][..32]`.
/// `y = (d · sc_j) · q − dmin · m_j`.
pub fn q4_k(data: &[u8]) -> Vec<f32> {
    const QK_K: usize = 256;
    let mut out = Vec::with_capacity(data.len() / 144 * QK_K);
    for b in data.chunks_exact(4 + 12 + QK_K / 2) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let scales = &b[4..16];
        let qs = &b[16..];
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let (d1, m1) = (d * sc, dmin * m);
            let shift = 4 * (j % 2);
            let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            out.extend(
                chunk
                    .iter()
                    .map(|&q| d1 * f32::from((q >> shift) & 0x0f) - m1),
            );
        }
    }
    out
}

/// Q5_K: super-blocks of 256 elements in 176 bytes: `d: f16`, `dmin: f16`, `scales: [u8; 12]`
/// (as in Q4_K), `qh: [u8; 32]`, `qs: [u8; 128]`. Element `l` (0..32) of sub-block `j` takes
/// its low 4 bits from `qs` as in Q4_K and its 5th bit from bit `j` of `qh[l]`.
/// `y = (d · sc_j) · q − dmin · m_j`.
pub fn q5_k(data: &[u8]) -> Vec<f32> {
    const QK_K: usize = 256;
    let mut out = Vec::with_capacity(data.len() / 176 * QK_K);
    for b in data.chunks_exact(4 + 12 + QK_K / 8 + QK_K / 2) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let scales = &b[4..16];
        let qh = &b[16..48];
        let qs = &b[48..];
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let (d1, m1) = (d * sc, dmin * m);
            let shift = 4 * (j % 2);
            let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            out.extend(chunk.iter().zip(qh).map(|(&q, &h)| {
                let q = ((q >> shift) & 0x0f) | (((h >> j) & 1) << 4);
                d1 * f32::from(q) - m1
            }));
        }
    }
    out
}

/// Q6_K: super-blocks of 256 elements in 210 bytes: `ql: [u8; 128]` (low 4 bits),
/// `qh: [u8; 64]` (high 2 bits), `scales: [i8; 16]` (one per 16 elements), `d: f16`.
/// Each half `h` (128 elements) uses `ql[64h..][..64]` and `qh[32h..][..32]`: its group `k`
/// (0..4) of 32 elements takes element `l`'s low bits from the low (`k < 2`) or high (`k ≥ 2`)
/// nibble of `ql[64h + 32·(k % 2) + l]` and its high bits from bits `2k..2k+2` of
/// `qh[32h + l]`. `y = (d · scales[i / 16]) · (q − 32)`.
pub fn q6_k(data: &[u8]) -> Vec<f32> {
    const QK_K: usize = 256;
    let mut out = Vec::with_capacity(data.len() / 210 * QK_K);
    for b in data.chunks_exact(QK_K / 2 + QK_K / 4 + QK_K / 16 + 2) {
        let ql = &b[..128];
        let qh = &b[128..192];
        let scales = &b[192..208];
        let d = f16_at(b, 208);
        for h in 0..2 {
            for k in 0..4 {
                let lo = &ql[64 * h + 32 * (k % 2)..][..32];
                let hi = &qh[32 * h..][..32];
                let lo_shift = 4 * (k / 2);
                for (l, (&ql, &qh)) in lo.iter().zip(hi).enumerate() {
                    let q = ((ql >> lo_shift) & 0x0f) | (((qh >> (2 * k)) & 0x03) << 4);
                    let i = 128 * h + 32 * k + l;
                    let s = f32::from(scales[i / 16] as i8);
                    out.push(d * s * f32::from(q as i8 - 32));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_special_values() {
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0.0f32.to_bits());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn q8_0_one_block() {
        let mut b = vec![0x00, 0x40]; // d = 2.0
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let y = q8_0(&b);
        assert_eq!(y.len(), 32);
        assert_eq!(y[0], -32.0);
        assert_eq!(y[31], 30.0);
    }

    #[test]
    fn q4_0_nibble_order() {
        let mut b = vec![0x00, 0x3c]; // d = 1.0
        b.extend([0x9f; 16]); // low nibble 15, high nibble 9
        let y = q4_0(&b);
        assert_eq!(&y[..16], &[7.0; 16]);
        assert_eq!(&y[16..], &[1.0; 16]);
    }

    #[test]
    fn unsupported_and_partial_blocks() {
        assert!(dequantize(GgmlType::Q2_K, &[0; 84]).is_none());
        assert_eq!(dequantize(GgmlType::F32, &[0; 7]).map(|v| v.len()), Some(1));
    }
}
