//! Weight updates by collective broadcast instead of the chunked stream: the controller (rank 0)
//! and its `rl rollout-worker`s (ranks 1..) form a weight group over the collective library
//! (Gloo for CPU replicas, NCCL for CUDA ones: the weights go GPU to GPU), and each update is
//! one broadcast per tensor from rank 0. The gRPC calls only carry the control: JoinWeightGroup
//! (where to meet) and BroadcastWeights (which tensors follow, in order).
//!
//! This crate does not hold a collective library: the worker's side is a [`WeightGroup`] its
//! process provides (`rl rollout-worker` gives one over libtorch's c10d).

use std::time::Duration;

use rl_proto::v1 as pb;
use tch::{Device, Kind, Tensor};

use super::convert::{dtype_to_proto, kind_from_proto};
use crate::worker::NamedTensors;

/// Where a weight group meets and which rank a worker is.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    /// Host of the controller's TCP store.
    pub addr: String,
    /// Its port.
    pub port: u16,
    /// The worker's rank, 1..`world` (the controller is 0).
    pub rank: usize,
    /// The controller and every worker.
    pub world: usize,
    /// How long to wait for every rank.
    pub timeout: Duration,
}

/// A worker's side of a weight group.
pub trait WeightGroup: Send + Sync {
    /// Joins the group `meeting` describes; returns once every rank has.
    fn join(&self, meeting: &Meeting) -> Result<(), String>;

    /// Fills `tensors` (allocated on [`WeightGroup::device`], in the order the controller
    /// sends) by broadcast from rank 0.
    fn receive(&self, tensors: &[Tensor]) -> Result<(), String>;

    /// Where the tensors of a broadcast live: CPU for Gloo, the worker's GPU for NCCL.
    fn device(&self) -> Device;
}

/// One tensor of a broadcast: its name, shape and element type.
pub type Spec = (String, Vec<i64>, Kind);

/// The specs of `tensors`, as the controller announces them.
pub fn specs(tensors: &NamedTensors) -> Vec<Spec> {
    tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.size(), t.kind()))
        .collect()
}

pub(crate) fn specs_to_proto(specs: &[Spec]) -> Result<Vec<pb::TensorSpec>, String> {
    specs
        .iter()
        .map(|(name, shape, kind)| {
            Ok(pb::TensorSpec {
                name: name.clone(),
                shape: shape.clone(),
                dtype: dtype_to_proto(*kind).map_err(|e| format!("{name}: {e}"))? as i32,
            })
        })
        .collect()
}

/// Empty tensors on `device` for the announced `specs`, to be filled by the broadcast.
pub(crate) fn allocate(specs: &[pb::TensorSpec], device: Device) -> Result<NamedTensors, String> {
    specs
        .iter()
        .map(|s| {
            let kind = kind_from_proto(s.dtype).map_err(|e| format!("{}: {e}", s.name))?;
            if s.shape.iter().any(|&d| d < 0) {
                return Err(format!(
                    "{}: shape {:?} has a negative size",
                    s.name, s.shape
                ));
            }
            Ok((
                s.name.clone(),
                Tensor::empty(s.shape.as_slice(), (kind, device)),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn announced_tensors_are_allocated_as_sent_and_bad_specs_refused() {
        let sent: NamedTensors = vec![
            (
                "a".into(),
                Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
            ),
            (
                "b".into(),
                Tensor::zeros([4], (Kind::BFloat16, Device::Cpu)),
            ),
        ];
        let wire = specs_to_proto(&specs(&sent)).unwrap();
        let got = allocate(&wire, Device::Cpu).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].1.size(), got[0].1.kind()),
            (vec![2, 3], Kind::Float)
        );
        assert_eq!(
            (got[1].1.size(), got[1].1.kind()),
            (vec![4], Kind::BFloat16)
        );
        let mut bad = wire.clone();
        bad[0].shape = vec![-1];
        assert!(
            allocate(&bad, Device::Cpu)
                .unwrap_err()
                .contains("negative")
        );
        let ints: NamedTensors = vec![("i".into(), Tensor::zeros([1], (Kind::Int64, Device::Cpu)))];
        assert!(specs_to_proto(&specs(&ints)).unwrap_err().contains("i:"));
    }
}
