//! Gradient checks before an optimiser step: the global L2 norm (logged as `actor/grad_norm`),
//! clipping to a maximum norm, and the non-finite guard that skips a step rather than writing
//! NaN into the weights.

use tch::{Kind, Tensor};

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
