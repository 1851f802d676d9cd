//! The retention claim, as a property over random histories: no sequence of passes (writes,
//! chmods, deletions, writes whose package fails), rule changes, tier moves and expiries —
//! movers succeeding or failing — leaves a file that is present on the device without a
//! verified copy of its newest version; and a file whose newest contents have no copy yet
//! (its package failed) keeps the copy of the contents before them.
//! And retention still does its job: once the history stops, every package that holds no
//! current version expires when its superseded versions' time is up.
//!
//! The real writer ops run in process on SQLite, each in its own transaction at a clock the
//! test controls (`Unit::new(txn, now)`), against four stations (one per tier) and a mover.
//!
//! One file on purpose (~900 lines): the model of the device, the generator of histories and
//! the checks of the claim read as one argument; split, each part would lean on the others' privates.

use std::collections::{BTreeMap, HashMap};

use edgebackup_testkit::db::{Db, TestDb};
use proptest::prelude::*;
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::unit::Unit;
use super::*;
use crate::domain::*;
use crate::rules::{PendingKind, PendingState};
use crate::rules::{RuleSet, Stop};
use crate::store::{CommandFilter, Store};

const PATHS: usize = 6;
const FOLDER: &str = "/data";
const EDGE: &str = "edge-1";
const MOVER: &str = "mover-1";

#[derive(Debug, Clone, Copy)]
enum Change {
    Write,
    /// New contents whose package fails: the pass reports them without a copy.
    WriteFails,
    Chmod,
    Delete,
}

#[derive(Debug, Clone)]
enum Step {
    /// One pass with these changes (path index, change).
    Pass(Vec<(usize, Change)>),
    /// The clock moves on (ms).
    Wait(i64),
    /// The scheduler runs.
    Tick,
    /// The mover answers every open command, all succeeding or all failing.
    Movers(bool),
    /// user_data gets these waits (s), offsite never_delete or not.
    Rules([u64; 4], bool),
    /// The compaction planner's candidates are packaged again by the agent, the new package
    /// stored (or failing).
    Compact(bool),
}

fn step() -> impl Strategy<Value = Step> {
    let change = prop_oneof![Just(Change::Write), Just(Change::WriteFails), Just(Change::Chmod), Just(Change::Delete)];
    prop_oneof![
        3 => prop::collection::vec((0..PATHS, change), 1..4).prop_map(Step::Pass),
        3 => (1i64..120_000).prop_map(Step::Wait),
        3 => Just(Step::Tick),
        2 => any::<bool>().prop_map(Step::Movers),
        1 => ([1u64..120, 1u64..120, 1u64..120, 1u64..120], any::<bool>()).prop_map(|(w, n)| Step::Rules(w, n)),
        1 => any::<bool>().prop_map(Step::Compact),
    ]
}

struct Sim {
    _db: TestDb,
    store: Store,
    now: Millis,
    seq: HashMap<&'static str, u64>,
    /// What is on the device: path → (sha256, mode).
    present: BTreeMap<String, (String, u32)>,
    /// The package holding each present file's newest stored bytes.
    holder: BTreeMap<String, String>,
    /// Present files whose newest contents have no copy (their package failed).
    pending: std::collections::BTreeSet<String>,
    writes: u64,
    /// The protection delay the ops run with.
    protection_ms: Millis,
}

impl Sim {
    async fn new() -> Self {
        Self::on(Db::Sqlite).await
    }

    async fn on(kind: Db) -> Self {
        let db = TestDb::new(kind).await;
        let store = Store::connect(&db.url, 2).await.expect("connect");
        store.migrate().await.expect("migrate");
        let mut sim = Self {
            _db: db,
            store,
            now: 1_800_000_000_000,
            seq: HashMap::new(),
            present: BTreeMap::new(),
            holder: BTreeMap::new(),
            pending: Default::default(),
            writes: 0,
            protection_ms: 0,
        };
        sim.at(Bootstrap { preset: "demo".into() }).await;
        let stations =
            [("hot-1", Tier::Hot), ("warm-1", Tier::Warm), ("cold-1", Tier::Cold), ("off-1", Tier::Offsite)].map(
                |(id, tier)| Station { station_id: id.into(), tier, kind: StationKind::Local, uri: format!("/s/{id}") },
            );
        sim.at(SyncStations(stations.to_vec())).await;
        for (id, caps) in [(EDGE, vec![Capability::Backup]), (MOVER, vec![Capability::Backup, Capability::Mover])] {
            let info = HelloInfo {
                source_id: id.into(),
                label: String::new(),
                hostname: String::new(),
                os: String::new(),
                agent_version: "test".into(),
                capabilities: caps,
            };
            sim.at(Hello(info)).await;
        }
        sim
    }

