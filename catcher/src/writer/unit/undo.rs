//! Atomic steps inside a unit of work: every change an op stages is logged with the value it
//! replaced, so a failed op (or a refused event inside one) is undone and leaves the batch as it
//! found it.

use std::collections::{HashMap, HashSet};

use super::{Tracked, Unit};
use crate::domain::*;
use crate::rules::PendingChange;
use crate::rules::RuleSet;

/// What a tracked row looked like before a change (its `original` never changes once loaded).
pub(super) type Staged<T> = (Option<T>, bool);

/// One undo record: the value a key had before the current op changed it.
pub(super) enum Undo {
    Package(String, Option<Staged<Package>>),
    Source(String, Option<Staged<Source>>),
    Command(String, Option<Staged<Command>>),
    Cursor(String, Option<u64>),
    Touch(String, Option<Millis>),
    Placement(String, String, Option<Placement>),
    Manifest(String, Option<Vec<ManifestEntry>>),
    NewCommandOf(String),
    Rules(Option<HashMap<PackageType, RuleSet>>, HashSet<PackageType>),
    Stations(Option<Vec<Station>>, Option<Vec<Station>>),
    CatalogCurrent(super::catalog::VersionKey, Option<Option<super::catalog::Current>>),
    CatalogOpened,
    CatalogOpenedEnd(usize, Option<Millis>, bool),
    CatalogClosed,
    CatalogRelocated,
    CatalogOpenedEntry(usize, Box<FileEntry>),
    Hold(String, Option<Staged<Hold>>),
    Enrollment(String, Option<Staged<EnrollmentToken>>),
    PersonToken(String, Option<Staged<PersonToken>>),
    Pending(String, Option<Staged<PendingChange>>),
    Alert(String, Option<Staged<Alert>>),
    Notification(String, Option<Staged<Notification>>),
    Point(String, Option<Staged<RecoveryPoint>>),
    Lease(Option<Staged<Lease>>),
}

/// Where an op started; `settle` keeps or undoes what came after.
pub struct Mark {
    undo: usize,
    journal: usize,
    snapshots: usize,
    bulk: usize,
    issued: usize,
    revocations: usize,
    next_snapshot_id: Option<u64>,
    next_pending_id: Option<u64>,
    history: usize,
    status_changed: bool,
    rules_changed: bool,
}

