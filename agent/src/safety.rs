//! The panic brake: mass-change detection over a one-minute window.
//!
//! Ransomware rewrites many files fast, renames or deletes them, and leaves high-entropy
//! (encrypted) contents. Any of those beyond its threshold trips the brake: uploads of changed
//! data stop (so encrypted garbage never replaces good backups) until an operator resumes.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use edgebackup_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::config::SafetyConfig;

const WINDOW: Duration = Duration::from_secs(60);
/// Bits per byte above which a sample looks encrypted or compressed.
const HIGH_ENTROPY: f64 = 7.5;
const SAMPLE: usize = 64 * 1024;

/// Persisted safety state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetyStatus {
    pub stopped: bool,
    pub reason: String,
    pub details: serde_json::Value,
}

/// Why the brake tripped, with what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub reason: String,
    pub trigger: pb::SafetyTrigger,
    pub measurements: pb::SafetyMeasurements,
}

impl Trip {
    /// A canary file in `folder` was touched.
    pub fn canary(reason: String, folder: &Path) -> Self {
        let measurements = pb::SafetyMeasurements { canary: folder.display().to_string(), ..Default::default() };
        Self { reason, trigger: pb::SafetyTrigger::Canary, measurements }
    }

    /// The measurements as `agent status` shows them.
    pub fn details(&self) -> serde_json::Value {
        let m = &self.measurements;
        let mut d = serde_json::json!({
            "trigger": self.trigger.as_str_name().trim_start_matches("SAFETY_TRIGGER_").to_ascii_lowercase(),
            "window_secs": m.window_secs,
            "changed": m.changed,
            "removed": m.removed,
            "rewritten": m.rewritten,
            "turned_high_entropy": m.turned_high_entropy,
            "replaced_by_encrypted": m.replaced_by_encrypted,
            "renamed": m.renamed,
        });
        if !m.canary.is_empty() {
            d["folder"] = m.canary.clone().into();
        }
        d
    }

    /// The alert the catcher hears.
    pub fn alert(&self) -> pb::SafetyAlert {
        pb::SafetyAlert {
            reason: self.reason.clone(),
            trigger: self.trigger as i32,
            measurements: Some(self.measurements.clone()),
        }
    }
}

/// Changes seen by one walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation {
    /// Files new or different since the previous walk (renamed ones included).
    pub changed: u32,
    /// Files gone since the previous walk (renamed ones included).
    pub removed: u32,
    /// Removed files that reappeared under another name with the same size and mtime.
    pub renamed: u32,
    /// Rewritten files whose contents now look encrypted though they did not before.
    pub turned_high_entropy: u32,
    /// Rewritten files that existed before (the base for the entropy share).
    pub rewritten: u32,
    /// Removed files (not renamed) that did not look encrypted, with an encrypted-looking file
    /// beside them named after them (`a.doc` → `a.doc.locked` or `a.locked`): the originals an
    /// attack that writes encrypted copies and deletes the originals leaves behind.
    pub replaced_by_encrypted: u32,
}

impl Observation {
    fn add(self, o: &Observation) -> Observation {
        Observation {
            changed: self.changed + o.changed,
            removed: self.removed + o.removed,
            renamed: self.renamed + o.renamed,
            turned_high_entropy: self.turned_high_entropy + o.turned_high_entropy,
            rewritten: self.rewritten + o.rewritten,
            replaced_by_encrypted: self.replaced_by_encrypted + o.replaced_by_encrypted,
        }
    }
}

/// Sliding window of observations.
///
/// What it judges, over the last minute (a rename counts once, as one change):
/// - changes (files added, rewritten, removed or renamed) against `max_changes_per_minute`;
/// - among the files that existed before and were touched (rewritten, removed or renamed away),
///   the share that now look encrypted: rewritten in place, or replaced by an encrypted-looking
///   new file while the plain original went (the commonest ransomware pattern);
/// - the share of changes that were removals or renames (a mass rename to `*.locked` is 100 %).
pub struct Detector {
    config: SafetyConfig,
    window: VecDeque<(Instant, Observation)>,
}

impl Detector {
    pub fn new(config: SafetyConfig) -> Self {
        Self { config, window: VecDeque::new() }
    }

    /// Forgets the window (after an operator resumed).
    pub fn reset(&mut self) {
        self.window.clear();
    }

