//! What live-view subscribers may hold: every `Watch` event waiting to be sent holds a share of
//! its subscriber's byte budget and of the catcher's total, from when it is queued until the
//! stream asks for the next one (by then hyper has taken its encoded bytes). A subscriber that
//! does not read stops getting events once its budget is used (it is re-synced with one
//! snapshot when it reads again); one credential may hold only so many streams; snapshots are
//! built a few at a time. Memory for live views is bounded whoever connects and however slowly
//! they read.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Budgets are counted in KiB so a semaphore's `u32` permits cover gibibytes.
const UNIT: usize = 1024;

/// What an event costs while it waits, per byte of its encoding: its encoded copy in the
/// transport, the buffer it was encoded into, the decoded message until then, and what building
/// it leaves to the allocator (measured: each subscriber that never reads, holding a 2.5 MB
/// snapshot, grew the catcher's resident memory by about 17 MB).
const COST_PER_BYTE: usize = 7;

/// What each subscriber may hold outside the total (in units): one that reads keeps getting its
/// snapshot and deltas however many stalled ones use the total.
const OWN_FLOOR: u32 = 2048;

/// What the transport may still hold of the events a stream has yielded: hyper hands one chunk
/// to h2, which keeps it until the peer's window allows, and holds the next one itself before
/// it asks for more (tonic makes a chunk of at least 32 KiB or one larger message). An event is
/// surely gone once this much has been yielded after it.
const IN_TRANSPORT: usize = 128 * 1024;

/// The catcher-wide limits.
#[derive(Debug)]
pub struct Subscribers {
    per_subscriber: u32,
    total: Arc<Semaphore>,
    per_credential: usize,
    open: Mutex<HashMap<String, usize>>,
    /// Snapshot builds at once (each reads up to 10,000 packages).
    pub builds: Semaphore,
}

impl Subscribers {
    pub fn new(per_subscriber_bytes: usize, total_bytes: usize, per_credential: usize) -> Self {
        let units = |b: usize| u32::try_from(b.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
        Self {
            per_subscriber: units(per_subscriber_bytes),
            total: Arc::new(Semaphore::new(units(total_bytes) as usize)),
            per_credential,
            open: Mutex::new(HashMap::new()),
            builds: Semaphore::new(2),
        }
    }

    /// Admits one more stream for `credential`, or refuses it when it holds its share.
    pub fn admit(self: &Arc<Self>, credential: &str) -> Result<Subscriber> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(credential.to_owned()).or_default();
        if *n >= self.per_credential {
            return Err(Error::ResourceExhausted(format!(
                "at most {} Watch streams per credential are open at once; close one first",
                self.per_credential
            )));
        }
        *n += 1;
        Ok(Subscriber {
            limits: self.clone(),
            credential: credential.to_owned(),
            own: Arc::new(Semaphore::new(self.per_subscriber as usize)),
        })
    }

    /// Free share of the total, in bytes.
    #[cfg(test)]
    fn available_bytes(&self) -> usize {
        self.total.available_permits() * UNIT
    }
}

/// One admitted stream; leaving frees its place.
#[derive(Debug)]
pub struct Subscriber {
    limits: Arc<Subscribers>,
    credential: String,
    own: Arc<Semaphore>,
}

/// A share of the budgets for an event of `bytes`, returned when dropped.
#[derive(Debug)]
pub struct Held {
    bytes: usize,
    _own: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Subscriber {
    fn units(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.saturating_mul(COST_PER_BYTE).div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.limits.per_subscriber)
    }

    /// Waits until `bytes` fit this subscriber's budget and the total (a message larger than
    /// the subscriber's whole budget takes all of it).
    pub async fn hold(&self, bytes: usize) -> Held {
        let n = self.units(bytes);
        let own = self.own.clone().acquire_many_owned(n).await.expect("never closed");
        let over = self.over_floor(n);
        let total = self.limits.total.clone().acquire_many_owned(over).await.expect("never closed");
        Held { bytes, _own: own, _total: total }
    }

