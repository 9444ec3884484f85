//! AdamW (Loshchilov & Hutter, arXiv 1711.05101) over named f32 parameters, with its state —
//! moments and step count — saved and restored exactly (tch's optimisers cannot persist theirs).
//! Same update as `torch.optim.AdamW`: decay `p ← p·(1 − lr·wd)`, then
//! `p ← p − lr · m̂ / (√v̂ + ε)` with bias-corrected moments. The step runs in ATen's fused
//! kernel ([`crate::fused_adamw`]) when the parameters allow it, else as tensor operations.

use tch::{Kind, Tensor};

use crate::fused_adamw::{self, Group, Hyper};

/// AdamW's hyper-parameters (the learning rate comes with each step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Why optimiser state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("optimizer state: {0}")]
pub struct StateError(pub String);

/// One parameter, the tensor whose gradient updates it, and its moments.
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    /// Holds the gradient: `param` itself, or the half-precision compute copy of an f32
    /// master weight.
    source: Tensor,
    m: Tensor,
    v: Tensor,
}

/// AdamW over a fixed list of parameters.
#[derive(Debug)]
pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
    step: u64,
    /// Try the fused kernel first.
    fused: bool,
}

impl AdamW {
    /// An optimiser of `params` (name, tensor requiring grad), moments zeroed.
    pub fn new(params: Vec<(String, Tensor)>, config: AdamWConfig) -> Self {
        let params = params
            .into_iter()
            .map(|(name, p)| (name, p.shallow_clone(), p))
            .collect();
        Self::with_sources(params, config)
    }