    fn db(&self) -> &DatabaseConnection {
        self.store.db()
    }

    /// Applies one op in its own transaction at the simulated clock.
    async fn at<O: Op>(&mut self, op: O) -> O::Output {
        let txn = self.db().begin().await.expect("begin");
        let mut u = Unit::new(&txn, self.now, self.protection_ms, super::ClusterSettings::single());
        let mark = u.mark();
        let result = op.apply(&mut u).await;
        u.settle(mark, result.is_ok());
        let out = result.expect("op applied");
        u.flush(&mut HashMap::new()).await.expect("flush");
        txn.commit().await.expect("commit");
        out
    }

    async fn events(&mut self, source: &'static str, events: Vec<AgentEvent>) {
        let seq = self.seq.entry(source).or_insert(0);
        let numbered = events
            .into_iter()
            .map(|e| {
                *seq += 1;
                (*seq, Ok(e))
            })
            .collect();
        let op = AgentEvents { source_id: source.into(), session_id: format!("{source}-s"), events: numbered };
        let out = self.at(op).await;
        assert!(out.rejected.is_empty(), "events refused: {:?}", out.rejected);
    }

    fn entry(&self, path: &str, sha: &str, mode: u32, package_id: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size_bytes: 10,
            sha256: sha.into(),
            mode,
            uid: 0,
            gid: 0,
            modified_ns: self.now * 1_000_000,
            target: String::new(),
            package_id: package_id.into(),
            range: None,
        }
    }

    /// A user_data package of `files` files, announced now.
    fn new_package(&self, id: &str, files: usize) -> NewPackage {
        NewPackage {
            package_id: id.into(),
            path: FOLDER.into(),
            package_type: PackageType::UserData,
            size_bytes: 10 * files as u64,
            sha256: String::new(),
            tool: Tool::Native,
            made_at: Some(self.now),
        }
    }

    /// The Complete of package `n`, stored and verified on the hot station now.
    fn stored(&self, n: &NewPackage, sha: String) -> Completion {
        Completion::verified_on(&n.package_id, &sha, n.size_bytes, "hot-1", Some(self.now))
    }

    /// A pass as the agent makes it: one package of the written files (stored and verified on
    /// the hot station), the entries it holds reported right after, then the rest of the pass.
    async fn pass(&mut self, changes: &[(usize, Change)]) {
        let mut written = BTreeMap::new();
        let mut failed = BTreeMap::new();
        let mut changed = Vec::new();
        let mut deleted = Vec::new();
        for (i, change) in changes {
            let path = format!("dir/f{i}");
            match change {
                Change::Write | Change::WriteFails => {
                    deleted.retain(|d| d != &path);
                    self.writes += 1;
                    let mode = self.present.get(&path).map_or(0o644, |p| p.1);
                    let contents = (format!("{:064x}", self.writes), mode);
                    if matches!(change, Change::Write) {
                        failed.remove(&path);
                        written.insert(path, contents);
                    } else {
                        written.remove(&path);
                        failed.insert(path, contents);
                    }
                }
                Change::Chmod => {
                    if let Some((sha, mode)) = self.present.get(&path).cloned() {
                        self.present.insert(path.clone(), (sha, mode ^ 0o077));
                    }
                }
                Change::Delete => {
                    written.remove(&path);
                    failed.remove(&path);
                    if self.present.remove(&path).is_some() {
                        deleted.push(path);
                    }
                }
            }
        }
        let mut events = Vec::new();
        if !written.is_empty() {
            let id = uuid::Uuid::now_v7().to_string();
            let n = self.new_package(&id, written.len());
            let complete = self.stored(&n, format!("{:064x}", self.writes + 1_000_000));
            let packaged = written.iter().map(|(p, (sha, mode))| self.entry(p, sha, *mode, &id)).collect();
            events.push(AgentEvent::Ingest(n));
            events.push(AgentEvent::Complete(complete));
            events.push(AgentEvent::Snapshot(self.changes(packaged, Vec::new(), false)));
            for (p, v) in &written {
                self.present.insert(p.clone(), v.clone());
                self.holder.insert(p.clone(), id.clone());
                self.pending.remove(p);
            }
        }
        if !failed.is_empty() {
            let id = uuid::Uuid::now_v7().to_string();
            let n = self.new_package(&id, failed.len());
            events.push(AgentEvent::Ingest(n));
            events.push(AgentEvent::Fail(Failure { package_id: id, error: "station unreachable".into() }));
            // The pass reports the new contents without a package.
            for (p, (sha, mode)) in &failed {
                let mut e = self.entry(p, sha, *mode, "");
                e.sha256.clear();
                changed.push(e);
                self.present.insert(p.clone(), (sha.clone(), *mode));
                self.pending.insert(p.clone());
            }
        }
        // What the pass's last part reports: metadata changes (of files not packaged in this
        // pass: those were reported with their package) and deletions.
        for (i, change) in changes {
            let path = format!("dir/f{i}");
            if let (Change::Chmod, Some((sha, mode)), false, false) =
                (change, self.present.get(&path), written.contains_key(&path), failed.contains_key(&path))
            {
                let e = if self.pending.contains(&path) {
                    let mut e = self.entry(&path, sha, *mode, "");
                    e.sha256.clear();
                    e
                } else {
                    self.entry(&path, sha, *mode, &self.holder[&path])
                };
                changed.retain(|c: &FileEntry| c.path != path);
                changed.push(e);
            }
        }
        for path in &deleted {
            self.holder.remove(path);
            self.pending.remove(path);
        }
        events.push(AgentEvent::Snapshot(self.changes(changed, deleted, true)));
        self.events(EDGE, events).await;
    }

    fn changes(&self, changed: Vec<FileEntry>, deleted: Vec<String>, last: bool) -> FolderChanges {
        FolderChanges {
            folder: FOLDER.into(),
            taken_at: self.now,
            changed,
            deleted,
            skipped: Vec::new(),
            last,
            pass_end: None,
        }
    }

    async fn tick(&mut self) {
        let due = self.store.due_packages(self.now, 10_000).await.unwrap();
        self.at(Transitions(due)).await;
    }

    async fn movers(&mut self, success: bool) {
        let filter = CommandFilter { source_id: Some(MOVER.into()), open: Some(true), ..Default::default() };
        let open = self.store.commands(&filter, 10_000).await.unwrap();
        let mut answers = Vec::new();
        for c in open {
            let details = match (&c.args, success) {
                (CommandArgs::Move(m), true) => Some(CommandDetails::Move(MoveReport {
                    verified_sha256: m.sha256.clone(),
                    tool_ref: String::new(),
                })),
                _ => None,
            };
            answers.push(AgentEvent::CommandResult(CommandOutcome {
                command_id: c.command_id,
                success,
                unsupported: false,
                message: if success { "ok".into() } else { "station unreachable".into() },
                details,
            }));
        }
        if !answers.is_empty() {
            self.events(MOVER, answers).await;
        }
    }

    async fn rules(&mut self, waits: [u64; 4], never_delete: bool) -> RulesOutcome {
        let rs = RuleSet {
            package_type: PackageType::UserData,
            stops: [
                Stop { enabled: true, wait_secs: waits[0], never_delete: false },
                Stop { enabled: true, wait_secs: waits[1], never_delete: false },
                Stop { enabled: true, wait_secs: waits[2], never_delete: false },
                Stop { enabled: true, wait_secs: waits[3], never_delete },
            ],
            replicate_to_all: false,
            cache_ttl_secs: None,
            rpo_secs: None,
        };
        let op = SetRules {
            rule_sets: vec![rs],
            reason: "property test".into(),
            change: RuleChange::Update,
            actor: "test".into(),
        };
        self.at(op).await
    }

    async fn run(&mut self, s: &Step) {
        match s {
            Step::Pass(changes) => self.pass(changes).await,
            Step::Wait(ms) => self.now += ms,
            Step::Tick => self.tick().await,
            Step::Movers(ok) => self.movers(*ok).await,
            Step::Rules(waits, never) => {
                self.rules(*waits, *never).await;
            }
            Step::Compact(ok) => {
                self.compact(*ok).await;
            }
        }
    }

    /// A compaction as the agent does it: the candidates' files, unchanged on the device,
    /// packaged again; when the package is stored, the entries are reported with it (same
    /// contents and metadata). Returns the files packaged.
    async fn compact(&mut self, stored: bool) -> usize {
        let (candidates, _) = self.store.compaction_candidates("", 10_000, self.now, 99).await.unwrap();
        let mut entries = Vec::new();
        for c in candidates.iter().filter(|c| c.source_id == EDGE) {
            for path in &c.paths {
                assert!(self.present.contains_key(path) && !self.pending.contains(path), "{path} is not compactable");
                let v = self.store.versions(EDGE, FOLDER, path, 1).await.unwrap();
                entries.push(v[0].entry.clone());
            }
        }
        if entries.is_empty() {
            return 0;
        }
        let id = uuid::Uuid::now_v7().to_string();
        let n = self.new_package(&id, entries.len());
        let mut events = vec![AgentEvent::Ingest(n.clone())];
        if !stored {
            events.push(AgentEvent::Fail(Failure { package_id: id, error: "station unreachable".into() }));
            self.events(EDGE, events).await;
            return 0;
        }
        events.push(AgentEvent::Complete(self.stored(&n, format!("{:064x}", self.writes + 2_000_000))));
        for e in &mut entries {
            e.package_id = id.clone();
            e.range = None;
            self.holder.insert(e.path.clone(), id.clone());
        }
        let count = entries.len();
        events.push(AgentEvent::Snapshot(self.changes(entries, Vec::new(), false)));
        self.events(EDGE, events).await;
        count
    }

    /// The claim: every present file's newest version has a verified copy, but those whose
    /// package failed; those still have their last stored contents in a kept package.
    async fn assert_covered(&self, after: &Step) {
        let c = self.store.coverage(Some(EDGE), 1000).await.unwrap();
        assert_eq!(c.present_files, self.present.len() as u64, "present files after {after:?}");
        let unprotected: std::collections::BTreeSet<String> =
            c.unprotected.iter().map(|v| v.entry.path.clone()).collect();
        assert_eq!(unprotected, self.pending, "after {after:?}: {:#?}", c.unprotected);
        for path in &self.pending {
            let Some(id) = self.holder.get(path) else { continue };
            let p = self.store.package(id).await.unwrap().expect("kept package");
            assert_eq!(p.status, PackageStatus::Completed, "after {after:?}: {path}'s last stored contents: {p:?}");
            let placements = self.store.placements_of(std::slice::from_ref(id)).await.unwrap();
            let verified =
                placements.get(id).is_some_and(|ps| ps.iter().any(|pl| pl.status == PlacementStatus::Verified));
            assert!(verified, "after {after:?}: {path}'s last stored contents have no verified copy");
        }
        // Projections count only what will expire: a package at the end of its route holding
        // a current version is planned to stay, not to expire when its wait ends.
        for (path, id) in &self.holder {
            let p = self.store.package(id).await.unwrap().expect("holder");
            if p.tier == Some(Tier::Offsite) {
                assert_eq!(p.next_transition_at, None, "after {after:?}: {path}'s holder planned to leave: {p:?}");
            }
        }
    }
}