    /// Holds `bytes` now, or says why not: the catcher's total is in use by other subscribers.
    pub fn try_hold(&self, bytes: usize) -> Result<Held> {
        let n = self.units(bytes);
        let busy = |what: &str| {
            Error::ResourceExhausted(format!(
                "the {what} is in use{}; retry later",
                if what.contains("total") { " by other subscribers" } else { "" }
            ))
        };
        let own = self
            .own
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| busy("subscriber's live-view memory (watch_subscriber_bytes)"))?;
        let over = self.over_floor(n);
        let total = self
            .limits
            .total
            .clone()
            .try_acquire_many_owned(over)
            .map_err(|_| busy("catcher's live-view memory (watch_total_bytes)"))?;
        Ok(Held { bytes, _own: own, _total: total })
    }

    /// Of `n` units just taken from the subscriber's own budget, how many count against the
    /// total (those above the subscriber's floor).
    fn over_floor(&self, n: u32) -> u32 {
        let used = self.limits.per_subscriber.saturating_sub(self.own.available_permits() as u32);
        let before = used.saturating_sub(n);
        used.saturating_sub(OWN_FLOOR.max(before)).min(n)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.credential) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.credential);
            }
        }
    }
}

/// Yields the items of a queue of (item, share) and keeps each item's share while the
/// transport may still hold its bytes (`IN_TRANSPORT`).
pub struct Metered<S, T> {
    inner: S,
    /// Shares of the yielded items still held, oldest first, each with the running total of
    /// bytes yielded up to its end (so a yield costs O(1) however many shares are held).
    sent: std::collections::VecDeque<(Held, usize)>,
    /// Bytes yielded so far (wrapping: only differences are read).
    yielded: usize,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<S, T> Metered<S, T> {
    pub fn new(inner: S) -> Self {
        Self { inner, sent: std::collections::VecDeque::new(), yielded: 0, _item: std::marker::PhantomData }
    }
}

impl<S: Stream<Item = (T, Held)> + Unpin, T> Stream for Metered<S, T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some((item, held))) => {
                let this = &mut *self;
                this.yielded = this.yielded.wrapping_add(held.bytes);
                this.sent.push_back((held, this.yielded));
                // An item is surely out of the transport once IN_TRANSPORT bytes followed it.
                while this.sent.front().is_some_and(|(_, end)| this.yielded.wrapping_sub(*end) >= IN_TRANSPORT) {
                    this.sent.pop_front();
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A yielded item's share is kept until IN_TRANSPORT bytes followed it, then returned.
    #[tokio::test]
    async fn metered_keeps_shares_while_the_transport_may_hold_them() {
        use futures::StreamExt;
        let limits = Arc::new(Subscribers::new(64 << 20, 64 << 20, 1));
        let sub = limits.admit("token:m").unwrap();
        let free = || sub.own.available_permits();
        let all = free();
        let item = 16 * 1024;
        let mut shares = Vec::new();
        for i in 0..20 {
            shares.push((i, sub.try_hold(item).unwrap()));
        }
        let per_item = (all - free()) / 20;
        let mut m = Metered::new(futures::stream::iter(shares));
        for n in 1..=20 {
            assert_eq!(m.next().await, Some(n - 1));
            // Items with IN_TRANSPORT bytes after them are released; the rest are held.
            let followed = |k: usize| (n - 1 - k) * item; // bytes yielded after item k
            let held = (0..n).filter(|&k| followed(k) < IN_TRANSPORT).count();
            let queued = 20 - n;
            assert_eq!(all - free(), (held + queued) * per_item, "after {n} items");
        }
        assert_eq!(m.next().await, None);
        drop(m);
        assert_eq!(free(), all, "every share returned once the stream is gone");
    }

    #[tokio::test]
    async fn shares_are_bounded_and_returned() {
        let floor = OWN_FLOOR as usize * UNIT;
        let limits = Arc::new(Subscribers::new(floor + 4 * UNIT, 6 * UNIT, 2));
        let a = limits.admit("token:a").unwrap();
        let _b = limits.admit("token:a").unwrap();
        assert!(limits.admit("token:a").is_err(), "a third stream for one credential");
        let c = limits.admit("token:c").unwrap();
        // Bytes that cost exactly `u` units.
        let cost = |u: usize| u * UNIT / COST_PER_BYTE;
        let held = a.hold(100 * floor).await; // larger than the subscriber's budget: all of it
        assert_eq!(limits.available_bytes(), 2 * UNIT, "only what is above the floor counts in the total");
        assert!(a.try_hold(1).is_err(), "the subscriber's own budget is used up");
        let within = c.try_hold(cost(OWN_FLOOR as usize)).unwrap(); // c's floor: outside the total
        assert_eq!(limits.available_bytes(), 2 * UNIT);
        let over = c.try_hold(cost(2)).unwrap(); // 2 KiB above c's floor
        let err = c.try_hold(1).unwrap_err();
        assert!(err.to_string().contains("watch_total_bytes"), "{err}");
        drop((held, within, over));
        assert_eq!(limits.available_bytes(), 6 * UNIT);
        drop(a);
        assert!(limits.admit("token:a").is_ok(), "a closed stream frees its place");
    }
}