    /// Adds an observation; returns the reason and measurements if the brake should trip.
    pub fn observe(&mut self, now: Instant, o: Observation) -> Option<Trip> {
        if !self.config.enabled {
            return None;
        }
        self.window.push_back((now, o));
        while self.window.front().is_some_and(|(t, _)| now.duration_since(*t) > WINDOW) {
            self.window.pop_front();
        }
        let sum = self.window.iter().fold(Observation::default(), |a, (_, o)| a.add(o));
        // A rename is one change, not an addition plus a removal.
        let total = (sum.changed + sum.removed).saturating_sub(sum.renamed);
        let replaced = sum.replaced_by_encrypted;
        // Files that existed before and were touched: rewritten, removed or renamed away.
        let existing = sum.rewritten + sum.removed;
        let c = &self.config;
        let measurements = pb::SafetyMeasurements {
            window_secs: WINDOW.as_secs() as u32,
            changed: sum.changed,
            removed: sum.removed,
            rewritten: sum.rewritten,
            turned_high_entropy: sum.turned_high_entropy,
            canary: String::new(),
            replaced_by_encrypted: replaced,
            renamed: sum.renamed,
        };
        let trip = |reason: String, trigger| Some(Trip { reason, trigger, measurements: measurements.clone() });
        if total >= c.max_changes_per_minute {
            return trip(
                format!("{total} files changed within a minute (limit {})", c.max_changes_per_minute),
                pb::SafetyTrigger::ChangeRate,
            );
        }
        if existing >= c.min_changes {
            let encrypted = sum.turned_high_entropy + replaced;
            let share = f64::from(encrypted) / f64::from(existing);
            if share >= c.max_high_entropy_share {
                let limit = c.max_high_entropy_share * 100.0;
                return if replaced >= sum.turned_high_entropy {
                    trip(
                        format!(
                            "{replaced} of {existing} files touched were replaced by encrypted-looking copies, \
                             the originals removed (limit {limit:.0}%)"
                        ),
                        pb::SafetyTrigger::EncryptedCopies,
                    )
                } else {
                    trip(
                        format!("{encrypted} of {existing} files touched now look encrypted (limit {limit:.0}%)"),
                        pb::SafetyTrigger::Entropy,
                    )
                };
            }
        }
        if total >= c.min_changes {
            let ratio = f64::from(sum.removed) / f64::from(total);
            if ratio >= c.max_rename_delete_ratio {
                return trip(
                    format!(
                        "{:.0}% of {total} changes were renames or deletes ({} renamed, {} deleted; limit {:.0}%)",
                        ratio * 100.0,
                        sum.renamed,
                        sum.removed - sum.renamed,
                        c.max_rename_delete_ratio * 100.0
                    ),
                    pb::SafetyTrigger::RenameDeleteRatio,
                );
            }
        }
        None
    }
}

