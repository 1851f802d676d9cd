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
    pub changed: u32,
    pub removed: u32,
    /// Rewritten files whose contents now look encrypted though they did not before.
    pub turned_high_entropy: u32,
    /// Rewritten files that existed before (the base for the entropy share).
    pub rewritten: u32,
}

/// Sliding window of observations.
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
        let sum = self.window.iter().fold(Observation::default(), |a, (_, o)| Observation {
            changed: a.changed + o.changed,
            removed: a.removed + o.removed,
            turned_high_entropy: a.turned_high_entropy + o.turned_high_entropy,
            rewritten: a.rewritten + o.rewritten,
        });
        let total = sum.changed + sum.removed;
        let c = &self.config;
        let measurements = pb::SafetyMeasurements {
            window_secs: WINDOW.as_secs() as u32,
            changed: sum.changed,
            removed: sum.removed,
            rewritten: sum.rewritten,
            turned_high_entropy: sum.turned_high_entropy,
            canary: String::new(),
        };
        let trip = |reason: String, trigger| Some(Trip { reason, trigger, measurements: measurements.clone() });
        if total >= c.max_changes_per_minute {
            return trip(
                format!("{total} files changed within a minute (limit {})", c.max_changes_per_minute),
                pb::SafetyTrigger::ChangeRate,
            );
        }
        if total >= c.min_changes {
            let ratio = f64::from(sum.removed) / f64::from(total);
            if ratio >= c.max_rename_delete_ratio {
                return trip(
                    format!(
                        "{:.0}% of {total} changes were renames or deletes (limit {:.0}%)",
                        ratio * 100.0,
                        c.max_rename_delete_ratio * 100.0
                    ),
                    pb::SafetyTrigger::RenameDeleteRatio,
                );
            }
        }
        if sum.rewritten >= c.min_changes {
            let share = f64::from(sum.turned_high_entropy) / f64::from(sum.rewritten);
            if share >= c.max_high_entropy_share {
                return trip(
                    format!(
                        "{} of {} rewritten files now look encrypted (limit {:.0}%)",
                        sum.turned_high_entropy,
                        sum.rewritten,
                        c.max_high_entropy_share * 100.0
                    ),
                    pb::SafetyTrigger::Entropy,
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
    fn entropy_tells_text_from_random() {
        assert!(entropy(b"hello hello hello hello") < 4.0);
        let random: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(is_high_entropy(entropy(&random)), "{}", entropy(&random));
    }
}
