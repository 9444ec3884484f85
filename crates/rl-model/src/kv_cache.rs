//! Key/value cache for incremental decoding: up to a fixed number of slots (one sequence each)
//! of up to a fixed capacity, written in place, so rows never need left padding: every slot
//! keeps its own length. Memory follows the work: the tensors hold only the slots and
//! positions reserved so far and grow geometrically (each short dimension at least doubles), so
//! one short prompt does not pay for `slots × capacity` and growth stops once the work is steady.

use tch::{Device, Kind, Tensor};

use crate::mask::{AttnMask, attention};

/// Per-layer geometry of an architecture's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheShape {
    /// Decoder layers.
    pub layers: i64,
    /// Key/value heads per layer.
    pub kv_heads: i64,
    /// Width of one head.
    pub head_dim: i64,
}

impl CacheShape {
    /// Bytes one cached token takes over all layers (keys and values) in `kind`.
    pub fn bytes_per_token(&self, kind: Kind) -> i64 {
        2 * self.layers * self.kv_heads * self.head_dim * kind.elt_size_in_bytes() as i64
    }
}

/// Keys and values of one layer, `[slots, kv_heads, capacity, head_dim]` each.
#[derive(Debug)]
pub struct LayerKv {
    keys: Tensor,
    values: Tensor,
}

/// Why the cache could not make room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// More slots or positions than the cache's limits.
    #[error(
        "{slots} sequences of {len} tokens do not fit a KV cache of {max_slots} sequences of {max_len} tokens"
    )]
    OverLimit {
        /// Slots asked for.
        slots: i64,
        /// Positions asked for.
        len: i64,
        /// The cache's slot limit.
        max_slots: i64,
        /// The cache's position limit.
        max_len: i64,
    },
    /// The device could not allocate the larger tensors (out of memory, usually).
    #[error(
        "cannot grow the KV cache to {slots} sequences of {len} tokens ({bytes} bytes): {message}"
    )]
    Alloc {
        /// Slots the new tensors hold.
        slots: i64,
        /// Positions the new tensors hold.
        len: i64,
        /// Their size over all layers.
        bytes: i64,
        /// What libtorch said.
        message: String,
    },
}

/// The whole cache: one [`LayerKv`] per layer, `[allocated_slots, kv_heads, allocated_len,
/// head_dim]` each, within the limits `slots` × `capacity`.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    shape: CacheShape,
    kind: Kind,
    device: Device,
    slots: i64,
    capacity: i64,
    allocated_slots: i64,
    allocated_len: i64,
}

impl KvCache {
    /// A cache of up to `slots` sequences of up to `capacity` tokens in `kind` on `device`.
    /// Nothing is allocated until [`reserve`](Self::reserve).
    pub fn new(shape: CacheShape, slots: i64, capacity: i64, kind: Kind, device: Device) -> Self {
        let empty = || Tensor::zeros([0, shape.kv_heads, 0, shape.head_dim], (kind, device));
        let layers = (0..shape.layers)
            .map(|_| LayerKv {
                keys: empty(),
                values: empty(),
            })
            .collect();
        Self {
            layers,
            shape,
            kind,
            device,
            slots,
            capacity,
            allocated_slots: 0,
            allocated_len: 0,
        }
    }

    /// Most sequences it holds.
    pub fn slots(&self) -> i64 {
        self.slots
    }

    /// Most tokens per sequence.
    pub fn capacity(&self) -> i64 {
        self.capacity
    }

    /// Slots `0..n` its tensors hold now.
    pub fn allocated_slots(&self) -> i64 {
        self.allocated_slots
    }

    /// Positions `0..n` per slot its tensors hold now.
    pub fn allocated_len(&self) -> i64 {
        self.allocated_len
    }

    /// Bytes its tensors take now, over all layers, keys and values.
    pub fn allocated_bytes(&self) -> i64 {
        self.allocated_slots * self.allocated_len * self.shape.bytes_per_token(self.kind)
    }