fn check(steps: Vec<Step>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        for s in &steps {
            sim.run(s).await;
            sim.assert_covered(s).await;
        }
        // The history stops; moves succeed from now on. Everything not needed must go.
        sim.rules([10, 10, 10, 10], false).await;
        for _ in 0..30 {
            sim.now += 100_000;
            sim.tick().await;
            sim.movers(true).await;
            sim.tick().await;
            sim.movers(true).await;
            sim.assert_covered(&Step::Tick).await;
        }
        let current: std::collections::HashSet<String> = {
            let mut ids = std::collections::HashSet::new();
            for path in sim.present.keys() {
                let v = sim.store.versions(EDGE, FOLDER, path, 1).await.unwrap();
                ids.insert(v[0].held_package().unwrap_or_default().to_owned());
            }
            ids
        };
        let packages = sim.store.list_packages(&Default::default(), None, 10_000).await.unwrap();
        for p in packages.iter().filter(|p| p.source_id == EDGE && p.status != PackageStatus::Failed) {
            if current.contains(&p.package_id) {
                assert_eq!(p.status, PackageStatus::Completed, "{p:?} holds a current version");
            } else {
                assert_eq!(p.status, PackageStatus::Expired, "{p:?} holds nothing needed any more");
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_history_leaves_a_present_file_without_a_verified_copy(steps in prop::collection::vec(step(), 1..40)) {
        check(steps);
    }
}

/// Compaction in miniature: a package kept for one current file among superseded ones has that
/// file packaged again; the version keeps its interval and moves to the new package (no new
/// version), the old package lets go and expires, and nothing is ever without a verified copy.
#[test]
fn a_compacted_package_lets_go_and_its_version_moves_without_a_new_one() {
    // The planner's queries (sums, casts, groups) on both databases.
    for kind in [Db::Sqlite, Db::Postgres] {
        compaction_in_miniature(kind);
    }
}

fn compaction_in_miniature(kind: Db) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::on(kind).await;
        sim.rules([1, 1, 1, 1], false).await;
        sim.pass(&[(0, Change::Write), (1, Change::Write), (2, Change::Write), (3, Change::Write)]).await;
        let old = sim.holder["dir/f0"].clone();
        sim.now += 1_000;
        sim.pass(&[(1, Change::Write), (2, Change::Write), (3, Change::Write)]).await;
        let before = sim.store.versions(EDGE, FOLDER, "dir/f0", 10).await.unwrap();
        assert_eq!(before.len(), 1);
        // Packaged again, but the new package failed: nothing moves.
        sim.now += 1_000;
        assert_eq!(sim.compact(false).await, 0);
        assert_eq!(sim.store.versions(EDGE, FOLDER, "dir/f0", 10).await.unwrap(), before);
        sim.assert_covered(&Step::Compact(false)).await;
        // Entries naming a package without a verified copy move nothing and supersede nothing,
        // even when the agent reports them (a Complete refused, or the part before it).
        let id = uuid::Uuid::now_v7().to_string();
        let failed = sim.new_package(&id, 1);
        let entry = FileEntry { package_id: id.clone(), range: None, ..before[0].entry.clone() };
        let part = sim.changes(vec![entry], Vec::new(), false);
        let events = vec![
            AgentEvent::Ingest(failed),
            AgentEvent::Fail(Failure { package_id: id, error: "station unreachable".into() }),
            AgentEvent::Snapshot(part),
        ];
        sim.events(EDGE, events).await;
        assert_eq!(sim.store.versions(EDGE, FOLDER, "dir/f0", 10).await.unwrap(), before, "nothing moved");
        sim.assert_covered(&Step::Compact(false)).await;
        // Stored: the one current file of the old package moves, as the same version.
        assert_eq!(sim.compact(true).await, 1, "only the old package's one live file");
        let after = sim.store.versions(EDGE, FOLDER, "dir/f0", 10).await.unwrap();
        assert_eq!(after.len(), 1, "no new version: {after:?}");
        assert_eq!((after[0].since, after[0].until), (before[0].since, None));
        assert_ne!(after[0].entry.package_id, old);
        assert_eq!(FileEntry { package_id: old.clone(), ..after[0].entry.clone() }, before[0].entry);
        sim.assert_covered(&Step::Compact(true)).await;
        let hold = sim.store.holds_of(std::slice::from_ref(&old)).await.unwrap();
        assert_eq!(hold.get(&old).map(|h| h.live_versions), Some(0), "the old package holds nothing current");
        assert_eq!(
            hold.get(&old).and_then(|h| h.superseded_at),
            Some(sim.now),
            "it keeps its copies for the route's waits from now, while the new package follows it"
        );
        let f = crate::store::JournalFilter {
            package_id: Some(old.clone()),
            event_type: Some(EventType::PackageCompacted),
            ..Default::default()
        };
        let journaled = sim.store.journal(&f, 0, 10).await.unwrap();
        assert_eq!(journaled.len(), 1, "the move is journaled: {journaled:?}");
        assert!(journaled[0].entry.details_json.contains(&after[0].entry.package_id), "{journaled:?}");
        for _ in 0..30 {
            sim.now += 10_000;
            sim.tick().await;
            sim.movers(true).await;
            sim.assert_covered(&Step::Tick).await;
        }
        let p = sim.store.package(&old).await.unwrap().unwrap();
        assert_eq!(p.status, PackageStatus::Expired, "the emptied package expired: {p:?}");
        // A second round finds nothing more to do.
        assert_eq!(sim.compact(true).await, 0);
    });
}

