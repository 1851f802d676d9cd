//! Latency histograms (microseconds) and their JSON summary in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency recorded exactly; anything slower is recorded as this (60 s).
const MAX_US: u64 = 60_000_000;

/// A mergeable latency histogram with 3 significant digits.
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid"))
    }
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US);
        // In bounds by the clamp above, so this cannot fail.
        let _ = self.0.record(us);
    }

    pub fn record_all(&mut self, ds: &[Duration]) {
        ds.iter().for_each(|d| self.record(*d));
    }

    pub fn merge(&mut self, other: &Hist) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        Summary {
            count: self.0.len(),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.0.max() as f64 / 1000.0,
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

/// Percentiles in milliseconds (0 when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = Hist::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        let mut other = Hist::default();
        other.record(Duration::from_secs(3600)); // clamped, not an error
        h.merge(&other);
        assert_eq!(h.len(), 101);
        assert!((h.summary().max_ms - 60_000.0).abs() < 100.0);
    }
}
