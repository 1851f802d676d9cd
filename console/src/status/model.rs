//! The fleet as the status views see it: a snapshot folded with the `Watch` deltas that follow.
//!
//! Pure: no IO and no clock. `apply` is the only way the live view's state changes, so folding a
//! recorded event sequence in a test reproduces exactly what the screen shows.

use std::collections::BTreeMap;

use edgebackup_proto::v1::{self as pb, watch_event::Kind};

use super::format::millis;

/// Newest journal events kept.
pub const JOURNAL_KEEP: usize = 200;

/// Everything the views show.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Component status; `None` until the first snapshot.
    pub status: Option<pb::GetStatusResponse>,
    /// Sources by id.
    pub sources: BTreeMap<String, pb::Source>,
    /// Rule sets in package-type order.
    pub rule_sets: Vec<pb::RuleSet>,
    /// Packages by id. Ids are UUIDv7, so id order is creation order.
    pub packages: BTreeMap<String, pb::Package>,
    /// Newest journal events, newest first.
    pub journal: Vec<pb::JournalEvent>,
    /// Stations by id.
    pub stations: Vec<pb::Station>,
    /// Restores (open ones and the newest finished), by command id (UUIDv7: creation order).
    pub restores: BTreeMap<String, pb::CommandInfo>,
    /// Open pending changes (waiting out the protection delay), by id.
    pub pending_changes: BTreeMap<u64, pb::PendingChange>,
    /// Authoritative projections from `GetProjections` (the report asks once, the live view
    /// every 15 s); until the first answer they are computed from the packages held.
    pub server_projections: Option<pb::GetProjectionsResponse>,
    /// Present files and those without a verified copy (the one-shot report asks the catalog).
    pub coverage: Option<pb::GetCoverageResponse>,
    /// Alerts by id (UUIDv7: raise order): the open ones and the newest resolved.
    pub alerts: BTreeMap<String, pb::Alert>,
    /// Recovery points against their objectives (the report asks once, the live view every 15 s).
    pub recovery_points: Option<pb::GetRecoveryPointsResponse>,
    /// At most this many packages are kept (the newest); the snapshot was asked for as many.
    pub package_limit: usize,
    /// Watch events folded since the last snapshot.
    pub deltas: u64,
}

/// Finished restores kept (as the catcher's snapshot sends).
const RESTORES_KEEP: usize = 20;
/// Resolved alerts kept (as the catcher's snapshot sends).
const RESOLVED_ALERTS_KEEP: usize = 20;

/// Still open.
pub fn alert_open(a: &pb::Alert) -> bool {
    a.state == pb::AlertState::Open as i32
}

fn restore_id(c: &pb::CommandInfo) -> Option<String> {
    c.command.as_ref().map(|c| c.command_id.clone())
}

/// Pending or running.
pub fn restore_open(c: &pb::CommandInfo) -> bool {
    c.state == pb::CommandState::Pending as i32 || c.state == pb::CommandState::Leased as i32
}

/// Packages moving from one tier to the next (or expiring) within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    pub from_tier: i32,
    /// `None` when the packages expire.
    pub to_tier: Option<i32>,
    pub count: u64,
    pub total_bytes: u64,
    /// Epoch ms of the soonest move.
    pub earliest: Option<i64>,
}

impl Fleet {
    pub fn new(package_limit: usize) -> Self {
        Self { package_limit, ..Default::default() }
    }