    /// An optimiser of f32 master weights updated from the gradients of their compute copies:
    /// `(name, master, compute)` triples (mixed precision, Micikevicius et al. 2018).
    pub fn with_sources(params: Vec<(String, Tensor, Tensor)>, config: AdamWConfig) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param, source)| Slot {
                m: param.zeros_like().to_kind(Kind::Float),
                v: param.zeros_like().to_kind(Kind::Float),
                name,
                param,
                source,
            })
            .collect();
        Self {
            slots,
            config,
            step: 0,
            fused: fused_adamw::available(),
        }
    }

    /// Whether steps may use ATen's fused kernel (default: when the build has it). Both paths
    /// compute the same update up to rounding.
    pub fn with_fused(mut self, fused: bool) -> Self {
        self.fused = fused && fused_adamw::available();
        self
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The tensors holding the gradients (the parameters, or their compute copies), by name:
    /// what gradient norms and clipping act on.
    pub fn params(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.source))
    }

    /// The parameters the optimiser updates (f32 masters in mixed precision), by name.
    pub fn masters(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.param))
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut grad = s.source.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// One update with learning rate `lr` from the current gradients (parameters without a
    /// gradient are left alone).
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let (b1, b2) = self.config.betas;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let (eps, wd) = (self.config.eps, self.config.weight_decay);
        if self.fused && self.fused_step(lr) {
            return;
        }
        tch::no_grad(|| {
            for s in &mut self.slots {
                let grad = s.source.grad();
                if !grad.defined() {
                    continue;
                }
                let grad = grad.to_kind(Kind::Float);
                // In place, as torch's AdamW: two temporaries per parameter instead of one per
                // operation; the optimiser step is memory-bound.
                let _ = s.m.lerp_(&grad, 1.0 - b1); // m = b1·m + (1 − b1)·g
                let _ = s.v.lerp_(&grad.square(), 1.0 - b2); // v = b2·v + (1 − b2)·g²
                if wd != 0.0 {
                    let _ = s.param.g_mul_scalar_(1.0 - lr * wd);
                }
                if lr == 0.0 {
                    continue;
                }
                // param −= (lr / c1) · m / (√(v / c2) + eps), the step size folded into the
                // denominator so that one addcdiv applies it.
                let mut denom = s.v.sqrt().g_div_scalar_(c2.sqrt()).g_add_scalar_(eps);
                let _ = denom.g_mul_scalar_(-c1 / lr);
                if s.param.kind() == Kind::Float {
                    let _ = s.param.addcdiv_(&s.m, &denom);
                } else {
                    let _ = s.param.g_add_(&(&s.m / &denom).to_kind(s.param.kind()));
                }
            }
        });
    }

    /// The step in the fused kernel, when every parameter with a gradient fits it; false when
    /// the unfused path must run. A kernel that refuses is not tried again.
    fn fused_step(&mut self, lr: f64) -> bool {
        let groups: Vec<Group<'_>> = self
            .slots
            .iter()
            .filter_map(|s| {
                let grad = s.source.grad();
                grad.defined().then_some(Group {
                    param: &s.param,
                    grad,
                    m: &s.m,
                    v: &s.v,
                })
            })
            .collect();
        if groups.is_empty() {
            return true;
        }
        if !fused_adamw::fits(&groups) {
            return false;
        }
        let hyper = Hyper {
            step: self.step,
            lr,
            betas: self.config.betas,
            weight_decay: self.config.weight_decay,
            eps: self.config.eps,
        };
        let done = fused_adamw::step(&groups, hyper);
        drop(groups);
        match done {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(
                    "the fused AdamW kernel refused the step ({why}); AdamW runs unfused"
                );
                self.fused = false;
                false
            }
        }
    }

    /// The state as named tensors (`adamw.step`, `adamw.m.<param>`, `adamw.v.<param>`), for a
    /// checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("adamw.step".to_owned(), Tensor::from(self.step as i64))];
        for s in &self.slots {
            out.push((format!("adamw.m.{}", s.name), s.m.shallow_clone()));
            out.push((format!("adamw.v.{}", s.name), s.v.shallow_clone()));
        }
        out
    }

    /// Restores [`state`](Self::state); every parameter's moments must be present with its
    /// shape. Nothing changes when an error is returned.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), StateError> {
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let step = find("adamw.step").ok_or_else(|| StateError("no adamw.step".into()))?;
        let mut moments = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let get = |which: &str| {
                let key = format!("adamw.{which}.{}", s.name);
                let t = find(&key).ok_or_else(|| StateError(format!("no {key}")))?;
                if t.size() != s.param.size() {
                    return Err(StateError(format!(
                        "{key} has shape {:?}, the parameter {:?}",
                        t.size(),
                        s.param.size()
                    )));
                }
                Ok(t.to_kind(Kind::Float).to_device(s.param.device()))
            };
            moments.push((get("m")?, get("v")?));
        }
        self.step = step.int64_value(&[]) as u64;
        for (s, (m, v)) in self.slots.iter_mut().zip(moments) {
            s.m = m;
            s.v = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).set_requires_grad(true)
    }

    /// Sets `p`'s gradient to `g` (as a loss `sum(p * g)` would).
    fn set_grad(p: &Tensor, g: &[f32]) {
        (p * Tensor::from_slice(g)).sum(Kind::Float).backward();
    }

    #[test]
    fn two_steps_match_the_formula() {
        for fused in [false, true] {
            two_steps(fused);
        }
    }

    fn two_steps(fused: bool) {
        let p = param(&[1.0, -2.0]);
        let config = AdamWConfig {
            betas: (0.9, 0.99),
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(vec![("p".into(), p.shallow_clone())], config).with_fused(fused);
        set_grad(&p, &[0.5, 1.0]);
        opt.step(0.01);
        // Step 1: m̂ = g, v̂ = g², update = lr · g/|g| = 0.01·sign(g); decay first:
        // 1·(1 − 0.001) − 0.01 = 0.989; −2·0.999 − 0.01 = −2.008.
        assert!((p.double_value(&[0]) - 0.989).abs() < 1e-6);
        assert!((p.double_value(&[1]) + 2.008).abs() < 1e-6);
        opt.zero_grad();
        set_grad(&p, &[-0.5, 1.0]);
        opt.step(0.01);
        // Step 2, first coordinate: m = 0.9·0.05 + 0.1·(−0.5) = −0.005, m̂ = −0.005/0.19;
        // v = 0.99·0.0025 + 0.01·0.25 = 0.004975, v̂ = 0.004975/0.0199 = 0.25; update =
        // 0.01·(−0.026316)/0.5 = −0.00052632; p = 0.989·0.999 + 0.00052632 = 0.98853732.
        assert!(
            (p.double_value(&[0]) - 0.988_537_3).abs() < 1e-6,
            "{}",
            p.double_value(&[0])
        );
    }

    #[test]
    fn the_fused_kernel_is_built_and_matches_the_tensor_operations() {
        assert!(
            fused_adamw::available(),
            "the fused AdamW shim was not built: libtorch's headers lack ATen/ops/_fused_adamw.h"
        );
        let config = AdamWConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let run = |fused: bool| {
            tch::manual_seed(7);
            let a =
                Tensor::randn([64, 32], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let b = Tensor::randn([32], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            // No gradient ever reaches `idle`: both paths leave it alone.
            let idle = Tensor::ones([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let params = vec![
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
                ("idle".into(), idle.shallow_clone()),
            ];
            let mut opt = AdamW::new(params, config).with_fused(fused);
            for step in 0..5 {
                opt.zero_grad();
                let x = Tensor::randn([8, 64], (Kind::Float, tch::Device::Cpu));
                let loss = (x.matmul(&a) + &b).tanh().square().sum(Kind::Float);
                loss.backward();
                opt.step(1e-2 * f64::from(step + 1));
            }
            [a, b, idle].map(|t| t.detach().copy())
        };
        let (fused, unfused) = (run(true), run(false));
        for (f, u) in fused.iter().zip(&unfused) {
            let diff = (f - u).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "fused and unfused AdamW differ by {diff}");
        }
        assert!(unfused[2].equal(&Tensor::ones([3], (Kind::Float, tch::Device::Cpu))));
    }

    #[test]
    fn restored_state_continues_exactly() {
        let grads = [
            [0.3f32, -0.1],
            [0.2, 0.4],
            [-0.7, 0.1],
            [0.05, 0.05],
            [1.0, -1.0],
        ];
        let run = |split: usize| {
            let p = param(&[0.5, 0.5]);
            let mut opt = AdamW::new(
                vec![("w".into(), p.shallow_clone())],
                AdamWConfig::default(),
            );
            for g in &grads[..split] {
                opt.zero_grad();
                set_grad(&p, g);
                opt.step(0.1);
            }
            let saved: Vec<(String, Tensor)> = opt
                .state()
                .into_iter()
                .map(|(n, t)| (n, t.copy()))
                .collect();
            let p2 = param(&[0.0, 0.0]);
            tch::no_grad(|| p2.shallow_clone().copy_(&p));
            let mut fresh = AdamW::new(
                vec![("w".into(), p2.shallow_clone())],
                AdamWConfig::default(),
            );
            fresh.load_state(&saved).unwrap();
            for g in &grads[split..] {
                fresh.zero_grad();
                set_grad(&p2, g);
                fresh.step(0.1);
            }
            (fresh.steps(), Vec::<f32>::try_from(p2.detach()).unwrap())
        };
        assert_eq!(
            run(5),
            run(2),
            "save after 2 steps, restore, 3 more == 5 straight"
        );
        assert_eq!(run(2).0, 5);
    }

    #[test]
    fn a_state_of_the_wrong_shape_is_refused_and_changes_nothing() {
        let p = param(&[1.0, 2.0]);
        let mut opt = AdamW::new(vec![("w".into(), p)], AdamWConfig::default());
        let bad = vec![
            ("adamw.step".to_owned(), Tensor::from(3i64)),
            (
                "adamw.m.w".to_owned(),
                Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)),
            ),
            (
                "adamw.v.w".to_owned(),
                Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)),
            ),
        ];
        let err = opt.load_state(&bad).unwrap_err();
        assert!(
            err.0.contains("adamw.m.w has shape [3], the parameter [2]"),
            "{err}"
        );
        assert_eq!(opt.steps(), 0);
    }
}