/// The scenario in miniature: a file that never changes outlives every expiry.
#[test]
fn a_file_that_never_changes_keeps_its_copy_through_every_expiry() {
    check(vec![
        Step::Pass(vec![(0, Change::Write), (1, Change::Write)]),
        Step::Pass(vec![(1, Change::Write)]),
        Step::Wait(100_000),
        Step::Tick,
        Step::Movers(true),
        Step::Wait(200_000),
        Step::Tick,
        Step::Movers(true),
        Step::Tick,
        Step::Movers(true),
    ]);
}

/// A rule change does not bring every package kept for good back to the scheduler: a package
/// holding a current version at the end of its route is journaled `package.retained` once, not
/// again at every rule change.
#[test]
fn a_rule_change_does_not_re_retain_packages_kept_for_good() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        sim.rules([1, 1, 1, 1], false).await;
        sim.pass(&[(0, Change::Write)]).await;
        let id = sim.holder["dir/f0"].clone();
        let retained = |sim: &Sim| {
            let f = crate::store::JournalFilter {
                package_id: Some(id.clone()),
                event_type: Some(EventType::PackageRetained),
                ..Default::default()
            };
            let store = sim.store.clone();
            async move { store.journal(&f, 0, 100).await.unwrap().len() }
        };
        for _ in 0..40 {
            sim.now += 10_000;
            sim.tick().await;
            sim.movers(true).await;
            sim.tick().await;
            sim.movers(true).await;
        }
        let p = sim.store.package(&id).await.unwrap().unwrap();
        assert_eq!((p.tier, p.next_transition_at), (Some(Tier::Offsite), None), "kept for good: {p:?}");
        assert_eq!(retained(&sim).await, 1);
        for waits in [[2, 2, 2, 2], [3, 1, 1, 5]] {
            sim.rules(waits, false).await;
            sim.now += 10_000;
            sim.tick().await;
        }
        assert_eq!(retained(&sim).await, 1, "journaled once");
        let p = sim.store.package(&id).await.unwrap().unwrap();
        assert_eq!((p.status, p.next_transition_at), (PackageStatus::Completed, None));
        sim.assert_covered(&Step::Tick).await;
    });
}

