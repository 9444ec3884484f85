//! Turning raw values into a TensorBoard histogram: summary statistics plus equal-width buckets.

use rl_proto::tensorboard::HistogramProto;

/// Buckets per histogram: fine enough to see shape, small enough to keep event files lean.
pub const BUCKETS: usize = 30;

/// Histogram of the finite entries of `values` (`[n]`); `None` when there are none.
pub fn histogram(values: &[f64]) -> Option<HistogramProto> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (min, max) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if finite.is_empty() {
        return None;
    }
    let buckets = if max > min { BUCKETS } else { 1 };
    let width = (max - min) / buckets as f64;
    let mut bucket_limit: Vec<f64> = (1..=buckets).map(|i| min + width * i as f64).collect();
    bucket_limit[buckets - 1] = max; // exact right edge despite rounding
    let mut bucket = vec![0.0; buckets];
    for &v in &finite {
        let i = if width > 0.0 {
            ((v - min) / width) as usize
        } else {
            0
        };
        bucket[i.min(buckets - 1)] += 1.0;
    }
    Some(HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_finite_value_once() {
        let h = histogram(&[0.0, 1.0, 1.0, 2.0, 10.0, f64::NAN]).unwrap();
        assert_eq!(h.num, 5.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!(
            (h.min, h.max, h.sum, h.sum_squares),
            (0.0, 10.0, 14.0, 106.0)
        );
        assert_eq!(h.bucket[0], 1.0);
        assert_eq!(h.bucket[BUCKETS - 1], 1.0);
        assert_eq!(*h.bucket_limit.last().unwrap(), 10.0);
    }

    #[test]
    fn constant_values_make_one_bucket_and_empty_makes_none() {
        let h = histogram(&[3.0; 4]).unwrap();
        assert_eq!(
            (h.bucket.clone(), h.bucket_limit.clone()),
            (vec![4.0], vec![3.0])
        );
        assert!(histogram(&[f64::INFINITY]).is_none());
    }
}
