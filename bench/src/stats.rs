//! Small statistics: percentiles of latency samples, and the busiest one-second window of a
//! request counter sampled in fixed buckets.

use std::time::Duration;

/// The `p`-th percentile (0–100) by nearest rank; `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// p50 / p99 / max of unsorted samples, formatted.
pub struct Spread {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub n: usize,
}

impl Spread {
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        Some(Self {
            p50: percentile(&samples, 50.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
            n: samples.len(),
        })
    }
}

/// The largest sum of `per_window` consecutive bucket counts: with 100 ms buckets and
/// `per_window = 10`, the most requests seen in any one-second window (to bucket precision).
pub fn busiest_window(buckets: &[u64], per_window: usize) -> u64 {
    if buckets.is_empty() || per_window == 0 {
        return 0;
    }
    let w = per_window.min(buckets.len());
    let mut sum: u64 = buckets[..w].iter().sum();
    let mut best = sum;
    for i in w..buckets.len() {
        sum = sum + buckets[i] - buckets[i - w];
        best = best.max(sum);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_busiest_window_slides_over_the_buckets() {
        assert_eq!(busiest_window(&[1, 5, 5, 1, 9], 2), 10);
        assert_eq!(busiest_window(&[3], 10), 3);
    }
}
