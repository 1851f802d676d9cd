//! Retry delays: the one definition of "wait longer after each failure, up to a ceiling" that
//! every binary uses (agent reconnects, the terminal view's reconnects, tier-move retries).

use std::time::Duration;

/// `base` for the first attempt (and attempt 0), doubled for each later one, never above `max`.
pub fn exponential(attempt: u32, base: Duration, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << doublings).min(max)
}

/// `delay` scaled into `[low, high]` of itself by `unit` in [0, 1] (a random draw), so that many
/// clients failing together do not retry in lockstep.
pub fn spread(delay: Duration, low: f64, high: f64, unit: f64) -> Duration {
    delay.mul_f64(low + (high - low) * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_first_retry_up_to_the_ceiling() {
        let max = 15_000 * MS;
        assert_eq!(exponential(0, 500 * MS, max), 500 * MS);
        assert_eq!(exponential(1, 500 * MS, max), 500 * MS);
        assert_eq!(exponential(2, 500 * MS, max), 1000 * MS);
        assert_eq!(exponential(4, 500 * MS, max), 4000 * MS);
        assert_eq!(exponential(u32::MAX, 500 * MS, max), max);
    }

    #[test]
    fn spread_stays_within_its_bounds() {
        assert_eq!(spread(1000 * MS, 0.8, 1.2, 0.0), 800 * MS);
        assert_eq!(spread(1000 * MS, 0.8, 1.2, 1.0), 1200 * MS);
        assert_eq!(spread(1000 * MS, 0.5, 1.0, 7.0), 1000 * MS, "unit is clamped");
    }
}
