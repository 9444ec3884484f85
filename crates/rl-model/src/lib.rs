//! Policy models of `rl` on libtorch (tch): transformer LMs (one file per architecture under
//! `arch/`: Llama family, Qwen2, GPT-2) and a BERT encoder for reward models, HF and GGUF
//! checkpoint loading, HF export, scalar heads (critics, reward models) and their text inputs,
//! chunked per-token log-probs, device and precision resolution, and the probes behind `rl doctor`.

pub mod arch;
pub mod cuda_driver;
pub mod cuda_graph;
pub mod device;
mod error;
pub mod export;
pub mod gguf;
pub mod heads;
pub mod hf;
pub mod kv_cache;
pub mod logprobs;
pub mod mask;
pub mod packing;
pub mod probe;
pub mod reward_input;
pub mod rope;
pub mod source;
pub mod tokenizer;

pub use device::{DeviceError, device_name, kind_name, resolve_device, resolve_kind};
pub use error::ModelError;
pub use kv_cache::{CacheError, CacheShape, CachedPass, KvCache};
pub use logprobs::{TokenStats, TrainingPass, backward_token_loss, token_logprobs};
pub use source::{load, load_tokenizer};

/// A transformer stack: final hidden states for a padded batch. Every architecture provides one;
/// causal LMs add an output head, critics and reward models a scalar head ([`heads`]).
pub trait Backbone: Send {
    /// Final (normed) hidden states `[b, t, hidden]` for `input_ids` `[b, t]` (i64) and
    /// `attention_mask` `[b, t]` (1 = token, 0 = pad; left or right padding).
    fn hidden_states(&self, input_ids: &tch::Tensor, attention_mask: &tch::Tensor) -> tch::Tensor;
}

/// A causal language model: a backbone and its output projection. The learner, rollout workers
/// and reference model use only this.
pub trait CausalLm: Backbone {
    /// Output projection `[vocab, hidden]` (the embedding matrix when tied).
    fn lm_head(&self) -> &tch::Tensor;

    /// Geometry of the [`KvCache`] incremental decoding needs.
    fn cache_shape(&self) -> CacheShape;

    /// Mistral-style attention window (each token sees at most this many), if any.
    fn sliding_window(&self) -> Option<i64> {
        None
    }

    /// Final hidden states `[b, t, hidden]` of `input_ids` `[b, t]` at `positions` `[b, t]`
    /// (i64) under an explicit attention mask `[b, 1, t, t]` (bool, true where query `i` may
    /// attend key `j`); the packed shared-prefix training pass ([`packing`]) runs through it.
    /// The sliding window, if any, is not applied: the caller's mask decides.
    fn hidden_states_masked(
        &self,
        input_ids: &tch::Tensor,
        positions: &tch::Tensor,
        mask: &tch::Tensor,
    ) -> tch::Tensor;

    /// Final hidden states `[b, t, hidden]` of `input_ids` `[b, t]` at `positions` `[b, t]`
    /// (i64), reading and writing `cache` as `pass` says (prefill or one decode step).
    fn hidden_states_cached(
        &self,
        input_ids: &tch::Tensor,
        positions: &tch::Tensor,
        pass: &CachedPass,
        cache: &mut KvCache,
    ) -> tch::Tensor;
}
