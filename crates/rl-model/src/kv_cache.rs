//! Key/value cache for incremental decoding: a fixed number of slots (one sequence each) of a
//! fixed capacity, allocated once and written in place, so decode steps keep static shapes and
//! rows never need left padding: every slot keeps its own length.

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

/// The whole cache: one [`LayerKv`] per layer.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    slots: i64,
    capacity: i64,
}

impl KvCache {
    /// Allocates `slots` sequences of up to `capacity` tokens in `kind` on `device` (zeroed).
    pub fn new(shape: CacheShape, slots: i64, capacity: i64, kind: Kind, device: Device) -> Self {
        let dims = [slots, shape.kv_heads, capacity, shape.head_dim];
        let layers = (0..shape.layers)
            .map(|_| LayerKv {
                keys: Tensor::zeros(dims, (kind, device)),
                values: Tensor::zeros(dims, (kind, device)),
            })
            .collect();
        Self {
            layers,
            slots,
            capacity,
        }
    }

    /// Number of sequences it holds.
    pub fn slots(&self) -> i64 {
        self.slots
    }

    /// Tokens per sequence.
    pub fn capacity(&self) -> i64 {
        self.capacity
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
    /// a row sees only its last `window` positions.
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