/// Projections count what is really kept: a package that reaches the end of its route holding
/// a current version is not among the expiries, however soon its wait would end; once its
/// version is superseded it is, at the end of that version's retention.
#[test]
fn a_package_kept_for_good_is_not_projected_to_expire() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        sim.rules([1, 1, 1, 60], false).await;
        sim.pass(&[(0, Change::Write)]).await;
        let id = sim.holder["dir/f0"].clone();
        for _ in 0..20 {
            sim.now += 1_000;
            sim.tick().await;
            sim.movers(true).await;
            sim.movers(true).await; // the copy left behind
            if sim.store.package(&id).await.unwrap().unwrap().tier == Some(Tier::Offsite) {
                break;
            }
        }
        let p = sim.store.package(&id).await.unwrap().unwrap();
        assert_eq!((p.tier, p.next_transition_at), (Some(Tier::Offsite), None), "{p:?}");
        let offsite = |groups: Vec<crate::store::DueGroup>| {
            groups.into_iter().filter(|g| g.tier == Tier::Offsite).map(|g| (g.count, g.earliest)).collect::<Vec<_>>()
        };
        // Its 60 s offsite wait ends within this window: still not projected to expire.
        let day = 86_400_000;
        assert_eq!(offsite(sim.store.due_groups(sim.now, sim.now + day, 5).await.unwrap()), []);
        sim.now += 10_000;
        sim.pass(&[(0, Change::Write)]).await;
        // Superseded now: kept for the route's waits (1 + 1 + 1 + 60 s), then expiring.
        let until = sim.now + 63_000;
        let p = sim.store.package(&id).await.unwrap().unwrap();
        assert_eq!(p.next_transition_at, Some(until), "{p:?}");
        assert_eq!(offsite(sim.store.due_groups(sim.now, sim.now + day, 5).await.unwrap()), [(1, until)]);
        // A rule change re-plans it by the same measure: the longer of its wait and the
        // retention of its superseded versions (now 2 + 2 + 2 + 90 s).
        sim.rules([2, 2, 2, 90], false).await;
        let p = sim.store.package(&id).await.unwrap().unwrap();
        let entered = p.tier_entered_at.unwrap();
        assert_eq!(p.next_transition_at, Some(Ord::max(entered + 90_000, until - 63_000 + 96_000)), "{p:?}");
        sim.rules([1, 1, 1, 1], false).await;
        let p = sim.store.package(&id).await.unwrap().unwrap();
        assert_eq!(p.next_transition_at, Some(until - 63_000 + 4_000), "{p:?}");
        sim.assert_covered(&Step::Tick).await;
    });
}

