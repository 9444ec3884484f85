//! When the reward client tries again: which statuses are worth another attempt, and how long
//! to wait before it (exponential backoff with full jitter, so many clients that failed
//! together do not retry together).

use std::time::Duration;

use rand::Rng;
use tonic::Code;

/// UNAVAILABLE (no server yet, a restart), RESOURCE_EXHAUSTED (the queue is full) and
/// DEADLINE_EXCEEDED (a slow moment) may pass on a later try; anything else (a bad request, a
/// wrong token, a scorer failure) will not.
pub(crate) fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded
    )
}

/// The wait after failed attempt `attempt` (1-based): uniform in `[0, min(max, first · 2^(attempt-1))]`.
pub(crate) fn backoff(attempt: u32, first: Duration, max: Duration) -> Duration {
    let ceiling = first
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    ceiling.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_under_the_cap() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..40 {
            let ceiling = (first * 2u32.pow(attempt.min(20) - 1)).min(max);
            for _ in 0..20 {
                assert!(backoff(attempt, first, max) <= ceiling);
            }
        }
        assert!((0..50).any(|_| backoff(4, first, max) > Duration::from_millis(400)));
    }

    #[test]
    fn only_transient_codes_are_retried() {
        assert!(retryable(Code::Unavailable));
        assert!(retryable(Code::ResourceExhausted));
        assert!(retryable(Code::DeadlineExceeded));
        for code in [Code::InvalidArgument, Code::Unauthenticated, Code::Internal] {
            assert!(!retryable(code));
        }
    }
}
