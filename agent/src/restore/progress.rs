//! How far a restore is, counted across the threads that fetch and write, and what it did.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::archive;

/// What a restore is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Reading the catalog and choosing copies.
    #[default]
    Planning,
    /// Fetching copies and writing files.
    Transferring,
    /// Directory metadata, syncing to disk.
    Finishing,
}

/// How far a restore is: bytes and files restored (or found already there) of those selected
/// so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub bytes: u64,
    pub total_bytes: u64,
    pub files: u64,
    pub total_files: u64,
    pub phase: Phase,
}

/// Told of progress as it happens (from worker threads too): a progress bar, the stream.
pub type OnProgress = Arc<dyn Fn(Progress) + Send + Sync>;

/// Progress counted across threads.
#[derive(Default)]
pub(super) struct Tracker {
    bytes: AtomicU64,
    total_bytes: AtomicU64,
    files: AtomicU64,
    total_files: AtomicU64,
    phase: Mutex<Phase>,
    on: Option<OnProgress>,
}

impl Tracker {
    pub(super) fn new(on: Option<OnProgress>) -> Self {
        Self { on, ..Self::default() }
    }

    pub(super) fn tell(&self) {
        if let Some(on) = &self.on {
            let (total_bytes, total_files) =
                (self.total_bytes.load(Ordering::Relaxed), self.total_files.load(Ordering::Relaxed));
            // Never more than planned: a file fetched again after a failed copy counts once.
            on(Progress {
                bytes: self.bytes.load(Ordering::Relaxed).min(total_bytes),
                total_bytes,
                files: self.files.load(Ordering::Relaxed).min(total_files),
                total_files,
                phase: *self.phase.lock().expect("restore phase"),
            });
        }
    }

    pub(super) fn phase(&self, phase: Phase) {
        *self.phase.lock().expect("restore phase") = phase;
        self.tell();
    }

    pub(super) fn selected(&self, bytes: u64, files: u64) {
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.total_files.fetch_add(files, Ordering::Relaxed);
        *self.phase.lock().expect("restore phase") = Phase::Transferring;
        self.tell();
    }

    pub(super) fn done(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
        self.tell();
    }

    /// An extraction's progress: bytes as they are written, a file at its end, and bytes taken
    /// back when a file turned out damaged (it is fetched again from another copy).
    pub(super) fn extracted(&self, e: archive::Extracted) {
        match e {
            archive::Extracted::Bytes(n) => {
                self.bytes.fetch_add(n, Ordering::Relaxed);
            }
            archive::Extracted::File => {
                self.files.fetch_add(1, Ordering::Relaxed);
            }
            archive::Extracted::Discarded(n) => {
                let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(n)));
            }
        }
        self.tell();
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    /// Files already there with the right contents (a re-run after an interruption).
    pub unchanged: u64,
    pub directories: u64,
    pub links: u64,
    /// Entries not restored, with why.
    pub skipped: Vec<(String, String)>,
    /// Copies found damaged (another copy was used when there was one).
    pub damaged: Vec<String>,
    /// Bytes read from stations: whole copies, or only the ranges of the files wanted.
    pub fetched_bytes: u64,
    pub seconds: f64,
}

impl Summary {
    pub fn report(&self, to: &Path) -> String {
        let mut s = format!(
            "restored {} files ({} bytes), {} directories, {} links into {} in {:.1} s",
            self.files,
            self.bytes,
            self.directories,
            self.links,
            to.display(),
            self.seconds
        );
        s.push_str(&format!("; {} bytes read from stations", self.fetched_bytes));
        if self.unchanged > 0 {
            s.push_str(&format!("; {} files were already there", self.unchanged));
        }
        for d in &self.damaged {
            s.push_str(&format!("\ndamaged copy: {d}"));
        }
        for (path, why) in &self.skipped {
            s.push_str(&format!("\nnot restored: {path}: {why}"));
        }
        s
    }
}
