//! f32 master weights for a model that computes in bf16/f16: the optimiser updates the f32 copy
//! (so updates smaller than the half-precision spacing still accumulate) and the compute replica
//! is refreshed from it. Mixed-precision training as in Micikevicius et al. 2018,
//! <https://arxiv.org/abs/1710.03740>.

use std::collections::BTreeMap;

use tch::{Kind, TchError, Tensor, nn::VarStore};

/// f32 copies of every variable of a compute `VarStore`, by name.
#[derive(Debug)]
pub struct MasterWeights {
    weights: BTreeMap<String, Tensor>,
}

impl MasterWeights {
    /// Copies `compute`'s variables to f32 (on the same device).
    pub fn new(compute: &VarStore) -> Self {
        let weights = compute
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().to_kind(Kind::Float).copy()))
            .collect();
        Self { weights }
    }

    /// The f32 weights, by name (what an optimiser updates).
    pub fn weights_mut(&mut self) -> &mut BTreeMap<String, Tensor> {
        &mut self.weights
    }

    /// The gradients accumulated on `compute`'s variables, as f32, by name (variables without a
    /// gradient are left out).
    pub fn grads(&self, compute: &VarStore) -> BTreeMap<String, Tensor> {
        compute
            .variables()
            .into_iter()
            .filter_map(|(name, t)| {
                let g = t.grad();
                g.defined().then(|| (name, g.to_kind(Kind::Float)))
            })
            .collect()
    }

    /// Writes the f32 weights into `compute`, rounding to its precision.
    pub fn sync_into(&self, compute: &VarStore) -> Result<(), TchError> {
        tch::no_grad(|| {
            for (name, mut var) in compute.variables() {
                if let Some(master) = self.weights.get(&name) {
                    var.f_copy_(master)?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn};

    use super::*;

    /// 100 updates of 1e-4 each are below bf16's spacing at 1.0 (2^-7): applied to bf16 weights
    /// they vanish; applied to the f32 master they add up and reach the compute copy.
    #[test]
    fn small_updates_accumulate_in_the_master_copy() {
        let mut vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[4], nn::Init::Const(1.0));
        vs.bfloat16();
        let mut master = MasterWeights::new(&vs);
        let mut bf16_only = w.detach().copy();
        for _ in 0..100 {
            tch::no_grad(|| {
                let _ = bf16_only.f_sub_(&Tensor::from(1e-4).to_kind(Kind::BFloat16));
                for t in master.weights_mut().values_mut() {
                    let _ = t.f_sub_(&Tensor::from(1e-4));
                }
            });
        }
        assert_eq!(bf16_only.double_value(&[0]), 1.0, "bf16 loses every update");
        master.sync_into(&vs).unwrap();
        let w = &vs.variables()["w"];
        assert_eq!(w.kind(), Kind::BFloat16);
        assert!(
            (w.double_value(&[0]) - 0.99).abs() < 0.004,
            "{}",
            w.double_value(&[0])
        );
    }

    #[test]
    fn grads_come_back_as_f32_by_name() {
        let mut vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(2.0));
        vs.bfloat16();
        let master = MasterWeights::new(&vs);
        (&w * &w).sum(Kind::Float).backward();
        let grads = master.grads(&vs);
        assert_eq!(grads["w"].kind(), Kind::Float);
        assert_eq!(grads["w"].double_value(&[1]), 4.0);
    }
}
