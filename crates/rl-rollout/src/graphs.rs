//! Decode steps replayed as CUDA graphs. An eager decode step of a small model launches hundreds
//! of tiny kernels and is bound by launch cost on a fast GPU; a graph replays them in one
//! launch. A graph has fixed shapes, so the batch is rounded up to a power of two (idle slots
//! ride along, their outputs ignored) and each (batch, cache-read length) pair gets its own
//! graph, captured the first time it is needed, all sharing one memory pool. Inputs are copied
//! into the graph's static tensors before each replay; the weights and the KV cache are the
//! engine's own tensors, so in-place weight updates reach the graphs; when the cache grows its
//! tensors are replaced, and the engine drops every graph to be captured again on the new ones
//! (growth stops once the work is steady, so steady-state decode replays).

use std::collections::HashMap;

use rl_model::{
    CachedPass, CausalLm, KvCache,
    cuda_graph::{CudaGraph, GraphError, GraphPool},
};
use tch::{Device, Tensor};

/// One captured decode step and its static inputs and output.
struct Captured {
    graph: Option<CudaGraph>,
    ids: Tensor,
    positions: Tensor,
    hidden: Tensor,
}

/// The decode graphs of one engine.
pub(crate) struct DecodeGraphs {
    device: Device,
    pool: Option<GraphPool>,
    steps: HashMap<(i64, i64), Captured>,
    /// Off: run the same fixed-shape steps eagerly (CPU tests of the bucketing).
    capture: bool,
}

impl DecodeGraphs {
    /// Graphs on `device`; with `capture` off the fixed-shape steps run eagerly.
    pub(crate) fn new(device: Device, capture: bool) -> Self {
        Self {
            device,
            pool: None,
            steps: HashMap::new(),
            capture,
        }
    }

    /// Drops every captured step: the cache they read was replaced.
    pub(crate) fn clear(&mut self) {
        self.steps.clear();
    }

    /// Final hidden states `[ids.len(), hidden]` of one decode step of slots `0..ids.len()`
    /// (`ids`, `positions` per slot), reading `kv_len` cache positions.
    pub(crate) fn step(
        &mut self,
        model: &dyn CausalLm,
        cache: &mut KvCache,
        ids: &[i64],
        positions: &[i64],
        kv_len: i64,
    ) -> Result<Tensor, GraphError> {
        let busy = ids.len() as i64;
        let b = padded_batch(ids.len(), cache.slots());
        let pad = |v: &[i64]| {
            let mut v = v.to_vec();
            v.resize(b as usize, 0);
            Tensor::from_slice(&v)
        };
        let (ids, positions) = (pad(ids), pad(positions));
        let window = model.sliding_window();
        let forward = |ids: &Tensor, positions: &Tensor, cache: &mut KvCache| {
            let pass = CachedPass::decode(positions, kv_len, window);
            model
                .hidden_states_cached(ids, &positions.view([b, 1]), &pass, cache)
                .view([b, -1])
        };
        if let Some(step) = self.steps.get_mut(&(b, kv_len)) {
            step.ids.copy_(&ids.view([b, 1]));
            step.positions.copy_(&positions);
            match &step.graph {
                Some(graph) => graph.replay()?,
                None => step.hidden = forward(&step.ids, &step.positions, cache),
            }
            return Ok(step.hidden.narrow(0, 0, busy));
        }
        // First use of this shape: an eager run (which also warms up the kernels) gives this
        // step's result, then the same work is captured for the next time.
        let ids = ids.view([b, 1]).to_device(self.device);
        let positions = positions.to_device(self.device);
        let hidden = forward(&ids, &positions, cache);
        let out = hidden.narrow(0, 0, busy);
        let (graph, hidden) = if self.capture {
            let Device::Cuda(index) = self.device else {
                return Err(GraphError {
                    action: "capture",
                    message: format!("{:?} is not a CUDA device", self.device),
                });
            };
            let pool = match self.pool {
                Some(pool) => pool,
                None => *self.pool.insert(GraphPool::new()?),
            };
            tch::Cuda::synchronize(index as i64);
            let (graph, captured) =
                CudaGraph::capture(index, pool, || forward(&ids, &positions, cache))?;
            (Some(graph), captured)
        } else {
            (None, hidden)
        };
        let step = Captured {
            graph,
            ids,
            positions,
            hidden,
        };
        self.steps.insert((b, kv_len), step);
        Ok(out)
    }
}

/// The batch a decode step of `busy` slots runs at: rounded up to a power of two, at most
/// `max_slots`. The cache must hold that many slots.
pub(crate) fn padded_batch(busy: usize, max_slots: i64) -> i64 {
    (busy as u64).next_power_of_two().min(max_slots as u64) as i64
}

/// Whether decode steps on `device` can be captured (a CUDA device and a build with the shim).
pub(crate) fn supported(device: Device) -> bool {
    device.is_cuda() && rl_model::cuda_graph::available()
}
