//! The `UpdateWeights` stream: a client splits named tensors into chunks no larger than it is
//! told (so a tensor bigger than the message cap still goes through), a server reassembles them
//! with every check a malformed or hostile stream needs before one byte reaches the model.

use std::collections::HashSet;

use rl_proto::v1 as pb;
use tch::Kind;

use super::convert;
use crate::{RolloutError, worker::NamedTensors};

/// The messages of an update: the header, then each tensor's bytes in chunks of at most
/// `chunk_bytes` (one chunk for an empty tensor). Tensors are read (and copied to the CPU) one
/// at a time, as the stream is consumed. Refuses up front a dtype the wire cannot carry.
pub(crate) fn split(
    version: u64,
    tensors: NamedTensors,
    chunk_bytes: usize,
) -> Result<impl Iterator<Item = pb::WeightsChunk> + Send + 'static, RolloutError> {
    let chunk_bytes = chunk_bytes.max(1);
    let typed = tensors
        .into_iter()
        .map(
            |(name, tensor)| match convert::dtype_to_proto(tensor.kind()) {
                Ok(dtype) => Ok((name, tensor, dtype)),
                Err(e) => Err(RolloutError::Weights(format!("{name}: {e}"))),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    let header = pb::WeightsChunk {
        chunk: Some(pb::weights_chunk::Chunk::Header(pb::WeightsHeader {
            version,
        })),
    };
    let chunks = typed.into_iter().flat_map(move |(name, tensor, dtype)| {
        let shape = tensor.size();
        // A tensor that cannot be read goes as an empty chunk; the server then refuses the
        // update naming the tensor and the bytes its shape needs.
        let bytes = convert::tensor_to_bytes(&tensor).unwrap_or_default();
        let pieces = bytes.len().div_ceil(chunk_bytes).max(1);
        (0..pieces).map(move |i| {
            let start = (i * chunk_bytes).min(bytes.len());
            let end = (start + chunk_bytes).min(bytes.len());
            pb::WeightsChunk {
                chunk: Some(pb::weights_chunk::Chunk::Tensor(pb::TensorChunk {
                    name: name.clone(),
                    shape: shape.clone(),
                    dtype: dtype as i32,
                    offset: start as u64,
                    data: bytes[start..end].to_vec(),
                })),
            }
        })
    });
    Ok(std::iter::once(header).chain(chunks))
}

/// A tensor being received.
struct Partial {
    name: String,
    shape: Vec<i64>,
    dtype: i32,
    kind: Kind,
    /// Bytes its shape and dtype need.
    size: usize,
    bytes: Vec<u8>,
}

/// Reassembles an update from its messages; every error names what is wrong with the stream.
#[derive(Default)]
pub(crate) struct Assembler {
    version: Option<u64>,
    tensors: NamedTensors,
    names: HashSet<String>,
    current: Option<Partial>,
}

impl Assembler {
    /// Takes the next message of the stream.
    pub(crate) fn push(&mut self, message: pb::WeightsChunk) -> Result<(), String> {
        let chunk = match message.chunk {
            Some(pb::weights_chunk::Chunk::Header(header)) => {
                if self.version.is_some() {
                    return Err("a second header arrived: send one header, first".into());
                }
                self.version = Some(header.version);
                return Ok(());
            }
            Some(pb::weights_chunk::Chunk::Tensor(chunk)) => chunk,
            None => return Err("a message with neither a header nor a tensor chunk".into()),
        };
        if self.version.is_none() {
            return Err(format!(
                "tensor {}: chunk before the header; send the header (with the version) first",
                chunk.name
            ));
        }
        let mut partial = match self.current.take() {
            Some(p) if p.name == chunk.name => p,
            Some(p) => {
                return Err(format!(
                    "tensor {}: the stream moved on to {} after {} of its {} bytes; send each \
                     tensor's chunks together, in order",
                    p.name,
                    chunk.name,
                    p.bytes.len(),
                    p.size
                ));
            }
            None => self.start(&chunk)?,
        };
        if chunk.shape != partial.shape || chunk.dtype != partial.dtype {
            return Err(format!(
                "tensor {}: a chunk says shape {:?} dtype {}, its first said {:?} dtype {}",
                chunk.name, chunk.shape, chunk.dtype, partial.shape, partial.dtype
            ));
        }
        if chunk.offset != partial.bytes.len() as u64 {
            return Err(format!(
                "tensor {}: chunk at byte offset {}, expected {}; send chunks in order",
                chunk.name,
                chunk.offset,
                partial.bytes.len()
            ));
        }
        if partial.bytes.len() + chunk.data.len() > partial.size {
            return Err(format!(
                "tensor {}: more than the {} bytes its shape {:?} needs in {:?}",
                chunk.name, partial.size, partial.shape, partial.kind
            ));
        }
        partial.bytes.extend_from_slice(&chunk.data);
        if partial.bytes.len() == partial.size {
            let tensor = convert::tensor_from_bytes(&partial.bytes, &partial.shape, partial.kind)
                .map_err(|e| format!("tensor {}: {e}", partial.name))?;
            self.names.insert(partial.name.clone());
            self.tensors.push((partial.name, tensor));
        } else {
            self.current = Some(partial);
        }
        Ok(())
    }

    /// Checks the first chunk of a tensor.
    fn start(&self, chunk: &pb::TensorChunk) -> Result<Partial, String> {
        let name = &chunk.name;
        if name.is_empty() {
            return Err("a tensor chunk without a name".into());
        }
        if self.names.contains(name) {
            return Err(format!("tensor {name} was sent twice"));
        }
        let kind =
            convert::kind_from_proto(chunk.dtype).map_err(|e| format!("tensor {name}: {e}"))?;
        let size = chunk
            .shape
            .iter()
            .try_fold(kind.elt_size_in_bytes(), |acc, &d| {
                usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or_else(|| format!("tensor {name}: shape {:?} is not a valid size", chunk.shape))?;
        Ok(Partial {
            name: name.clone(),
            shape: chunk.shape.clone(),
            dtype: chunk.dtype,
            kind,
            size,
            bytes: Vec::new(),
        })
    }

    /// The version and tensors, once the stream has ended.
    pub(crate) fn finish(self) -> Result<(u64, NamedTensors), String> {
        let Some(version) = self.version else {
            return Err("the stream had no header: send a header with the version first".into());
        };
        if let Some(p) = self.current {
            return Err(format!(
                "tensor {}: the stream ended after {} of its {} bytes",
                p.name,
                p.bytes.len(),
                p.size
            ));
        }
        Ok((version, self.tensors))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tch::{Device, Tensor};

    use super::*;

    fn tensor_chunk(name: &str, shape: &[i64], offset: u64, data: Vec<u8>) -> pb::WeightsChunk {
        pb::WeightsChunk {
            chunk: Some(pb::weights_chunk::Chunk::Tensor(pb::TensorChunk {
                name: name.into(),
                shape: shape.to_vec(),
                dtype: pb::Dtype::F32 as i32,
                offset,
                data,
            })),
        }
    }

    fn header(version: u64) -> pb::WeightsChunk {
        pb::WeightsChunk {
            chunk: Some(pb::weights_chunk::Chunk::Header(pb::WeightsHeader {
                version,
            })),
        }
    }

    #[test]
    fn split_then_assembled_is_the_same_tensors() {
        let a = Tensor::randn([7, 5], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([3], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let empty = Tensor::zeros([0, 4], (Kind::Float, Device::Cpu));
        let sent = vec![
            ("a".to_owned(), a.shallow_clone()),
            ("b".to_owned(), b.shallow_clone()),
            ("empty".to_owned(), empty),
        ];
        let chunks: Vec<_> = split(9, sent, 16).unwrap().collect();
        // header + ceil(140 / 16) + 1 + 1
        assert_eq!(chunks.len(), 1 + 9 + 1 + 1);
        let mut assembler = Assembler::default();
        for c in chunks {
            assembler.push(c).unwrap();
        }
        let (version, got) = assembler.finish().unwrap();
        assert_eq!(version, 9);
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "empty"]);
        assert!(got[0].1.equal(&a));
        assert!(got[1].1.equal(&b));
        assert_eq!(got[2].1.size(), [0, 4]);
    }

    #[test]
    fn a_dtype_the_wire_cannot_carry_is_refused_before_sending() {
        let ids = Tensor::arange(4, (Kind::Int64, Device::Cpu));
        let err = split(1, vec![("ids".into(), ids)], 16).err().unwrap();
        assert!(
            err.to_string().contains("ids: dtype Int64 cannot be sent"),
            "{err}"
        );
    }

    #[test]
    fn malformed_streams_are_refused_with_the_reason() {
        let cases: Vec<(Vec<pb::WeightsChunk>, &str)> = vec![
            (
                vec![tensor_chunk("w", &[1], 0, vec![0; 4])],
                "before the header",
            ),
            (vec![header(1), header(2)], "second header"),
            (vec![header(1), pb::WeightsChunk { chunk: None }], "neither"),
            (
                vec![header(1), tensor_chunk("w", &[2], 4, vec![0; 4])],
                "offset 4, expected 0",
            ),
            (
                vec![header(1), tensor_chunk("w", &[1], 0, vec![0; 8])],
                "more than the 4 bytes",
            ),
            (
                vec![header(1), tensor_chunk("w", &[-1], 0, vec![])],
                "not a valid size",
            ),
            (
                vec![header(1), tensor_chunk("w", &[i64::MAX, 4], 0, vec![])],
                "not a valid size",
            ),
            (
                vec![
                    header(1),
                    tensor_chunk("w", &[2], 0, vec![0; 4]),
                    tensor_chunk("v", &[1], 0, vec![0; 4]),
                ],
                "moved on to v after 4 of its 8 bytes",
            ),
            (
                vec![
                    header(1),
                    tensor_chunk("w", &[1], 0, vec![0; 4]),
                    tensor_chunk("w", &[1], 0, vec![0; 4]),
                ],
                "w was sent twice",
            ),
            (
                vec![
                    header(1),
                    tensor_chunk("w", &[2], 0, vec![0; 4]),
                    tensor_chunk("w", &[1, 2], 4, vec![0; 4]),
                ],
                "its first said [2]",
            ),
        ];
        for (messages, needle) in cases {
            let mut assembler = Assembler::default();
            let err = messages
                .into_iter()
                .try_for_each(|m| assembler.push(m))
                .unwrap_err();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
        let mut dtype = tensor_chunk("w", &[1], 0, vec![0; 4]);
        if let Some(pb::weights_chunk::Chunk::Tensor(t)) = &mut dtype.chunk {
            t.dtype = 0;
        }
        let mut assembler = Assembler::default();
        assembler.push(header(1)).unwrap();
        assert!(assembler.push(dtype).unwrap_err().contains("dtype 0"));

        let err = Assembler::default().finish().unwrap_err();
        assert!(err.contains("no header"), "{err}");
        let mut cut = Assembler::default();
        cut.push(header(1)).unwrap();
        cut.push(tensor_chunk("w", &[2], 0, vec![0; 4])).unwrap();
        let err = cut.finish().unwrap_err();
        assert!(err.contains("ended after 4 of its 8 bytes"), "{err}");
    }
}
