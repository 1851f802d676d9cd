//! Admission: how many agents may say Hello, and how many devices may enroll, per second. A
//! reconnect storm (every agent of a restarted replica at once) is taken at this pace; the rest
//! are told when to come back (`StreamError.retry_after`, RESOURCE_EXHAUSTED), and agents add a
//! random share of that wait, so the next wave is spread instead of synchronised.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Rate limits for the stream's openings and enrollment.
pub struct Admission {
    hello: DefaultDirectRateLimiter,
    enroll: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Admission {
    /// At most `hello_per_sec` Hellos and `enroll_per_sec` enrollments a second, each with a
    /// burst of a second's worth.
    pub fn new(hello_per_sec: u32, enroll_per_sec: u32) -> Self {
        let quota = |n: u32| {
            let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(n).allow_burst(n)
        };
        Self {
            hello: RateLimiter::direct(quota(hello_per_sec)),
            enroll: RateLimiter::direct(quota(enroll_per_sec)),
            clock: DefaultClock::default(),
        }
    }

    /// Admits a Hello now, or says how long until one would be.
    pub fn hello(&self) -> Result<(), Duration> {
        self.hello.check().map_err(|not| not.wait_time_from(self.clock.now()))
    }

    /// Admits an enrollment now, or says how long until one would be.
    pub fn enroll(&self) -> Result<(), Duration> {
        self.enroll.check().map_err(|not| not.wait_time_from(self.clock.now()))
    }
}

/// What a deferred client is told to wait: the limiter's answer, but at least 100 ms (retries
/// sooner than that would only be turned away again).
pub fn retry_after(wait: Duration) -> Duration {
    wait.max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_the_rest_told_when() {
        let a = Admission::new(10, 1);
        let admitted = (0..50).filter(|_| a.hello().is_ok()).count();
        assert_eq!(admitted, 10, "a second's worth at once");
        let wait = a.hello().unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(a.enroll().is_ok());
        assert!(a.enroll().is_err(), "enrollment has its own, smaller, budget");
    }
}