/// Protected retention in miniature: a shorter rule waits as a pending change (nothing expires
/// meanwhile, whatever the scheduler does), a cancelled one never applies, a due one does (and
/// journals who asked), and a change that took effect without waiting — as a rule edited
/// behind the API's back would — still cannot delete what the rules in force within the delay
/// keep.
#[test]
fn a_shorter_rule_waits_out_the_protection_delay_and_the_floor_holds_behind_it() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        sim.protection_ms = 60_000;
        sim.pass(&[(0, Change::Write)]).await;
        let old = sim.holder["dir/f0"].clone();
        sim.now += 1_000;
        sim.pass(&[(0, Change::Write)]).await;
        // `old` holds only a superseded version now: the demo rules keep it 190 s.
        let expired = |sim: &Sim, id: String| {
            let store = sim.store.clone();
            async move { store.package(&id).await.unwrap().unwrap().status == PackageStatus::Expired }
        };
        let held = sim.rules([1, 1, 1, 1], false).await;
        assert_eq!((held.snapshot_id, held.pending.len()), (0, 1), "held, nothing applied: {held:?}");
        let first = held.pending[0].clone();
        assert_eq!(first.effective_at, sim.now + 60_000);
        let PendingKind::RuleSet { shortened, .. } = &first.kind else { panic!("{first:?}") };
        assert_eq!(shortened.len(), 4, "every wait is shorter: {shortened:?}");
        for _ in 0..5 {
            sim.now += 10_000;
            sim.at(ApplyDue).await;
            sim.tick().await;
            sim.movers(true).await;
        }
        assert!(!expired(&sim, old.clone()).await, "expired while the change was pending");
        let cancelled = sim
            .at(CancelPending { change_id: first.change_id, reason: "no".into(), actor: "token:bob (operator)".into() })
            .await;
        assert_eq!(
            (cancelled.state, cancelled.resolved_by.as_str()),
            (PendingState::Cancelled, "token:bob (operator)")
        );
        sim.now += 60_000;
        let out = sim.at(ApplyDue).await;
        assert!(out.resolved.is_empty() && out.rule_sets.is_none(), "a cancelled change never applies: {out:?}");

        // Asked again, it applies once due; the rules count from when they were asked for.
        let again = sim.rules([1, 1, 1, 1], false).await.pending.remove(0);
        sim.now += 59_000;
        assert!(sim.at(ApplyDue).await.resolved.is_empty(), "not due yet");
        sim.now += 1_000;
        let out = sim.at(ApplyDue).await;
        assert_eq!(out.resolved.len(), 1);
        assert_eq!(out.resolved[0].state, PendingState::Applied);
        let stored = out.rule_sets.expect("rules changed");
        let user = stored.iter().find(|r| r.package_type == PackageType::UserData).unwrap();
        assert_eq!(user.stops.map(|s| s.wait_secs), [1, 1, 1, 1]);
        let f = crate::store::JournalFilter { event_type: Some(EventType::RulesUpdated), ..Default::default() };
        let updated = sim.store.journal(&f, 0, 1).await.unwrap().remove(0);
        assert_eq!(updated.entry.actor, "test", "the rule change is journaled as its requester's");
        assert!(updated.entry.details_json.contains(&format!("\"pending_change_id\":{}", again.change_id)));
        // Down the four 1 s stops and out.
        for _ in 0..20 {
            sim.now += 1_000;
            sim.tick().await;
            sim.movers(true).await;
            sim.movers(true).await;
        }
        assert!(expired(&sim, old).await, "the applied rule expires what it no longer keeps");

        // Behind the API's back: rules put in force at once. The demo rules were in force a
        // moment ago, so what they keep stays until they are `protection_ms` in the past.
        let mut sim2 = Sim::new().await;
        sim2.protection_ms = 60_000;
        sim2.pass(&[(0, Change::Write)]).await;
        let old = sim2.holder["dir/f0"].clone();
        sim2.now += 1_000;
        sim2.pass(&[(0, Change::Write)]).await;
        let mut short = crate::rules::preset("demo").unwrap().rule_sets;
        short.retain(|r| r.package_type == PackageType::UserData);
        short[0].stops = [
            Stop { enabled: true, wait_secs: 1, never_delete: false },
            Stop::default(),
            Stop::default(),
            Stop::default(),
        ];
        let txn = sim2.db().begin().await.unwrap();
        let mut u = Unit::new(&txn, sim2.now, sim2.protection_ms, super::ClusterSettings::single());
        policy::apply_rules(&mut u, short, "edited", RuleChange::Update, "intruder", sim2.now).await.unwrap();
        u.flush(&mut HashMap::new()).await.unwrap();
        txn.commit().await.unwrap();
        for _ in 0..5 {
            sim2.now += 10_000;
            sim2.tick().await;
            sim2.movers(true).await;
        }
        assert!(!expired(&sim2, old.clone()).await, "the floor did not hold");
        let f = crate::store::JournalFilter {
            package_id: Some(old.clone()),
            event_type: Some(EventType::PackageRetained),
            ..Default::default()
        };
        let retained = sim2.store.journal(&f, 0, 10).await.unwrap();
        assert!(retained.iter().any(|e| e.entry.details_json.contains("protection delay")), "{retained:?}");
        sim2.now += 20_000;
        for _ in 0..3 {
            sim2.tick().await;
            sim2.movers(true).await;
            sim2.movers(true).await;
        }
        assert!(expired(&sim2, old).await, "once the old rules are a delay in the past, expiry goes ahead");
    });
}

