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
pub mod target;
pub mod watchers;
