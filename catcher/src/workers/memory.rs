//! Giving freed memory back to the system. glibc's malloc keeps what a burst freed (the large
//! snapshots of Watch subscribers that closed, the transient state of thousands of TLS
//! handshakes at once) in its arenas for reuse, and returns to the system only what lies at the
//! very top of the heap. A catcher that served one burst would then keep its peak size for ever
//! (measured: 40 stalled Watch streams closed, RSS stayed ~75 % of the peak). Every `PERIOD` this
//! worker asks malloc how much it holds free and, past `SLACK`, has it return the free pages
//! (`malloc_trim`, which releases whole pages inside the heap too, not only its top) — unless
//! neither the process nor its free memory grew since it last did: released pages still count
//! as free, so the free figure alone stays high after one burst, and trimming again every period
//! only made the heap fault the same pages back in (measured: 0.3 % of a core on an idle catcher over a
//! million packages, and a periodic stall in the tail of every read).
//!
//! Both calls walk malloc's free lists under each arena's lock in turn, so they run on the
//! blocking pool and only every few seconds: about a millisecond at a few hundred MB of heap.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the free memory is looked at.
const PERIOD: Duration = Duration::from_secs(5);

/// Free memory malloc may keep for reuse without being asked to return it, and growth of the
/// resident size since the last release that is not looked into.
const SLACK: usize = 16 << 20;

/// Runs until `stop`. Where malloc is not glibc's, there is nothing to do.
pub async fn run(stop: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut settled = Settled::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match tokio::task::spawn_blocking(move || release(settled)).await {
            Ok(Some(r)) => {
                tracing::debug!(freed = r.free, resident = r.resident, "returned free memory to the system");
                settled = r;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "returning free memory failed"),
        }
    }
}

/// The last release: what malloc held free, and the resident size after it (both 0 before the
/// first).
#[derive(Debug, Clone, Copy, Default)]
struct Settled {
    free: usize,
    resident: usize,
}

/// Whether to release: malloc holds more than `SLACK` free, and since the last release either
/// the process grew (pages were faulted in again) or more was freed, by more than `SLACK`.
fn worth_releasing(free: usize, resident: usize, last: Settled) -> bool {
    free > SLACK && (resident > last.resident.saturating_add(SLACK) || free > last.free.saturating_add(SLACK))
}

/// Returns malloc's free memory to the system when `worth_releasing`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "two glibc calls no crate wraps; the only unsafe code of the catcher")]
fn release(last: Settled) -> Option<Settled> {
    // Unknown (no /proc): judged by the free figure alone, as if the process kept growing.
    let resident = resident_bytes().unwrap_or(usize::MAX);
    // SAFETY: both only read and update malloc's own bookkeeping under its locks; they take no
    // pointers of ours.
    let free = unsafe { libc::mallinfo2() }.fordblks;
    worth_releasing(free, resident, last).then(|| {
        // SAFETY: as above; 0 keeps no extra padding at the top of the heap.
        unsafe { libc::malloc_trim(0) };
        Settled { free, resident: resident_bytes().unwrap_or(0) }
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release(_last: Settled) -> Option<Settled> {
    None
}

/// This process's resident set, from `/proc/self/status` (`VmRSS:  1234 kB`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: usize =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[test]
    fn released_once_per_growth() {
        let none = Settled::default();
        let last = Settled { free: 40 * MB, resident: 260 * MB };
        // A burst freed: released.
        assert!(worth_releasing(40 * MB, 300 * MB, none));
        // Little free: nothing to give back.
        assert!(!worth_releasing(4 * MB, 300 * MB, none));
        // The next periods: the pages are gone but still count as free; nothing grew, no release.
        assert!(!worth_releasing(40 * MB, 262 * MB, last));
        // Pages reused (faulted in again) and freed again: released again.
        assert!(worth_releasing(40 * MB, 300 * MB, last));
        // Grown by live data, little free: kept until it is freed ...
        assert!(!worth_releasing(4 * MB, 300 * MB, last));
        // ... and memory that was live at the last release freed since (streams closed): released.
        assert!(worth_releasing(140 * MB, 262 * MB, last));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn resident_size_is_read() {
        let rss = resident_bytes().expect("/proc/self/status");
        assert!(rss > MB, "{rss}");
    }
}