/// Deleting a package waits too; when due, its copies are deleted by a mover (retried when the
/// mover fails) before its record, so no copy is orphaned; a due deletion of a package that
/// meanwhile holds a current version fails and changes nothing.
#[test]
fn a_package_deletion_waits_and_is_checked_again_when_due() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        sim.protection_ms = 5_000;
        sim.pass(&[(0, Change::Write)]).await;
        let old = sim.holder["dir/f0"].clone();
        sim.now += 1_000;
        sim.pass(&[(0, Change::Write)]).await;
        let current = sim.holder["dir/f0"].clone();
        let ask = |id: &str| DeletePackage {
            package_id: id.into(),
            reason: "tidy".into(),
            actor: "token:ann (admin)".into(),
        };
        let held = sim.at(ask(&old)).await.expect("held");
        assert_eq!(held.effective_at, sim.now + 5_000);
        assert_eq!(sim.at(ask(&old)).await.map(|c| c.change_id), Some(held.change_id), "asking twice is one change");
        assert!(sim.store.package(&old).await.unwrap().is_some(), "not deleted while pending");
        sim.now += 5_000;
        // Due: its copy on a station is deleted by a mover first; the record stays until then.
        let deleting = |sim: &Sim| {
            let filter = CommandFilter { source_id: Some(MOVER.into()), open: Some(true), ..Default::default() };
            let store = sim.store.clone();
            let old = old.clone();
            async move {
                let open = store.commands(&filter, 100).await.unwrap();
                open.iter()
                    .filter(|c| c.package_id == old)
                    .filter(|c| matches!(&c.args, CommandArgs::Expire(x) if x.purpose == ExpirePurpose::Delete))
                    .count()
            }
        };
        let copies = |sim: &Sim| {
            let store = sim.store.clone();
            let old = old.clone();
            async move {
                let all = store.placements_of(std::slice::from_ref(&old)).await.unwrap();
                all.get(&old).into_iter().flatten().filter(|p| p.status == PlacementStatus::Verified).count()
            }
        };
        assert!(copies(&sim).await > 0, "{old} has a copy on a station");
        let out = sim.at(ApplyDue).await;
        assert!(out.resolved.is_empty(), "not done while its copies are on stations: {out:?}");
        assert_eq!(deleting(&sim).await, copies(&sim).await, "one deletion per copy, for the mover");
        assert!(sim.store.package(&old).await.unwrap().is_some(), "the record stays while its copies exist");
        assert!(sim.at(ApplyDue).await.resolved.is_empty(), "not looked at again before the recheck");
        // The mover fails: the copy stays, the record too; the deletion is asked again.
        sim.movers(false).await;
        assert!(copies(&sim).await > 0);
        sim.now += 10_000;
        assert!(sim.at(ApplyDue).await.resolved.is_empty());
        assert!(deleting(&sim).await > 0, "asked again after the mover failed");
        // The mover succeeds: no copy is left, and the record goes at the next look.
        sim.movers(true).await;
        assert_eq!(copies(&sim).await, 0);
        sim.now += 10_000;
        let out = sim.at(ApplyDue).await;
        assert_eq!(out.resolved[0].state, PendingState::Applied);
        assert!(sim.store.package(&old).await.unwrap().is_none(), "deleted when due");
        // The current version's package is refused at once, with the reason.
        let txn = sim.db().begin().await.unwrap();
        let mut u = Unit::new(&txn, sim.now, sim.protection_ms, super::ClusterSettings::single());
        let err = ask(&current).apply(&mut u).await.unwrap_err();
        assert!(err.to_string().contains("only recorded version"), "{err}");
    });
}

