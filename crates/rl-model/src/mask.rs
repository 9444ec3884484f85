//! Attention masks and position ids for padded batches (left or right padding alike), and the
//! one call into scaled-dot-product attention every architecture makes.

use tch::{Kind, Tensor};

/// Position of each token among the real tokens of its row: `[b, t]` mask → `[b, t]` i64,
/// 0 at the first real token; pads get 0.
pub fn positions(attention_mask: &Tensor) -> Tensor {
    (attention_mask.to_kind(Kind::Int64).cumsum(-1, Kind::Int64) - 1).clamp_min(0)
}

/// `[b, t]` padding mask (1 = token) → `[b, 1, t, t]` bool, true where query `i` may attend key
/// `j`: `j <= i`, `j` is a token, and with a sliding `window`, `i - j < window` (Mistral). Every
/// query also sees itself, so pad rows stay finite (their outputs are meaningless and must be
/// masked by the caller).
pub fn causal_padding_mask(attention_mask: &Tensor, window: Option<i64>) -> Tensor {
    let t = attention_mask.size()[1];
    let device = attention_mask.device();
    let ones = Tensor::ones([t, t], (Kind::Bool, device));
    let causal = match window {
        Some(w) => ones.tril(0).logical_and(&ones.triu(1 - w)),
        None => ones.tril(0),
    };
    let keys = attention_mask.to_kind(Kind::Bool).unsqueeze(1); // [b, 1, t]
    let diag = Tensor::eye(t, (Kind::Bool, device));
    (causal.unsqueeze(0).logical_and(&keys))
        .logical_or(&diag.unsqueeze(0))
        .unsqueeze(1)
}

/// How a batch's attention is masked.
#[derive(Debug)]
pub enum AttnMask {
    /// No padding and no window: plain causal, which lets SDPA pick its fused causal kernels.
    Causal,
    /// `[b, 1, t, t]` bool from [`causal_padding_mask`].
    Explicit(Tensor),
}

impl AttnMask {
    /// The mask for `attention_mask` `[b, t]` (1 = token) and an optional sliding `window`.
    pub fn new(attention_mask: &Tensor, window: Option<i64>) -> Self {
        let unpadded = attention_mask.numel() == 0 || attention_mask.min().int64_value(&[]) == 1;
        if window.is_none() && unpadded {
            Self::Causal
        } else {
            Self::Explicit(causal_padding_mask(attention_mask, window))
        }
    }
}

/// Causal attention of `q` `[b, heads, t, d]` over `k`, `v` `[b, kv_heads, t, d]` (grouped-query
/// when `kv_heads < heads`) → `[b, heads, t, d]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &AttnMask) -> Tensor {
    let gqa = k.size()[1] != q.size()[1];
    match mask {
        AttnMask::Causal => {
            Tensor::scaled_dot_product_attention::<Tensor>(q, k, v, None, 0.0, true, None, gqa)
        }
        AttnMask::Explicit(m) => {
            Tensor::scaled_dot_product_attention(q, k, v, Some(m), 0.0, false, None, gqa)
        }
    }
}