    /// Makes room for slots `0..slots` and positions `0..len`. A short dimension grows to at
    /// least twice its size (within the limits) and what was cached is copied over, so a
    /// growing workload reallocates only a logarithmic number of times. Returns whether the
    /// tensors were replaced: views of the old ones (captured CUDA graphs) are then stale. On
    /// an error the cache is unchanged.
    pub fn reserve(&mut self, slots: i64, len: i64) -> Result<bool, CacheError> {
        if slots > self.slots || len > self.capacity {
            return Err(CacheError::OverLimit {
                slots,
                len,
                max_slots: self.slots,
                max_len: self.capacity,
            });
        }
        if slots <= self.allocated_slots && len <= self.allocated_len {
            return Ok(false);
        }
        let grow = |have: i64, want: i64, limit: i64| {
            if want <= have {
                have
            } else {
                want.max(have * 2).min(limit)
            }
        };
        let new_slots = grow(self.allocated_slots, slots, self.slots);
        let new_len = grow(self.allocated_len, len, self.capacity);
        let dims = [new_slots, self.shape.kv_heads, new_len, self.shape.head_dim];
        let (old_slots, old_len) = (self.allocated_slots, self.allocated_len);
        let grown = |old: &Tensor| -> Result<Tensor, tch::TchError> {
            let new = Tensor::f_zeros(dims, (self.kind, self.device))?;
            new.f_narrow(0, 0, old_slots)?
                .f_narrow(2, 0, old_len)?
                .f_copy_(old)?;
            Ok(new)
        };
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                Ok(LayerKv {
                    keys: grown(&layer.keys)?,
                    values: grown(&layer.values)?,
                })
            })
            .collect::<Result<Vec<_>, tch::TchError>>()
            .map_err(|e| CacheError::Alloc {
                slots: new_slots,
                len: new_len,
                bytes: new_slots * new_len * self.shape.bytes_per_token(self.kind),
                message: e.to_string(),
            })?;
        self.layers = layers;
        self.allocated_slots = new_slots;
        self.allocated_len = new_len;
        Ok(true)
    }

    /// The layers, in order; architectures hand layer `i` to block `i`.
    pub fn layers_mut(&mut self) -> &mut [LayerKv] {
        &mut self.layers
    }
}

/// What one cached forward pass does: the two kinds of step of a generation engine.
#[derive(Debug)]
pub enum CachedPass {
    /// New prompts `[b, t]`, right-padded: they attend among themselves (causal and padding
    /// mask, no cache read), then batch row `src[i]`'s keys and values for positions `0..t` are
    /// copied to slot `dst[i]` — several slots may take one row (`n` samples of one prompt).
    Prefill {
        /// Mask among the prompt tokens.
        mask: AttnMask,
        /// `[m]` i64: batch row copied to each target slot.
        src: Tensor,
        /// `[m, 1]` i64: target slots.
        dst: Tensor,
        /// `[1, t]` i64: cache positions `0..t`.
        cols: Tensor,
    },
    /// One new token for each slot `0..b` (`input_ids` `[b, 1]`), at position `positions[i]`:
    /// it is written there, then attends over the slot's positions `0..kv_len` allowed by `mask`.
    Decode {
        /// `[b, 1, 1, 1]` i64: where each row's key/value goes.
        index: Tensor,
        /// Cache positions read (a bound on every row's position + 1).
        kv_len: i64,
        /// `[b, 1, 1, kv_len]` bool: key `j` visible to row `i`.
        mask: Tensor,
    },
}

impl CachedPass {
    /// A prefill of prompts with padding mask `attention_mask` `[b, t]` (1 = token; right
    /// padding), copying row `src[i]` into slot `dst[i]`. Positions past a row's length hold
    /// padding keys; decode masks them until it overwrites them.
    pub fn prefill(attention_mask: &Tensor, src: &[i64], dst: &[i64], window: Option<i64>) -> Self {
        let device = attention_mask.device();
        let t = attention_mask.size()[1];
        Self::Prefill {
            mask: AttnMask::new(attention_mask, window),
            src: Tensor::from_slice(src).to_device(device),
            dst: Tensor::from_slice(dst).to_device(device).unsqueeze(1),
            cols: Tensor::arange(t, (Kind::Int64, device)).unsqueeze(0),
        }
    }

    /// A decode step for slots `0..b` with `positions` `[b]` i64 (each row's cached length),
    /// reading cache positions `0..kv_len` (`kv_len > max(positions)`); with a sliding `window`
    /// a row sees only its last `window` positions. The cache must hold them already
    /// ([`KvCache::reserve`] of `b` slots and `kv_len` positions), as a prefill's target slots
    /// and prompt width must be.
    pub fn decode(positions: &Tensor, kv_len: i64, window: Option<i64>) -> Self {
        let device = positions.device();
        let pos = positions.view([-1, 1]);
        let keys = Tensor::arange(kv_len, (Kind::Int64, device)).unsqueeze(0);
        let mut mask = keys.le_tensor(&pos);
        if let Some(w) = window {
            mask = mask.logical_and(&keys.gt_tensor(&(&pos - w)));
        }
        Self::Decode {
            index: pos.view([-1, 1, 1, 1]),
            kv_len,
            mask: mask.unsqueeze(1).unsqueeze(1),
        }
    }

