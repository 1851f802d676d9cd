//! Live latency: when a simulated agent sends an event, the tracker notes the time; when a Watch
//! subscriber sees the package in that state (or a later one), the difference is recorded, once
//! per subscriber. Group commit may fold several events of one package into one change, so a
//! change at stage `s` settles every unseen event at or below `s`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::hist::Hist;

const SHARDS: usize = 64;

struct Track {
    /// (stage, sent at), in sending order.
    sends: Vec<(u8, Instant)>,
    /// Highest stage each watcher has seen; -1 for none.
    seen: Vec<i16>,
    last_stage: u8,
    first_sent: Instant,
}

/// Shared between agents (which send) and watchers (which see).
pub struct Tracker {
    shards: Vec<Mutex<HashMap<String, Track>>>,
    watchers: usize,
    max_tracked: usize,
    tracked: AtomicUsize,
    hist: Mutex<Hist>,
    /// Events never seen by some watcher within the sweep age (lagged snapshots, or still unseen at the end).
    pub unseen: AtomicU64,
    /// Events not tracked because the tracker was full.
    pub untracked: AtomicU64,
}

fn shard_of(id: &str) -> usize {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tracker {
    pub fn new(watchers: usize, max_tracked: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            watchers,
            max_tracked,
            tracked: AtomicUsize::new(0),
            hist: Mutex::new(Hist::default()),
            unseen: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// An agent sent `package`'s event at `stage`; `last_stage` is its final stage (Complete).
    pub fn sent(&self, package: &str, stage: u8, last_stage: u8, at: Instant) {
        if self.watchers == 0 {
            return;
        }
        let mut shard = lock(&self.shards[shard_of(package)]);
        if let Some(t) = shard.get_mut(package) {
            t.sends.push((stage, at));
            return;
        }
        if self.tracked.load(Ordering::Relaxed) >= self.max_tracked {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.tracked.fetch_add(1, Ordering::Relaxed);
        let track = Track { sends: vec![(stage, at)], seen: vec![-1; self.watchers], last_stage, first_sent: at };
        shard.insert(package.to_owned(), track);
    }

    /// Watcher `w` saw `package` at `stage`.
    pub fn seen(&self, w: usize, package: &str, stage: u8, now: Instant) {
        let mut settled = Vec::new();
        {
            let mut shard = lock(&self.shards[shard_of(package)]);
            let Some(t) = shard.get_mut(package) else { return };
            let Some(prev) = t.seen.get_mut(w) else { return };
            let stage = i16::from(stage);
            if stage <= *prev {
                return;
            }
            for (s, at) in &t.sends {
                let s = i16::from(*s);
                if s > *prev && s <= stage {
                    settled.push(now.saturating_duration_since(*at));
                }
            }
            *prev = stage;
            let last = i16::from(t.last_stage);
            if t.seen.iter().all(|&s| s >= last) {
                shard.remove(package);
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if !settled.is_empty() {
            lock(&self.hist).record_all(&settled);
        }
    }

    /// Forgets packages first sent more than `age` ago, counting their unseen events.
    pub fn sweep(&self, age: Duration) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|_, t| {
                if now.saturating_duration_since(t.first_sent) < age {
                    return true;
                }
                let unseen: usize =
                    t.seen.iter().map(|&seen| t.sends.iter().filter(|(s, _)| i16::from(*s) > seen).count()).sum();
                self.unseen.fetch_add(unseen as u64, Ordering::Relaxed);
                self.tracked.fetch_sub(1, Ordering::Relaxed);
                false
            });
        }
    }

    pub fn summary(&self) -> crate::hist::Summary {
        lock(&self.hist).summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folded_change_settles_every_event_below_it_once_per_watcher() {
        let t = Tracker::new(2, 10);
        let t0 = Instant::now();
        t.sent("p", 0, 2, t0);
        t.sent("p", 1, 2, t0);
        t.seen(0, "p", 1, t0 + Duration::from_millis(10)); // ingest + progress folded into one change
        t.seen(0, "p", 1, t0 + Duration::from_millis(20)); // repeated: nothing new
        t.seen(1, "p", 0, t0 + Duration::from_millis(5));
        assert_eq!(t.summary().count, 3);
        t.sent("p", 2, 2, t0);
        t.seen(0, "p", 2, t0 + Duration::from_millis(1));
        t.seen(1, "p", 2, t0 + Duration::from_millis(1));
        assert_eq!(t.summary().count, 6);
        assert_eq!(t.tracked.load(Ordering::Relaxed), 0, "fully seen packages are forgotten");
        t.seen(0, "unknown", 1, t0);
        t.seen(7, "p", 1, t0);
    }

    #[test]
    fn sweeping_counts_what_was_never_seen_and_the_cap_holds() {
        let t = Tracker::new(1, 1);
        t.sent("a", 0, 1, Instant::now());
        t.sent("b", 0, 1, Instant::now());
        assert_eq!(t.untracked.load(Ordering::Relaxed), 1);
        t.sweep(Duration::ZERO);
        assert_eq!(t.unseen.load(Ordering::Relaxed), 1);
        t.sent("b", 0, 1, Instant::now());
        assert_eq!(t.tracked.load(Ordering::Relaxed), 1);
    }
}
