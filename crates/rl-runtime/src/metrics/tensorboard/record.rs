//! TFRecord framing, the container of TensorBoard event files:
//! `u64 len (LE) | u32 masked_crc(len) | data | u32 masked_crc(data)`, with CRC-32C
//! (Castagnoli) in TensorFlow's masked form.

use std::io::{self, Write};

/// TFRecord's masked CRC-32C: rotated right by 15 and offset by a constant, so CRCs of CRCs
/// stay distinct.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xA282_EAD8)
}

/// Writes one record holding `data`.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_castagnoli_masked() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283); // RFC 3720 check value
        // TensorFlow's masked CRC of an empty record (crc 0 rotated, plus the constant).
        assert_eq!(masked_crc32c(b""), 0xA282_EAD8);
    }

    #[test]
    fn frames_length_payload_and_checksums() {
        let mut out = Vec::new();
        write_record(&mut out, b"abc").unwrap();
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[8..12], &masked_crc32c(&out[..8]).to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(&out[15..], &masked_crc32c(b"abc").to_le_bytes());
    }
}