    /// Attention of one layer with its cache: stores `k`, `v` `[b, kv_heads, t, d]` as the pass
    /// says and returns the output for `q` `[b, heads, t, d]` → `[b, heads, t, d]`.
    pub fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, cache: &mut LayerKv) -> Tensor {
        match self {
            Self::Prefill {
                mask,
                src,
                dst,
                cols,
            } => {
                for (store, new) in [(&mut cache.keys, k), (&mut cache.values, v)] {
                    // [m, t, kv_heads, d] laid out as `store[dst, :, cols]` indexes it.
                    let rows = new.index_select(0, src).transpose(1, 2);
                    let _ = store.index_put_(&[Some(dst), None, Some(cols)], &rows, false);
                }
                attention(q, k, v, mask)
            }
            Self::Decode {
                index,
                kv_len,
                mask,
            } => {
                let (b, heads, _, d) = q.size4().unwrap_or_default();
                let kv_heads = k.size()[1];
                let index = index.expand([b, kv_heads, 1, d], false);
                let read = |store: &mut Tensor, new: &Tensor| {
                    let mut rows = store.narrow(0, 0, b);
                    let _ = rows.scatter_(2, &index, new);
                    rows.narrow(2, 0, *kv_len)
                };
                let keys = read(&mut cache.keys, k);
                let values = read(&mut cache.values, v);
                // One query per row: the query heads sharing a kv head become that head's
                // queries, so grouped-query attention needs no key/value expansion.
                let group = heads / kv_heads;
                let q = q.reshape([b, kv_heads, group, d]);
                let ys = Tensor::scaled_dot_product_attention(
                    &q,
                    &keys,
                    &values,
                    Some(mask),
                    0.0,
                    false,
                    None,
                    false,
                );
                ys.reshape([b, heads, 1, d])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// SmolLM2-135M's geometry: 30 layers of 3 key/value heads of 64.
    const SMOLLM2: CacheShape = CacheShape {
        layers: 30,
        kv_heads: 3,
        head_dim: 64,
    };

    #[test]
    fn memory_follows_what_is_reserved_and_grows_geometrically() {
        let mut cache = KvCache::new(SMOLLM2, 64, 2048, Kind::Float, Device::Cpu);
        assert_eq!(cache.allocated_bytes(), 0);
        // One short sequence: one slot of 64 positions, 2.9 MB rather than 64 × 2048 (6 GB).
        assert!(cache.reserve(1, 64).unwrap());
        assert_eq!(
            cache.allocated_bytes(),
            64 * SMOLLM2.bytes_per_token(Kind::Float)
        );
        assert!(!cache.reserve(1, 10).unwrap(), "already there");

        // Each short dimension at least doubles, within the limits.
        let small = CacheShape {
            layers: 1,
            kv_heads: 1,
            head_dim: 1,
        };
        let mut cache = KvCache::new(small, 64, 2048, Kind::Float, Device::Cpu);
        cache.reserve(1, 64).unwrap();
        assert!(cache.reserve(2, 65).unwrap());
        assert_eq!((cache.allocated_slots(), cache.allocated_len()), (2, 128));
        cache.reserve(40, 1500).unwrap();
        assert_eq!((cache.allocated_slots(), cache.allocated_len()), (40, 1500));
        cache.reserve(41, 1501).unwrap();
        assert_eq!((cache.allocated_slots(), cache.allocated_len()), (64, 2048));
        let err = cache.reserve(65, 8).unwrap_err();
        assert!(
            err.to_string()
                .contains("65 sequences of 8 tokens do not fit"),
            "{err}"
        );
    }

    #[test]
    fn growing_keeps_what_was_cached() {
        let shape = CacheShape {
            layers: 2,
            kv_heads: 1,
            head_dim: 2,
        };
        let mut cache = KvCache::new(shape, 8, 16, Kind::Float, Device::Cpu);
        cache.reserve(2, 3).unwrap();
        let before: Vec<Tensor> = cache
            .layers_mut()
            .iter_mut()
            .map(|layer| {
                let _ = layer.keys.normal_(0.0, 1.0);
                let _ = layer.values.normal_(0.0, 1.0);
                Tensor::stack(&[&layer.keys, &layer.values], 0)
            })
            .collect();
        cache.reserve(5, 9).unwrap();
        for (layer, before) in cache.layers_mut().iter().zip(before) {
            assert_eq!(layer.keys.size(), [5, 1, 9, 2]);
            let kept = Tensor::stack(&[&layer.keys, &layer.values], 0)
                .narrow(1, 0, 2)
                .narrow(3, 0, 3);
            assert!(kept.equal(&before));
        }
    }
}
