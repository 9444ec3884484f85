//! Learning-rate schedules: linear warm-up to the peak, then constant, linear or cosine decay to
//! 0 at the last step.

use rl_core::config::LrSchedule;

/// The learning rate at optimiser step `step` (0-based) of `total`.
pub fn learning_rate(peak: f64, schedule: LrSchedule, warmup: u64, step: u64, total: u64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).clamp(0.0, 1.0);
    match schedule {
        LrSchedule::Constant => peak,
        LrSchedule::Linear => peak * (1.0 - progress),
        LrSchedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_decay() {
        let lr = |s, step| learning_rate(1.0, s, 4, step, 14);
        assert_eq!(lr(LrSchedule::Constant, 0), 0.25);
        assert_eq!(lr(LrSchedule::Constant, 3), 1.0);
        assert_eq!(lr(LrSchedule::Constant, 13), 1.0);
        assert_eq!(lr(LrSchedule::Linear, 4), 1.0);
        assert!((lr(LrSchedule::Linear, 9) - 0.5).abs() < 1e-12);
        assert!((lr(LrSchedule::Cosine, 9) - 0.5).abs() < 1e-12);
        assert!(lr(LrSchedule::Cosine, 14).abs() < 1e-12);
    }
}