    /// Folds one Watch event in. A snapshot replaces everything; deltas carry whole objects, so
    /// applying one twice is harmless.
    pub fn apply(&mut self, event: pb::WatchEvent) {
        let Some(kind) = event.kind else { return };
        match kind {
            Kind::Snapshot(s) => {
                self.status = s.status;
                self.sources = s.sources.into_iter().map(|s| (s.source_id.clone(), s)).collect();
                self.rule_sets = s.rule_sets;
                self.packages = s.packages.into_iter().map(|p| (p.package_id.clone(), p)).collect();
                self.journal = s.journal;
                self.stations = s.stations;
                self.restores = s.restores.into_iter().filter_map(|c| Some((restore_id(&c)?, c))).collect();
                self.pending_changes = s.pending_changes.into_iter().map(|c| (c.change_id, c)).collect();
                self.alerts = s.alerts.into_iter().map(|a| (a.id.clone(), a)).collect();
                self.deltas = 0;
                self.trim_packages();
                return;
            }
            Kind::PackageChanged(mut p) => {
                // Deltas are sent without placements; keep the ones the snapshot had.
                if let Some(old) = self.packages.get(&p.package_id)
                    && p.placements.is_empty()
                {
                    p.placements = old.placements.clone();
                }
                self.packages.insert(p.package_id.clone(), p);
                self.trim_packages();
            }
            Kind::PackageDeleted(id) => {
                self.packages.remove(&id);
            }
            Kind::SourceChanged(mut s) => {
                // Source deltas do not carry the cursor or the in-flight count (they are zero);
                // keep the last known values rather than showing a false zero.
                if let Some(old) = self.sources.get(&s.source_id) {
                    if s.last_applied_seq == 0 {
                        s.last_applied_seq = old.last_applied_seq;
                    }
                    if s.in_flight == 0 {
                        s.in_flight = old.in_flight;
                    }
                }
                self.sources.insert(s.source_id.clone(), s);
            }
            Kind::StatusChanged(s) => self.status = Some(s),
            Kind::JournalAppended(j) => {
                if self.journal.first().is_some_and(|newest| newest.sequence >= j.sequence) {
                    return; // already seen (the snapshot raced it)
                }
                self.journal.insert(0, j);
                self.journal.truncate(JOURNAL_KEEP);
            }
            Kind::RulesChanged(r) => self.rule_sets = r.rule_sets,
            Kind::PendingChange(c) => {
                if c.state == pb::PendingChangeState::Pending as i32 {
                    self.pending_changes.insert(c.change_id, c);
                } else {
                    self.pending_changes.remove(&c.change_id);
                }
            }
            Kind::AlertChanged(a) => {
                self.alerts.insert(a.id.clone(), a);
                let resolved: Vec<String> =
                    self.alerts.iter().filter(|(_, a)| !alert_open(a)).map(|(id, _)| id.clone()).collect();
                for id in resolved.iter().take(resolved.len().saturating_sub(RESOLVED_ALERTS_KEEP)) {
                    self.alerts.remove(id);
                }
            }
            Kind::RestoreChanged(c) => {
                if let Some(id) = restore_id(&c) {
                    self.restores.insert(id, c);
                }
                // Open ones all stay; of the finished, the newest few.
                let finished: Vec<String> =
                    self.restores.iter().filter(|(_, c)| !restore_open(c)).map(|(id, _)| id.clone()).collect();
                for id in finished.iter().take(finished.len().saturating_sub(RESTORES_KEEP)) {
                    self.restores.remove(id);
                }
            }
        }
        self.deltas += 1;
    }

    fn trim_packages(&mut self) {
        let limit = self.package_limit.max(1);
        while self.packages.len() > limit {
            self.packages.pop_first();
        }
    }

    /// Packages newest first.
    pub fn packages_newest_first(&self) -> impl Iterator<Item = &pb::Package> {
        self.packages.values().rev()
    }

