//! Giving freed memory back to the system. glibc's malloc keeps what a burst freed (the large
//! snapshots of Watch subscribers that closed, the transient state of thousands of TLS
//! handshakes at once) in its arenas for reuse, and returns to the system only what lies at the
//! very top of the heap. A catcher that served one burst would then keep its peak size for ever
//! (measured: 40 stalled Watch streams closed, RSS stayed ~75 % of the peak). Every `PERIOD` this
//! worker asks malloc how much it holds free and, past `SLACK`, has it return the free pages
//! (`malloc_trim`, which releases whole pages inside the heap too, not only its top).
//!
//! Both calls walk malloc's free lists under each arena's lock in turn, so they run on the
//! blocking pool and only every few seconds: about a millisecond at a few hundred MB of heap.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the free memory is looked at.
const PERIOD: Duration = Duration::from_secs(5);

/// Free memory malloc may keep for reuse without being asked to return it.
const SLACK: usize = 16 << 20;

/// Runs until `stop`. Where malloc is not glibc's, there is nothing to do.
pub async fn run(stop: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match tokio::task::spawn_blocking(release).await {
            Ok(Some(freed)) => tracing::debug!(freed, "returned free memory to the system"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "returning free memory failed"),
        }
    }
}

/// Returns malloc's free memory to the system when it holds more than `SLACK`; how much it held.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "two glibc calls no crate wraps; the only unsafe code of the catcher")]
fn release() -> Option<usize> {
    // SAFETY: both only read and update malloc's own bookkeeping under its locks; they take no
    // pointers of ours.
    let free = unsafe { libc::mallinfo2() }.fordblks;
    (free > SLACK).then(|| {
        // SAFETY: as above; 0 keeps no extra padding at the top of the heap.
        unsafe { libc::malloc_trim(0) };
        free
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() -> Option<usize> {
    None
}
