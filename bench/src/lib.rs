//! Edge Backup benchmark tooling: a load generator that speaks the real agent and Watch
//! protocols to a catcher on loopback (`edge-loadgen`), a data generator that fills a catcher
//! database with realistic packages (`edge-datagen`), and the pieces both share. The figures and
//! how to reproduce them are in docs/BENCHMARKS.md.
#![forbid(unsafe_code)]

pub mod agents;
pub mod catalog;
pub mod datagen;
pub mod hist;
pub mod latency;
pub mod procstat;
pub mod queries;
pub mod storm;
pub mod target;
pub mod watchers;

/// Counts an error in `counter` and keeps its message in `kept` (the first 20 only: a report
/// names examples, not every one of ten thousand).
pub(crate) fn count_error(counter: &std::sync::atomic::AtomicU64, kept: &std::sync::Mutex<Vec<String>>, what: String) {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut e = kept.lock().unwrap_or_else(|e| e.into_inner());
    if e.len() < 20 {
        e.push(what);
    }
}