    /// Packages newest first whose path, source, type, tier, status or id contains `filter`
    /// (case-insensitive); all when the filter is empty.
    pub fn filtered_packages<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a pb::Package> + 'a {
        let needle = filter.trim().to_lowercase();
        self.packages_newest_first().filter(move |p| needle.is_empty() || package_matches(p, &needle))
    }

    /// Fleet-wide failed packages (from the counters, not only the packages held).
    pub fn failed_packages(&self) -> u64 {
        self.status.as_ref().and_then(|s| s.statuses.as_ref()).map_or(0, |s| s.failed)
    }

    /// Alerts open fleet-wide (from the status), and of those not acknowledged.
    pub fn open_alerts(&self) -> (u64, u64) {
        self.status.as_ref().map_or((0, 0), |s| (s.alerts_open, s.alerts_unacknowledged))
    }

    /// Alerts to show: open ones newest first, then resolved ones newest first.
    pub fn alerts_in_order(&self) -> Vec<&pb::Alert> {
        let mut open: Vec<&pb::Alert> = self.alerts.values().rev().filter(|a| alert_open(a)).collect();
        open.extend(self.alerts.values().rev().filter(|a| !alert_open(a)));
        open
    }

    /// Folders whose RPO is breached (the recovery points when fetched, else the status).
    pub fn rpo_breached(&self) -> u64 {
        match &self.recovery_points {
            Some(r) => r.breached,
            None => self.status.as_ref().map_or(0, |s| s.rpo_breached),
        }
    }

    /// A source's folder furthest behind its objective (breached first, then the oldest).
    pub fn worst_recovery_point(&self, source_id: &str) -> Option<&pb::RecoveryPoint> {
        let points = self.recovery_points.as_ref()?.points.iter().filter(|p| p.source_id == source_id);
        points.max_by_key(|p| (p.state == pb::RpoState::Breached as i32, p.age.as_ref().map_or(0, |d| d.seconds)))
    }

    /// Sources stopped for safety (from the counters).
    pub fn stopped_clients(&self) -> u64 {
        self.status.as_ref().map_or(0, |s| s.clients_stopped_for_safety)
    }

    /// Per-tier stats in travel order (clients car first), zero where the catcher sent none.
    pub fn tiers(&self) -> Vec<pb::TierStats> {
        (0..=4)
            .map(|tier| {
                self.status
                    .as_ref()
                    .and_then(|s| s.tiers.iter().find(|t| t.tier == tier))
                    .cloned()
                    .unwrap_or(pb::TierStats { tier, ..Default::default() })
            })
            .collect()
    }

    /// Upcoming transitions up to `until` (epoch ms; overdue ones included): the server's answer when the
    /// report fetched one, else computed from the packages held and the rule sets.
    pub fn projections(&self, until: i64) -> Vec<Projection> {
        if let Some(p) = &self.server_projections {
            return p
                .groups
                .iter()
                .map(|g| Projection {
                    from_tier: g.from_tier,
                    to_tier: (!g.expires).then_some(g.to_tier),
                    count: g.count,
                    total_bytes: g.total_bytes,
                    earliest: millis(g.earliest.as_ref()),
                })
                .collect();
        }
        let mut groups: BTreeMap<(i32, Option<i32>), Projection> = BTreeMap::new();
        for p in self.packages.values() {
            let Some(at) = millis(p.next_transition_at.as_ref()) else { continue };
            if at > until || p.status != pb::PackageStatus::Completed as i32 {
                continue;
            }
            let Some(rules) = self.rule_sets.iter().find(|r| r.package_type == p.package_type) else { continue };
            let Some(to) = next_stop(rules, p.tier) else { continue };
            let g = groups.entry((p.tier, to)).or_insert(Projection {
                from_tier: p.tier,
                to_tier: to,
                count: 0,
                total_bytes: 0,
                earliest: None,
            });
            g.count += 1;
            g.total_bytes += p.size_bytes;
            g.earliest = Some(g.earliest.map_or(at, |e| e.min(at)));
        }
        groups.into_values().collect()
    }
}

/// Where a package in `tier` goes next under `rules`: `Some(Some(next))` moves, `Some(None)`
/// expires, `None` stays forever. Mirrors `catcher::rules::RuleSet::after`.
pub fn next_stop(rules: &pb::RuleSet, tier: i32) -> Option<Option<i32>> {
    if rules.cache_ttl.is_some() {
        return Some(None);
    }
    let stops = [&rules.hot, &rules.warm, &rules.cold, &rules.offsite];
    let enabled = |i: usize| stops[i].as_ref().is_some_and(|s| s.enabled);
    if tier == pb::Tier::Offsite as i32 && rules.offsite.as_ref().is_some_and(|s| s.never_delete) {
        return None;
    }
    let from = usize::try_from(tier).unwrap_or(0); // hot = 1 is index 0, so the next stop starts at `tier`
    Some((from..4).find(|i| enabled(*i)).map(|i| i as i32 + 1))
}