/// Shannon entropy of the first 64 KiB, in bits per byte.
pub fn entropy_of(path: &Path) -> Option<f64> {
    let mut buf = vec![0u8; SAMPLE];
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < SAMPLE {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Some(entropy(&buf[..n]))
}

pub fn entropy(bytes: &[u8]) -> f64 {
    let mut sample = EntropySample::default();
    sample.update(bytes);
    sample.bits()
}

/// The byte histogram of a file's first 64 KiB, fed as the file is read (the same sample
/// `entropy_of` takes, without opening the file again).
#[derive(Clone)]
pub struct EntropySample {
    counts: [u32; 256],
    len: usize,
}

impl Default for EntropySample {
    fn default() -> Self {
        Self { counts: [0; 256], len: 0 }
    }
}

impl EntropySample {
    /// Counts the bytes of `buf` that still fall within the sample.
    pub fn update(&mut self, buf: &[u8]) {
        let take = buf.len().min(SAMPLE - self.len);
        for b in &buf[..take] {
            self.counts[*b as usize] += 1;
        }
        self.len += take;
    }

    /// Shannon entropy in bits per byte.
    pub fn bits(&self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        let len = self.len as f64;
        self.counts.iter().filter(|c| **c > 0).map(|c| f64::from(*c) / len).map(|p| -p * p.log2()).sum()
    }
}

pub fn is_high_entropy(bits: f64) -> bool {
    bits >= HIGH_ENTROPY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> Detector {
        Detector::new(SafetyConfig { max_changes_per_minute: 100, min_changes: 10, ..SafetyConfig::default() })
    }

    #[test]
    fn a_burst_within_a_minute_trips() {
        let mut d = detector();
        let t = Instant::now();
        assert!(d.observe(t, Observation { changed: 60, ..Default::default() }).is_none());
        let trip = d.observe(t + Duration::from_secs(30), Observation { changed: 50, ..Default::default() }).unwrap();
        assert!(trip.reason.contains("110 files changed"), "{}", trip.reason);
        assert_eq!((trip.trigger, trip.measurements.changed), (pb::SafetyTrigger::ChangeRate, 110));
    }

    #[test]
    fn changes_spread_over_time_do_not_trip() {
        let mut d = detector();
        let t = Instant::now();
        for i in 0..10 {
            let at = t + Duration::from_secs(61 * i);
            assert!(d.observe(at, Observation { changed: 60, ..Default::default() }).is_none());
        }
    }

    #[test]
    fn deletes_and_encryption_trip_by_ratio() {
        let mut d = detector();
        let t = Instant::now();
        assert!(d.observe(t, Observation { changed: 4, removed: 12, ..Default::default() }).is_some());
        let mut d = detector();
        let o = Observation { changed: 12, rewritten: 12, turned_high_entropy: 9, ..Default::default() };
        let trip = d.observe(t, o).unwrap();
        assert!(trip.reason.contains("look encrypted") && trip.trigger == pb::SafetyTrigger::Entropy);
        let mut d = detector();
        let o = Observation { changed: 12, rewritten: 12, turned_high_entropy: 1, ..Default::default() };
        assert!(d.observe(t, o).is_none(), "ordinary edits do not trip");
    }

    #[test]
    fn encrypted_copies_with_the_originals_removed_trip() {
        // 200 files: each written as an encrypted `.locked` copy, the original deleted.
        let mut d = Detector::new(SafetyConfig::default());
        let t = Instant::now();
        let o = Observation { changed: 200, removed: 200, replaced_by_encrypted: 200, ..Default::default() };
        let trip = d.observe(t, o).expect("trips");
        assert_eq!(trip.trigger, pb::SafetyTrigger::EncryptedCopies, "{}", trip.reason);
        assert_eq!(trip.measurements.replaced_by_encrypted, 200);
        // Spread over several walks of one minute.
        let mut d = Detector::new(SafetyConfig::default());
        let o = Observation { changed: 10, removed: 10, replaced_by_encrypted: 10, ..Default::default() };
        assert!(d.observe(t, o).is_none(), "below min_changes");
        let trip = d.observe(t + Duration::from_secs(5), o);
        assert_eq!(trip.map(|t| t.trigger), Some(pb::SafetyTrigger::EncryptedCopies));
    }

    #[test]
    fn renames_alone_reach_the_rename_share() {
        // 50 files renamed to `*.locked` (same bytes, same mtime): 50 changes, all renames.
        let mut d = Detector::new(SafetyConfig::default());
        let o = Observation { changed: 50, removed: 50, renamed: 50, ..Default::default() };
        let trip = d.observe(Instant::now(), o).expect("trips");
        assert_eq!(trip.trigger, pb::SafetyTrigger::RenameDeleteRatio);
        assert!(trip.reason.contains("100% of 50 changes") && trip.reason.contains("50 renamed"), "{}", trip.reason);
    }

    #[test]
    fn ordinary_days_do_not_trip() {
        let t = Instant::now();
        // 100 new photos (compressed, high entropy) while 30 old notes are deleted.
        let mut d = Detector::new(SafetyConfig::default());
        let o = Observation { changed: 100, removed: 30, ..Default::default() };
        assert!(d.observe(t, o).is_none());
        // A few renames among many edits.
        let mut d = Detector::new(SafetyConfig::default());
        let o = Observation { changed: 80, removed: 5, renamed: 5, rewritten: 75, ..Default::default() };
        assert!(d.observe(t, o).is_none());
    }

    #[test]
    fn entropy_tells_text_from_random() {
        assert!(entropy(b"hello hello hello hello") < 4.0);
        let random: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(is_high_entropy(entropy(&random)), "{}", entropy(&random));
    }
}
