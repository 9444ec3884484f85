//! The guarded optimiser step every trainer takes: the global L2 norm of the gradients (logged
//! as `actor/grad_norm`), a non-finite guard that skips the step rather than writing NaN into the
//! weights, clipping to a maximum norm, the step, and clearing the gradients.

use tch::{Kind, Tensor};

use crate::AdamW;

/// One optimiser's part in a [`guarded_step`], at learning rate `lr`.
pub struct Update<'a> {
    /// The optimiser, its parameters' gradients accumulated.
    pub optimizer: &'a mut AdamW,
    /// Its learning rate for this step.
    pub lr: f64,
}

/// Steps the optimisers of `updates` together: each one's gradient norm, then, if every norm is
/// finite, each clips its gradients to `max_norm` (0 = no clipping) and steps; if one is not,
/// none steps and the weights stay as they were. The gradients are cleared either way. Returns
/// the norms, in order, and whether the step was taken.
pub fn guarded_step(updates: &mut [Update<'_>], max_norm: f64) -> (Vec<f64>, bool) {
    let norms: Vec<f64> = updates
        .iter()
        .map(|u| global_norm(u.optimizer.params().map(|(_, p)| p)))
        .collect();
    let finite = norms.iter().all(|n| n.is_finite());
    for (u, &norm) in updates.iter_mut().zip(&norms) {
        if finite {
            clip(u.optimizer.params().map(|(_, p)| p), norm, max_norm);
            u.optimizer.step(u.lr);
        }
        u.optimizer.zero_grad();
    }
    (norms, finite)
}

/// Global L2 norm of the gradients of `params` (those without a gradient count as zero).
pub fn global_norm<'a>(params: impl Iterator<Item = &'a Tensor>) -> f64 {
    let squares: Vec<Tensor> = params
        .map(|p| p.grad())
        .filter(Tensor::defined)
        .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
        .collect();
    if squares.is_empty() {
        return 0.0;
    }
    Tensor::stack(&squares, 0)
        .sum(Kind::Float)
        .sqrt()
        .double_value(&[])
}

/// Scales the gradients so their global norm is at most `max_norm` (0 = no clipping), given
/// their current `norm`.
pub fn clip<'a>(params: impl Iterator<Item = &'a Tensor>, norm: f64, max_norm: f64) {
    if max_norm <= 0.0 || norm <= max_norm {
        return;
    }
    let scale = max_norm / (norm + 1e-6);
    tch::no_grad(|| {
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.g_mul_scalar_(scale);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_and_clip() {
        let a = Tensor::from_slice(&[1f32, 2.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[2f32]).set_requires_grad(true);
        let loss = (&a * Tensor::from_slice(&[3f32, 0.0])).sum(Kind::Float)
            + (&b * Tensor::from_slice(&[4f32])).sum(Kind::Float);
        loss.backward();
        let norm = global_norm([&a, &b].into_iter());
        assert!((norm - 5.0).abs() < 1e-6, "sqrt(3² + 4²) = 5, got {norm}");
        clip([&a, &b].into_iter(), norm, 1.0);
        let after = global_norm([&a, &b].into_iter());
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        assert!((a.grad().double_value(&[0]) - 0.6).abs() < 1e-5);
    }
}
