//! The writer's own suite, in process, on SQLite and on PostgreSQL: batching, refused ops that
//! leave nothing behind, storage failures mid-batch, and the incremental counters and day
//! buckets against a recount from the packages table.

use std::collections::HashMap;

use edgebackup_testkit::db::{Db, TestDb};
use sea_orm::ConnectionTrait;

use super::*;
use crate::domain::*;
use crate::store::Store;

/// Declares `$name` once per database: `mod sqlite { $name }` and `mod postgres { $name }`.
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Db::Sqlite).await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Db::Postgres).await;
            })+
        }
    };
}

both_databases!(
    after_a_failed_write_a_session_gets_nothing_more_applied,
    a_session_that_ended_in_a_failed_batch_is_forgotten,
    a_batch_of_valid_and_refused_ops_commits_exactly_the_valid_ones,
    a_refused_event_leaves_nothing_it_staged,
    a_storage_failure_mid_batch_applies_nothing,
    counters_and_day_buckets_match_a_recount,
    the_generation_moves_only_for_what_readers_see,
    a_status_changed_outside_a_batch_is_republished,
);

struct World {
    db: TestDb,
    store: Store,
}

async fn world(kind: Db) -> World {
    let db = TestDb::new(kind).await;
    let store = Store::connect(&db.url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    World { db, store }
}

impl World {
    fn sink(&self) -> Sink {
        Sink::new(
            super::Publish::Hub(Hub::new(64)),
            Arc::new(Notify::new()),
            Arc::new(AtomicU64::new(0)),
            super::Settings::batch(256),
            crate::metrics::Metrics::new(),
        )
    }

    /// A writer on a pool of its own: its connections live on the writer's own runtime, which
    /// ends with it, so the test's reads afterwards must not be handed one of them.
    async fn spawn(&self) -> (Writer, tokio::task::JoinHandle<()>, CancellationToken) {
        self.spawn_with(Arc::new(Notify::new())).await
    }

    /// A writer that rings `status_dirty` when the status view changed.
    async fn spawn_with(&self, status_dirty: Arc<Notify>) -> (Writer, tokio::task::JoinHandle<()>, CancellationToken) {
        let stop = CancellationToken::new();
        let own = Store::connect(&self.db.url, 4).await.expect("connect");
        let (w, task) = Writer::spawn(
            own.db().clone(),
            super::Publish::Hub(Hub::new(64)),
            status_dirty,
            super::Settings::batch(256),
            stop.clone(),
        );
        (w, task, stop)
    }

    async fn count(&self, sql: &str) -> i64 {
        let row = self
            .store
            .db()
            .query_one_raw(sea_orm::Statement::from_string(self.store.backend(), sql.to_owned()))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }
}

/// Events that are sequenced and rejected: enough to move the cursor.
fn events(source_id: &str, session_id: &str, seqs: std::ops::RangeInclusive<u64>) -> AgentEvents {
    let events = seqs.map(|seq| (seq, Err(Error::invalid("event.kind", "required")))).collect();
    AgentEvents { source_id: source_id.into(), session_id: session_id.into(), events }
}

fn ended(session_id: &str) -> Disconnected {
    Disconnected { source_id: "edge-1".into(), session_id: session_id.into(), reason: "test".into(), superseded: true }
}

fn new_package(n: u8) -> NewPackage {
    NewPackage {
        package_id: uuid::Uuid::now_v7().to_string(),
        path: format!("/data/{n}"),
        package_type: PackageType::UserData,
        size_bytes: 100 + u64::from(n),
        sha256: format!("{n:02x}").repeat(32),
        tool: Tool::Native,
        made_at: None,
    }
}

fn completion(p: &NewPackage) -> Completion {
    Completion {
        package_id: p.package_id.clone(),
        sha256: p.sha256.clone(),
        size_bytes: p.size_bytes,
        tool_ref: String::new(),
        placements: vec![PlacementReport {
            station_id: "nas".into(),
            status: PlacementStatus::Verified,
            verified_sha256: p.sha256.clone(),
            error: String::new(),
        }],
        manifest: Vec::new(),
        done_at: None,
    }
}

fn sequenced(source_id: &str, session: &str, evs: Vec<AgentEvent>) -> AgentEvents {
    let events = evs.into_iter().enumerate().map(|(i, e)| (i as u64 + 1, Ok(e))).collect();
    AgentEvents { source_id: source_id.into(), session_id: session.into(), events }
}

async fn bootstrap(w: &Writer) {
    w.submit(Bootstrap { preset: "cloud".into() }).await.expect("bootstrap");
}

async fn after_a_failed_write_a_session_gets_nothing_more_applied(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    let db = world.store.db();

    // The database fails the batch holding s1's seq 1 ...
    db.execute_unprepared("ALTER TABLE agent_cursors RENAME TO agent_cursors_away").await.unwrap();
    let failed = writer.submit(events("edge-1", "s1", 1..=1)).await;
    assert!(matches!(&failed, Err(Error::Unavailable(m)) if !m.contains("agent_cursors")), "no SQL leaks: {failed:?}");
    db.execute_unprepared("ALTER TABLE agent_cursors_away RENAME TO agent_cursors").await.unwrap();
    // ... so s1's seq 2, queued behind it, must not be applied: the cursor would pass seq 1.
    let refused = writer.submit(events("edge-1", "s1", 2..=2)).await;
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
    // The agent's next session resends from the cursor and is applied.
    assert_eq!(writer.submit(events("edge-1", "s2", 1..=2)).await.unwrap().applied_seq, 2);
    // Once s1 has ended, the writer forgets it.
    writer.submit(ended("s1")).await.unwrap();
    assert_eq!(writer.submit(events("edge-1", "s1", 3..=3)).await.unwrap().applied_seq, 3);
    stop.cancel();
    task.await.unwrap();
}

async fn a_session_that_ended_in_a_failed_batch_is_forgotten(kind: Db) {
    let world = world(kind).await;
    let db = world.store.db();
    let mut sink = world.sink();
    let (reply, answer) = oneshot::channel();
    let batch = vec![
        events("edge-1", "s1", 1..=1).request(reply).0,
        events("edge-1", "s2", 1..=1).request(oneshot::channel().0).0,
        ended("s1").request(oneshot::channel().0).0,
    ];
    db.execute_unprepared("ALTER TABLE agent_cursors RENAME TO agent_cursors_away").await.unwrap();
    apply_batch(db, &mut untraced(batch), &mut sink).await;
    assert!(answer.await.unwrap().is_err(), "the batch failed");
    assert_eq!(sink.failed_sessions, HashSet::from(["s2".to_owned()]), "s1 ended; s2 goes on and is refused");
}

async fn a_batch_of_valid_and_refused_ops_commits_exactly_the_valid_ones(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    bootstrap(&writer).await;
    stop.cancel();
    task.await.unwrap();
    let db = world.store.db();
    let journal_before = world.store.journal_head().await.unwrap();

    let (a, b) = (new_package(1), new_package(2));
    let (r1, a1) = oneshot::channel();
    let (r2, a2) = oneshot::channel();
    let (r3, a3) = oneshot::channel();
    let (r4, a4) = oneshot::channel();
    let (r5, a5) = oneshot::channel();
    let batch = vec![
        Ingest { source_id: "edge-1".into(), package: a.clone(), actor: "api".into() }.request(r1).0,
        // refused: no such package
        DeletePackage { package_id: uuid::Uuid::now_v7().to_string(), reason: "x".into(), actor: "test".into() }
            .request(r2)
            .0,
        // refused: a drill by tier needs a mover, and edge-1 is not one
        CreateCommand(NewCommand {
            source_id: "edge-1".into(),
            package_id: String::new(),
            args: CommandArgs::RestoreDrill(DrillArgs {
                scope: DrillScope::Tier(Tier::Hot),
                sample: 1,
                targets: vec![],
                scheduled: false,
            }),
            actor: "api".into(),
        })
        .request(r3)
        .0,
        sequenced("edge-1", "s", vec![AgentEvent::Ingest(b.clone()), AgentEvent::Complete(completion(&b))])
            .request(r4)
            .0,
        // refused: unknown source
        CreateCommand(NewCommand {
            source_id: "nobody".into(),
            package_id: String::new(),
            args: CommandArgs::Pause,
            actor: "api".into(),
        })
        .request(r5)
        .0,
    ];
    apply_batch(db, &mut untraced(batch), &mut world.sink()).await;
    assert!(a1.await.unwrap().unwrap().1, "a new package");
    assert!(matches!(a2.await.unwrap(), Err(Error::NotFound { .. })));
    assert!(matches!(a3.await.unwrap(), Err(Error::FailedPrecondition(_))));
    let out = a4.await.unwrap().unwrap();
    assert_eq!((out.applied_seq, out.applied, out.rejected.len()), (2, 2, 0));
    assert!(matches!(a5.await.unwrap(), Err(Error::NotFound { .. })));

    assert_eq!(world.store.package(&a.package_id).await.unwrap().unwrap().status, PackageStatus::Pending);
    assert_eq!(world.store.package(&b.package_id).await.unwrap().unwrap().status, PackageStatus::Completed);
    assert_eq!(world.count("SELECT COUNT(*) FROM commands").await, 0, "the refused commands left no row");
    // source.registered (edge-1, once), two ingests, one completion: nothing from refused ops.
    assert_eq!(world.store.journal_head().await.unwrap(), journal_before + 4);
}

async fn a_refused_event_leaves_nothing_it_staged(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    bootstrap(&writer).await;
    let p = new_package(3);
    // The first copy is staged, the second contradicts the checksum: the whole event is refused.
    let mut bad = completion(&p);
    bad.placements = vec![
        PlacementReport {
            station_id: "nas".into(),
            status: PlacementStatus::Verified,
            verified_sha256: p.sha256.clone(),
            error: String::new(),
        },
        PlacementReport {
            station_id: "s3".into(),
            status: PlacementStatus::Verified,
            verified_sha256: "ee".repeat(32),
            error: String::new(),
        },
    ];
    bad.manifest = vec![ManifestEntry { path: "a".into(), size_bytes: 1, sha256: "aa".repeat(32), modified_at: None }];
    let out = writer
        .submit(sequenced("edge-2", "s", vec![AgentEvent::Ingest(p.clone()), AgentEvent::Complete(bad)]))
        .await
        .unwrap();
    assert_eq!((out.applied_seq, out.applied), (2, 1));
    assert!(matches!(&out.rejected[..], [(2, Error::FailedPrecondition(m))] if m.contains("station s3")), "{out:?}");
    stop.cancel();
    task.await.unwrap();
    assert_eq!(world.store.package(&p.package_id).await.unwrap().unwrap().status, PackageStatus::Pending);
    assert_eq!(world.count("SELECT COUNT(*) FROM placements").await, 0, "the staged copy was undone");
    assert_eq!(world.count("SELECT COUNT(*) FROM package_manifests").await, 0, "the staged manifest was undone");
    assert!(world.store.manifest(&p.package_id).await.unwrap().is_empty());
}

async fn a_storage_failure_mid_batch_applies_nothing(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    bootstrap(&writer).await;
    stop.cancel();
    task.await.unwrap();
    let db = world.store.db();
    let head = world.store.journal_head().await.unwrap();
    let p = new_package(4);
    let (r1, a1) = oneshot::channel();
    let (r2, a2) = oneshot::channel();
    let (r3, a3) = oneshot::channel();
    let batch = vec![
        Ingest { source_id: "edge-3".into(), package: p.clone(), actor: "api".into() }.request(r1).0,
        // fails in the database: its table is away
        CreateSnapshot { reason: "test".into(), actor: "test".into() }.request(r2).0,
        RegisterSource { source_id: "edge-4".into(), label: "never".into(), actor: "test".into() }.request(r3).0,
    ];
    db.execute_unprepared("ALTER TABLE config_snapshots RENAME TO config_snapshots_away").await.unwrap();
    apply_batch(db, &mut untraced(batch), &mut world.sink()).await;
    db.execute_unprepared("ALTER TABLE config_snapshots_away RENAME TO config_snapshots").await.unwrap();
    for answer in [a1.await.unwrap().map(|_| ()), a2.await.unwrap().map(|_| ()), a3.await.unwrap().map(|_| ())] {
        assert!(matches!(&answer, Err(Error::Unavailable(m)) if !m.contains("config_snapshots")), "{answer:?}");
    }
    assert!(world.store.package(&p.package_id).await.unwrap().is_none(), "the ingest before the failure is gone");
    assert!(world.store.source("edge-4").await.unwrap().is_none(), "the op after the failure never ran");
    assert_eq!(world.store.journal_head().await.unwrap(), head);
}

async fn counters_and_day_buckets_match_a_recount(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    bootstrap(&writer).await;
    let packages: Vec<NewPackage> = (10..40).map(new_package).collect();
    let mut evs = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        let mut p = p.clone();
        if i % 3 == 0 {
            p.package_type = PackageType::AppLogs;
        }
        evs.push(AgentEvent::Ingest(p.clone()));
        if i % 4 != 0 {
            evs.push(AgentEvent::Complete(completion(&p)));
        } else if i % 8 == 0 {
            evs.push(AgentEvent::Fail(Failure { package_id: p.package_id.clone(), error: "disk".into() }));
        }
    }
    writer.submit(sequenced("edge-5", "s", evs)).await.unwrap();
    // a rule change re-plans (in SQL and in the cached rows): user data skips hot now, so its
    // completed packages are due at once; then a deletion and the metadata transitions
    let mut rules = crate::rules::preset("cloud").unwrap().rule_sets;
    rules.retain(|r| r.package_type == PackageType::UserData);
    rules[0].stops[0].enabled = false;
    writer
        .submit(SetRules {
            rule_sets: rules,
            reason: "test".into(),
            change: policy::RuleChange::Update,
            actor: "test".into(),
        })
        .await
        .unwrap();
    writer
        .submit(DeletePackage {
            package_id: packages[1].package_id.clone(),
            reason: "test".into(),
            actor: "test".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let due = world.store.due_packages(now_ms(), 1000).await.unwrap();
    assert!(!due.is_empty(), "something to move");
    writer.submit(Transitions(due)).await.unwrap();
    stop.cancel();
    task.await.unwrap();

    let kept = world.store.counters().await.unwrap();
    let kept_days = days(&world).await;
    // Spoil the counters, recount from the rows: the kept figures must be what a recount says.
    let db = world.store.db();
    db.execute_unprepared("UPDATE package_counters SET count = -1").await.unwrap();
    let (writer, task, stop) = world.spawn().await;
    writer.submit(Recount).await.unwrap();
    stop.cancel();
    task.await.unwrap();
    let recounted = world.store.counters().await.unwrap();
    assert_eq!(
        kept.iter().filter(|(_, c)| c.count != 0).collect::<HashMap<_, _>>(),
        recounted.iter().filter(|(_, c)| c.count != 0).collect::<HashMap<_, _>>()
    );
    assert_eq!(kept_days, days(&world).await);
    drop(world.db);
}

async fn days(world: &World) -> Vec<(String, String, i64, i64, i64)> {
    use crate::store::entity::transition_day;
    use sea_orm::{EntityTrait, QueryOrder};
    transition_day::Entity::find()
        .order_by_asc(transition_day::Column::PackageType)
        .order_by_asc(transition_day::Column::Tier)
        .order_by_asc(transition_day::Column::Day)
        .all(world.store.db())
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.count != 0)
        .map(|d| (d.package_type, d.tier, d.day, d.count, d.bytes))
        .collect()
}

/// Requests as queued outside any span.
fn untraced(batch: Vec<Request>) -> Vec<super::Entry> {
    batch.into_iter().map(|request| super::Entry { request, span: tracing::Span::none(), fence: None }).collect()
}

/// Heartbeats commit but change nothing a reader shows: the generation the status view caches
/// by stays; a batch that changed something moves it before its request is answered.
async fn the_generation_moves_only_for_what_readers_see(kind: Db) {
    let world = world(kind).await;
    let (writer, task, stop) = world.spawn().await;
    bootstrap(&writer).await;
    writer.submit(events("edge-g", "s1", 1..=1)).await.unwrap();
    let before = writer.generation();
    for i in 0..3 {
        writer.submit(sources::Touch(vec![("edge-g".into(), now_ms() + i)])).await.unwrap();
    }
    assert_eq!(writer.generation(), before, "heartbeats do not move the generation");
    writer.submit(events("edge-g", "s1", 2..=2)).await.unwrap();
    assert!(writer.generation() > before, "a batch that changed something (it journals a refused event) moves it");
    stop.cancel();
    task.await.unwrap();
}

/// The evaluator's RPO tally is in the status but written by no batch: telling the writer moves
/// the generation (GetStatus recomputes) and rings the publisher (Watch streams get it).
async fn a_status_changed_outside_a_batch_is_republished(kind: Db) {
    let world = world(kind).await;
    let dirty = Arc::new(Notify::new());
    let (writer, task, stop) = world.spawn_with(dirty.clone()).await;
    let before = writer.generation();
    writer.views_changed();
    assert!(writer.generation() > before, "another replica's commit moves the generation");
    let ring = tokio::time::timeout(std::time::Duration::from_millis(100), dirty.notified()).await;
    assert!(ring.is_err(), "and leaves the publisher to what that commit changed");
    let before = writer.generation();
    writer.status_changed();
    assert!(writer.generation() > before);
    tokio::time::timeout(std::time::Duration::from_secs(5), dirty.notified()).await.expect("the publisher is rung");
    stop.cancel();
    task.await.unwrap();
}