impl Unit<'_> {
    // ---- atomicity ----

    /// Starts an atomic step (an op, or one event inside an op); steps nest.
    pub(in crate::writer) fn mark(&mut self) -> Mark {
        self.depth += 1;
        Mark {
            undo: self.undo.len(),
            journal: self.journal.len(),
            snapshots: self.snapshots.len(),
            bulk: self.bulk.len(),
            issued: self.credentials.issued.len(),
            revocations: self.credentials.revocations.len(),
            next_snapshot_id: self.next_snapshot_id,
            next_pending_id: self.protection.next_id,
            history: self.protection.history.len(),
            status_changed: self.status_changed,
            rules_changed: self.rules_changed,
        }
    }

    /// Ends the step begun at `mark`: keeps what it staged when it succeeded, else undoes it.
    pub(in crate::writer) fn settle(&mut self, mark: Mark, keep: bool) {
        self.depth -= 1;
        if keep {
            if self.depth == 0 {
                self.undo.clear();
            }
            return;
        }
        while self.undo.len() > mark.undo {
            match self.undo.pop().expect("undo record") {
                Undo::Package(k, v) => unstage(&mut self.packages, k, v),
                Undo::Source(k, v) => unstage(&mut self.sources, k, v),
                Undo::Command(k, v) => unstage(&mut self.commands, k, v),
                Undo::Cursor(k, v) => restore(&mut self.cursors, k, v),
                Undo::Touch(k, v) => restore(&mut self.touches, k, v),
                Undo::Placement(package, station, v) => {
                    let of = self.placements.entry(package).or_default();
                    match v {
                        Some(v) => of.insert(station, v),
                        None => of.remove(&station),
                    };
                }
                Undo::Manifest(k, v) => restore(&mut self.manifests, k, v),
                Undo::NewCommandOf(k) => {
                    if let Some(ids) = self.created_for.get_mut(&k) {
                        ids.pop();
                    }
                }
                Undo::Rules(rules, dirty) => {
                    self.rules = rules;
                    self.dirty_rules = dirty;
                }
                Undo::Stations(stations, declared) => {
                    self.stations = stations;
                    self.new_stations = declared;
                }
                Undo::CatalogCurrent(k, v) => restore(&mut self.catalog.current, k, v),
                Undo::CatalogOpened => {
                    self.catalog.opened.pop();
                }
                Undo::CatalogOpenedEnd(i, until, deleted) => {
                    let v = &mut self.catalog.opened[i];
                    (v.until, v.deleted) = (until, deleted);
                }
                Undo::CatalogClosed => {
                    self.catalog.closed.pop();
                }
                Undo::CatalogRelocated => {
                    self.catalog.relocated.pop();
                }
                Undo::CatalogOpenedEntry(i, entry) => self.catalog.opened[i].entry = *entry,
                Undo::Hold(k, v) => unstage(&mut self.catalog.holds, k, v),
                Undo::Lease(v) => self.undo_lease(v),
                Undo::Enrollment(k, v) => unstage(&mut self.credentials.enrollments, k, v),
                Undo::PersonToken(k, v) => unstage(&mut self.credentials.people, k, v),
                Undo::Pending(k, v) => unstage(&mut self.protection.changes, k, v),
                Undo::Alert(k, v) => unstage(&mut self.alerts.alerts, k, v),
                Undo::Notification(k, v) => unstage(&mut self.alerts.notifications, k, v),
                Undo::Point(k, v) => unstage(&mut self.alerts.points, k, v),
            }
        }
        self.journal.truncate(mark.journal);
        self.snapshots.truncate(mark.snapshots);
        self.bulk.truncate(mark.bulk);
        self.credentials.issued.truncate(mark.issued);
        self.credentials.revocations.truncate(mark.revocations);
        self.next_snapshot_id = mark.next_snapshot_id;
        self.protection.next_id = mark.next_pending_id;
        if self.protection.history.len() > mark.history {
            self.protection.history.truncate(mark.history);
            self.protection.floor.clear();
        }
        self.status_changed = mark.status_changed;
        self.rules_changed = mark.rules_changed;
    }

    pub(super) fn log(&mut self, undo: Undo) {
        if self.depth > 0 {
            self.undo.push(undo);
        }
    }
}

/// Stages `value` as the row's new value; returns what it replaces (moved out, not cloned: this
/// is on every event's path) for the undo record.
pub(super) fn put<T>(map: &mut HashMap<String, Tracked<T>>, key: String, value: T) -> Option<Staged<T>> {
    match map.get_mut(&key) {
        Some(t) => {
            let before = (t.value.replace(value), t.dirty);
            t.dirty = true;
            Some(before)
        }
        None => {
            map.insert(key, Tracked { original: None, value: Some(value), dirty: true });
            None
        }
    }
}

/// The staged part of a tracked row, for its undo record.
pub(super) fn staged<T: Clone>(map: &HashMap<String, Tracked<T>>, k: &str) -> Option<Staged<T>> {
    map.get(k).map(|t| (t.value.clone(), t.dirty))
}

fn unstage<T>(map: &mut HashMap<String, Tracked<T>>, k: String, v: Option<Staged<T>>) {
    match v {
        Some((value, dirty)) => {
            if let Some(t) = map.get_mut(&k) {
                t.value = value;
                t.dirty = dirty;
            }
        }
        None => {
            map.remove(&k);
        }
    }
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: Option<V>) {
    match v {
        Some(v) => map.insert(k, v),
        None => map.remove(&k),
    };
}