/// The floor covers a cache package's ttl too: a shorter ttl put in force at once does not
/// expire it before the ttl in force within the delay would.
#[test]
fn the_floor_keeps_a_cache_package_for_the_ttl_in_force_within_the_delay() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut sim = Sim::new().await;
        sim.protection_ms = 60_000;
        let cache = |ttl| RuleSet {
            package_type: PackageType::Cache,
            stops: [Stop::default(); 4],
            replicate_to_all: false,
            cache_ttl_secs: Some(ttl),
            rpo_secs: None,
        };
        let put = async |sim: &mut Sim, ttl: u64| {
            let txn = sim.db().begin().await.unwrap();
            let mut u = Unit::new(&txn, sim.now, sim.protection_ms, super::ClusterSettings::single());
            policy::apply_rules(&mut u, vec![cache(ttl)], "edited", RuleChange::Update, "intruder", sim.now)
                .await
                .unwrap();
            u.flush(&mut HashMap::new()).await.unwrap();
            txn.commit().await.unwrap();
        };
        put(&mut sim, 30).await;
        let n = NewPackage {
            package_type: PackageType::Cache,
            ..sim.new_package("0190c0de-0000-7000-8000-00000000cafe", 1)
        };
        let done = sim.stored(&n, format!("{:064x}", 7));
        sim.events(EDGE, vec![AgentEvent::Ingest(n.clone()), AgentEvent::Complete(done)]).await;
        sim.now += 1_000;
        put(&mut sim, 1).await;
        let status = async |sim: &Sim| sim.store.package(&n.package_id).await.unwrap().unwrap().status;
        for _ in 0..3 {
            sim.now += 5_000;
            sim.tick().await;
            sim.movers(true).await;
        }
        assert_eq!(status(&sim).await, PackageStatus::Completed, "expired before the 30 s ttl in force a moment ago");
        sim.now += 20_000;
        for _ in 0..3 {
            sim.tick().await;
            sim.movers(true).await;
        }
        assert_eq!(status(&sim).await, PackageStatus::Expired, "kept past the longer ttl");
    });
}