fn package_matches(p: &pb::Package, needle: &str) -> bool {
    use super::format::{status_key, tier_key, type_key};
    [p.path.as_str(), &p.source_id, type_key(p.package_type), tier_key(p.tier), status_key(p.status), &p.package_id]
        .iter()
        .any(|field| field.to_lowercase().contains(needle))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn ts(ms: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 })
    }

    pub fn package(id: &str, path: &str, status: pb::PackageStatus, tier: pb::Tier) -> pb::Package {
        pb::Package {
            package_id: id.into(),
            source_id: "edge-01".into(),
            path: path.into(),
            package_type: pb::PackageType::UserData as i32,
            size_bytes: 1024,
            status: status as i32,
            tier: tier as i32,
            ..Default::default()
        }
    }

    fn event(kind: Kind) -> pb::WatchEvent {
        pb::WatchEvent { kind: Some(kind) }
    }

    fn snapshot(packages: Vec<pb::Package>) -> pb::WatchEvent {
        event(Kind::Snapshot(pb::FleetSnapshot {
            status: Some(pb::GetStatusResponse { version: "1".into(), ..Default::default() }),
            packages,
            sources: vec![pb::Source { source_id: "edge-01".into(), in_flight: 3, ..Default::default() }],
            ..Default::default()
        }))
    }

    #[test]
    fn pending_changes_stay_while_open_and_go_when_resolved() {
        let change = |id: u64, state: pb::PendingChangeState| pb::PendingChange {
            change_id: id,
            state: state as i32,
            ..Default::default()
        };
        let mut f = Fleet::new(10);
        f.apply(snapshot(Vec::new()));
        f.apply(event(Kind::PendingChange(change(1, pb::PendingChangeState::Pending))));
        f.apply(event(Kind::PendingChange(change(2, pb::PendingChangeState::Pending))));
        assert_eq!(f.pending_changes.keys().copied().collect::<Vec<_>>(), [1, 2]);
        f.apply(event(Kind::PendingChange(change(1, pb::PendingChangeState::Cancelled))));
        f.apply(event(Kind::PendingChange(change(2, pb::PendingChangeState::Applied))));
        assert!(f.pending_changes.is_empty());
        // A snapshot brings the open ones back as they are.
        let mut s = snapshot(Vec::new());
        if let Some(Kind::Snapshot(snap)) = &mut s.kind {
            snap.pending_changes = vec![change(3, pb::PendingChangeState::Pending)];
        }
        f.apply(s);
        assert_eq!(f.pending_changes.keys().copied().collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn restores_follow_their_deltas_and_only_the_newest_finished_stay() {
        let restore = |n: u32, state: pb::CommandState| pb::CommandInfo {
            command: Some(pb::Command { command_id: format!("r{n:03}"), ..Default::default() }),
            state: state as i32,
            ..Default::default()
        };
        let mut f = Fleet::new(10);
        f.apply(snapshot(Vec::new()));
        f.apply(event(Kind::RestoreChanged(restore(0, pb::CommandState::Leased))));
        let mut later = restore(0, pb::CommandState::Leased);
        later.progress = Some(pb::CommandProgress { files_done: 7, files_total: 9, ..Default::default() });
        f.apply(event(Kind::RestoreChanged(later)));
        assert_eq!(f.restores["r000"].progress.as_ref().map(|p| p.files_done), Some(7));
        for n in 1..=30 {
            f.apply(event(Kind::RestoreChanged(restore(n, pb::CommandState::Succeeded))));
        }
        assert!(f.restores.contains_key("r000"), "a running restore stays however many finish");
        let finished: Vec<&str> = f
            .restores
            .values()
            .filter(|c| !restore_open(c))
            .filter_map(|c| c.command.as_ref())
            .map(|c| c.command_id.as_str())
            .collect();
        assert_eq!(finished.len(), RESTORES_KEEP);
        assert_eq!(finished.first(), Some(&"r011"), "the oldest finished ones go first");
    }

    #[test]
    fn a_snapshot_then_deltas_fold_into_the_fleet() {
        let mut f = Fleet::new(10);
        f.apply(snapshot(vec![package("01a", "/a", pb::PackageStatus::Pending, pb::Tier::Unspecified)]));
        assert_eq!(f.packages.len(), 1);
        assert_eq!(f.deltas, 0);

        let mut changed = package("01a", "/a", pb::PackageStatus::InProgress, pb::Tier::Unspecified);
        changed.progress_percent = 40;
        f.apply(event(Kind::PackageChanged(changed)));
        f.apply(event(Kind::PackageChanged(package("01b", "/b", pb::PackageStatus::Pending, pb::Tier::Unspecified))));
        assert_eq!(f.packages["01a"].progress_percent, 40);
        let order: Vec<_> = f.packages_newest_first().map(|p| p.package_id.as_str()).collect();
        assert_eq!(order, ["01b", "01a"], "newest (highest UUIDv7) first");

        f.apply(event(Kind::PackageDeleted("01a".into())));
        assert!(!f.packages.contains_key("01a"));

        f.apply(event(Kind::SourceChanged(pb::Source {
            source_id: "edge-01".into(),
            connected: true,
            ..Default::default()
        })));
        assert!(f.sources["edge-01"].connected);
        assert_eq!(f.sources["edge-01"].in_flight, 3, "a delta's zero in-flight does not erase the known count");
        assert_eq!(f.deltas, 4);

        // A new snapshot (after falling behind or reconnecting) replaces everything.
        f.apply(snapshot(Vec::new()));
        assert!(f.packages.is_empty());
        assert_eq!(f.deltas, 0);
    }

    #[test]
    fn journal_keeps_newest_first_without_duplicates() {
        let mut f = Fleet::new(10);
        let j = |sequence| event(Kind::JournalAppended(pb::JournalEvent { sequence, ..Default::default() }));
        f.apply(j(1));
        f.apply(j(2));
        f.apply(j(2));
        let seqs: Vec<_> = f.journal.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, [2, 1]);
    }

    #[test]
    fn the_package_limit_drops_the_oldest() {
        let mut f = Fleet::new(2);
        for id in ["01a", "01b", "01c"] {
            f.apply(event(Kind::PackageChanged(package(id, id, pb::PackageStatus::Pending, pb::Tier::Unspecified))));
        }
        assert_eq!(f.packages.keys().collect::<Vec<_>>(), ["01b", "01c"]);
    }

    #[test]
    fn filters_match_any_visible_field_case_insensitively() {
        let mut f = Fleet::new(10);
        f.apply(snapshot(vec![
            package("01a", "/data/Report.pdf", pb::PackageStatus::Failed, pb::Tier::Unspecified),
            package("01b", "/logs/app.log", pb::PackageStatus::Completed, pb::Tier::Hot),
        ]));
        let ids = |q: &str| f.filtered_packages(q).map(|p| p.package_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids("report"), ["01a"]);
        assert_eq!(ids("FAILED"), ["01a"]);
        assert_eq!(ids("hot"), ["01b"]);
        assert_eq!(ids(""), ["01b", "01a"]);
        assert!(ids("nothing-like-this").is_empty());
    }

    #[test]
    fn next_stop_follows_the_rule_set() {
        let on = |secs| {
            Some(pb::Stop {
                enabled: true,
                wait: Some(prost_types::Duration { seconds: secs, nanos: 0 }),
                never_delete: false,
            })
        };
        let mut r = pb::RuleSet { hot: on(1), warm: None, cold: on(1), offsite: on(1), ..Default::default() };
        assert_eq!(next_stop(&r, pb::Tier::Hot as i32), Some(Some(pb::Tier::Cold as i32)), "warm is skipped");
        assert_eq!(next_stop(&r, pb::Tier::Offsite as i32), Some(None), "offsite expires");
        r.offsite = Some(pb::Stop { never_delete: true, ..on(1).unwrap() });
        assert_eq!(next_stop(&r, pb::Tier::Offsite as i32), None, "never_delete stays");
        let cache =
            pb::RuleSet { cache_ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }), ..Default::default() };
        assert_eq!(next_stop(&cache, pb::Tier::Hot as i32), Some(None));
    }

    #[test]
    fn projections_group_due_packages_by_route() {
        let now = 1_000_000;
        let on = Some(pb::Stop { enabled: true, ..Default::default() });
        let mut f = Fleet::new(10);
        let mut snap = pb::FleetSnapshot {
            rule_sets: vec![pb::RuleSet {
                package_type: pb::PackageType::UserData as i32,
                hot: on,
                warm: on,
                ..Default::default()
            }],
            ..Default::default()
        };
        for (id, tier, due) in [("1", pb::Tier::Hot, 5_000), ("2", pb::Tier::Hot, 2_000), ("3", pb::Tier::Warm, 9_000)]
        {
            let mut p = package(id, id, pb::PackageStatus::Completed, tier);
            p.next_transition_at = ts(now + due);
            snap.packages.push(p);
        }
        let mut late = package("4", "4", pb::PackageStatus::Completed, pb::Tier::Hot);
        late.next_transition_at = ts(now + 10_000_000);
        snap.packages.push(late);
        f.apply(event(Kind::Snapshot(snap)));
        let p = f.projections(now + 60_000);
        assert_eq!(
            p,
            [
                Projection { from_tier: 1, to_tier: Some(2), count: 2, total_bytes: 2048, earliest: Some(now + 2_000) },
                Projection { from_tier: 2, to_tier: None, count: 1, total_bytes: 1024, earliest: Some(now + 9_000) },
            ]
        );
    }
}
