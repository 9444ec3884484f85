//! How rank 0 of a learner group hands each update to the other ranks: the batch and the
//! algorithm's targets, which every rank needs whole (each runs its share of every mini-batch,
//! with normalisers over the whole; see [`crate::Learner::with_group`]), or the word to stop.
//! A header of shapes and flags goes first; the tensors follow, one broadcast per dtype.

use rl_algorithms::{Experience, Targets};
use tch::{Device, Kind, Tensor};

use crate::group::{GroupError, ProcessGroup};

/// What rank 0 sends.
pub enum Shared {
    /// Run an update on this batch with these targets.
    Update(Experience, Targets),
    /// The run is over.
    Stop,
}

/// Header slots: what follows, the shapes `[b, t]` and `n`, and which optional tensors come.
const HEADER: usize = 9;
const UPDATE: i64 = 1;

/// On rank 0: sends `update` to every other rank (`None`: stop).
pub fn send(
    group: &ProcessGroup,
    update: Option<(&Experience, &Targets)>,
) -> Result<(), GroupError> {
    let Some((batch, targets)) = update else {
        let header = Tensor::zeros([HEADER as i64], (Kind::Int64, Device::Cpu));
        return group.broadcast(std::slice::from_ref(&header), 0);
    };
    let (b, t) = (batch.input_ids.size()[0], batch.input_ids.size()[1]);
    let n = batch.mask.size()[1];
    let flags = [
        batch.ref_logprobs.is_some(),
        batch.values.is_some(),
        targets.returns.is_some(),
        targets.keep.is_some(),
        batch.is_weights.is_some(),
    ];
    let mut header = vec![UPDATE, b, t, n];
    header.extend(flags.iter().map(|&f| i64::from(f)));
    let header = Tensor::from_slice(&header);
    group.broadcast(std::slice::from_ref(&header), 0)?;
    let converted: Vec<Tensor> = fields(batch, targets)
        .into_iter()
        .map(|(t, kind)| t.to_kind(kind))
        .collect();
    group.broadcast(&converted, 0)
}

/// On any other rank: what rank 0 sent, its tensors on `device`.
pub fn receive(group: &ProcessGroup, device: Device) -> Result<Shared, GroupError> {
    let header = Tensor::zeros([HEADER as i64], (Kind::Int64, Device::Cpu));
    group.broadcast(std::slice::from_ref(&header), 0)?;
    let header = Vec::<i64>::try_from(&header)
        .map_err(|e| GroupError::Collective(format!("cannot read the update's header: {e}")))?;
    if header[0] != UPDATE {
        return Ok(Shared::Stop);
    }
    let (b, t, n) = (header[1], header[2], header[3]);
    let flag = |i: usize| header[4 + i] != 0;
    let zeros = |shape: &[i64], kind| Tensor::zeros(shape, (kind, device));
    let optional = |on: bool| on.then(|| zeros(&[b, n], Kind::Float));
    let batch = Experience {
        input_ids: zeros(&[b, t], Kind::Int64),
        attention_mask: zeros(&[b, t], Kind::Int64),
        mask: zeros(&[b, n], Kind::Float),
        old_logprobs: zeros(&[b, n], Kind::Float),
        ref_logprobs: optional(flag(0)),
        values: optional(flag(1)),
        rewards: zeros(&[b], Kind::Float),
        groups: zeros(&[b], Kind::Int64),
        is_weights: optional(flag(4)),
    };
    let targets = Targets {
        advantages: zeros(&[b, n], Kind::Float),
        returns: optional(flag(2)),
        keep: flag(3).then(|| zeros(&[b], Kind::Int64)),
        metrics: Vec::new(),
    };
    // The allocations themselves (their kinds are the ones sent), filled in place.
    let slots: Vec<Tensor> = fields(&batch, &targets)
        .into_iter()
        .map(|(t, _)| t.shallow_clone())
        .collect();
    group.broadcast(&slots, 0)?;
    let targets = Targets {
        keep: targets.keep.map(|k| k.to_kind(Kind::Bool)),
        ..targets
    };
    Ok(Shared::Update(batch, targets))
}

/// The tensors of an update in the order both sides use, each with the kind it travels in
/// (`keep` as i64).
fn fields<'a>(batch: &'a Experience, targets: &'a Targets) -> Vec<(&'a Tensor, Kind)> {
    let mut out = vec![
        (&batch.input_ids, Kind::Int64),
        (&batch.attention_mask, Kind::Int64),
        (&batch.mask, Kind::Float),
        (&batch.old_logprobs, Kind::Float),
        (&batch.rewards, Kind::Float),
        (&batch.groups, Kind::Int64),
        (&targets.advantages, Kind::Float),
    ];
    let optional = [
        &batch.ref_logprobs,
        &batch.values,
        &targets.returns,
        &batch.is_weights,
    ];
    out.extend(optional.into_iter().flatten().map(|x| (x, Kind::Float)));
    out.extend(targets.keep.iter().map(|k| (k, Kind::Int64)));
    out
}
