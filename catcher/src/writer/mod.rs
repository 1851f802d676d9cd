//! The single writer: every change to the database goes through here.
//!
//! Requests from all agent streams and API calls queue on one channel. The writer takes
//! everything queued (up to `batch_max_ops`), applies it in ONE transaction — events together
//! with their sources' cursors — commits, and only then answers each request. That is group
//! commit: one fsync for hundreds of events, and an ack always means "durable".

pub mod lifecycle;
pub mod ops;
pub mod unit;

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::ops::*;
use self::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::RuleSet;
use crate::store::Due;
use crate::watch::Hub;

/// One write request.
#[derive(Debug)]
pub enum Op {
    /// Events from one agent session, in sequence order. A session may have several of these
    /// queued; once one fails, its later ones are refused (see `Sink::failed_sessions`).
    AgentEvents {
        source_id: String,
        session_id: String,
        events: Vec<(u64, Result<AgentEvent>)>,
    },
    Hello(HelloInfo),
    /// A session ended. Only the source's current session marks the source disconnected.
    Disconnected {
        source_id: String,
        session_id: String,
        reason: String,
        superseded: bool,
    },
    /// Heartbeats gathered by the sessions registry: `(source_id, heard at)`.
    Touch(Vec<(String, Millis)>),
    Ingest {
        source_id: String,
        package: NewPackage,
    },
    Patch(PackagePatch),
    DeletePackage {
        package_id: String,
        reason: String,
    },
    RegisterSource {
        source_id: String,
        label: String,
    },
    SetRules {
        rule_sets: Vec<RuleSet>,
        reason: String,
        event_type: &'static str,
        details: serde_json::Value,
    },
    RestoreSnapshot {
        snapshot_id: u64,
        reason: String,
    },
    /// Start a scheduled restore drill (tier chosen in rotation).
    ScheduleDrill {
        sample: u32,
    },
    CreateSnapshot {
        reason: String,
    },
    CreateCommand(NewCommand),
    CommandsSent {
        ids: Vec<String>,
        lease_until: Millis,
    },
    Transitions(Vec<Due>),
    SyncStations(Vec<Station>),
    /// Start-up housekeeping: initial rules, stale connection flags.
    Bootstrap {
        preset: String,
    },
}

/// The answer to an op.
#[derive(Debug)]
pub enum Output {
    Events(EventsOutcome),
    Welcome(Source, u64),
    Package(Package, bool),
    Source(Source),
    Rules(RulesOutcome),
    Snapshot(ConfigSnapshot),
    Command(Command),
    Count(u64),
    Done,
}

struct Request {
    op: Op,
    reply: Option<oneshot::Sender<Result<Output>>>,
}

/// Handle for submitting writes. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    commits: Arc<AtomicU64>,
}

impl Op {
    /// How many rows-worth of work the op is, for sizing a group commit.
    fn weight(&self) -> usize {
        match self {
            Op::AgentEvents { events, .. } => events.len().max(1),
            Op::Transitions(due) => due.len().max(1),
            Op::Touch(seen) => seen.len() / 16 + 1,
            _ => 1,
        }
    }
}

impl Writer {
    /// Starts the writer task. It runs until `stop` is cancelled, then applies what is queued and ends.
    pub fn spawn(
        db: DatabaseConnection,
        hub: Hub,
        status_dirty: Arc<Notify>,
        max_batch: usize,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let commits = Arc::new(AtomicU64::new(0));
        let sink = Sink {
            in_flight: HashMap::new(),
            hub,
            status_dirty,
            commits: commits.clone(),
            failed_sessions: HashSet::new(),
        };
        // The writer gets a thread of its own: a commit is a dozen hops to the database's worker
        // thread and back, and on the shared runtime each wake-up queued behind the sessions'
        // and Watch streams' work (p99 latency with ten subscribers 52 -> 47 ms).
        let shared = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            let writer = run(db, rx, sink, max_batch.max(1), stop);
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(own) => own.block_on(writer),
                Err(e) => {
                    tracing::warn!(error = %e, "no runtime of its own for the writer; sharing the main one");
                    shared.block_on(writer)
                }
            }
        });
        (Self { tx, commits }, task)
    }

    /// How many batches have committed so far. It moves before any of a batch's requests is
    /// answered, so a reader that saw the old value before a write started sees a new one after.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Queues an op (waiting only while the queue is full). Ops are applied in the order they
    /// were queued; the returned future resolves once the op's batch has committed or failed.
    pub async fn enqueue(&self, op: Op) -> Result<Pending> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { op, reply: Some(reply) }).await.map_err(|_| shutting_down())?;
        Ok(Pending(rx))
    }

    /// Submits an op and waits until it is committed.
    pub async fn submit(&self, op: Op) -> Result<Output> {
        self.enqueue(op).await?.await
    }
}

/// The answer to a queued op, due when its batch commits.
pub struct Pending(oneshot::Receiver<Result<Output>>);

impl Future for Pending {
    type Output = Result<Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| answer.unwrap_or_else(|_| Err(shutting_down())))
    }
}

/// Where a committed batch's effects go besides the replies.
struct Sink {
    /// Unfinished packages per source, for the live view (see `Unit::flush`).
    in_flight: HashMap<String, u64>,
    hub: Hub,
    status_dirty: Arc<Notify>,
    commits: Arc<AtomicU64>,
    /// Sessions with an op in a failed batch. Their ops queued behind it are refused: applying
    /// them would move the source's cursor past the failed events, which the agent would then
    /// never resend. Forgotten when the session's `Disconnected` arrives (it is queued last).
    failed_sessions: HashSet<String>,
}

fn shutting_down() -> Error {
    Error::Unavailable("the catcher is shutting down; retry".into())
}

async fn run(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Request>,
    mut sink: Sink,
    max_batch: usize,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let first = tokio::select! {
            biased;
            req = rx.recv() => match req {
                Some(req) => req,
                None => break,
            },
            () = stop.cancelled() => {
                // Apply whatever was queued before stopping, so accepted requests get answers.
                rx.close();
                while let Some(req) = rx.recv().await {
                    batch.push(req);
                    if batch.len() == max_batch {
                        apply_batch(&db, &mut batch, &mut sink).await;
                    }
                }
                if !batch.is_empty() {
                    apply_batch(&db, &mut batch, &mut sink).await;
                }
                break;
            }
        };
        // The cap counts writes, not requests: one agent op may carry a thousand events, and a
        // transaction of a quarter million events would hold every ack back for seconds.
        let mut weight = first.op.weight();
        batch.push(first);
        while weight < max_batch {
            match rx.try_recv() {
                Ok(req) => {
                    weight += req.op.weight();
                    batch.push(req);
                }
                Err(_) => break,
            }
        }
        apply_batch(&db, &mut batch, &mut sink).await;
    }
    tracing::debug!("writer stopped");
}

async fn apply_batch(db: &DatabaseConnection, batch: &mut Vec<Request>, sink: &mut Sink) {
    let mut sessions = Vec::new();
    let mut ended = Vec::new();
    batch.retain_mut(|req| match &req.op {
        Op::AgentEvents { session_id, .. } if sink.failed_sessions.contains(session_id) => {
            if let Some(reply) = req.reply.take() {
                let _ = reply.send(Err(Error::Unavailable("an earlier write of this stream failed; reconnect".into())));
            }
            false
        }
        Op::AgentEvents { session_id, .. } => {
            sessions.push(session_id.clone());
            true
        }
        Op::Disconnected { session_id, .. } => {
            ended.push(session_id.clone());
            true
        }
        _ => true,
    });
    if !batch.is_empty() {
        commit_batch(db, batch, sink, sessions).await;
    }
    // After the outcome: a session's last ops and its end can share a (failed) batch.
    for id in ended {
        sink.failed_sessions.remove(&id);
    }
}

/// Applies and commits what `apply_batch` admitted, then answers every op.
async fn commit_batch(db: &DatabaseConnection, batch: &mut Vec<Request>, sink: &mut Sink, sessions: Vec<String>) {
    let size = batch.len();
    match apply_in_txn(db, batch, &mut sink.in_flight).await {
        Ok((results, changes)) => {
            let status = changes.status;
            sink.commits.fetch_add(1, Ordering::AcqRel);
            sink.hub.publish_changes(changes);
            if status {
                sink.status_dirty.notify_one();
            }
            for (req, result) in batch.drain(..).zip(results) {
                if let Some(reply) = req.reply {
                    let _ = reply.send(result);
                }
            }
        }
        Err(err) => {
            // Counts may hold this batch's uncommitted deltas; they are re-read as needed.
            sink.in_flight.clear();
            sink.failed_sessions.extend(sessions);
            tracing::error!(error = %err, ops = size, "group commit failed; every op in the batch is answered with the error");
            for req in batch.drain(..) {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Err(Error::Unavailable(format!("write failed, nothing was applied: {err}"))));
                }
            }
        }
    }
}

async fn apply_in_txn(
    db: &DatabaseConnection,
    batch: &mut [Request],
    in_flight: &mut HashMap<String, u64>,
) -> Result<(Vec<Result<Output>>, unit::Changes)> {
    let started = std::time::Instant::now();
    let txn = db.begin().await?;
    let begun = started.elapsed();
    let mut unit = Unit::new(&txn, now_ms());
    prefetch(&mut unit, batch).await?;
    let prefetched = started.elapsed();
    let mut results = Vec::with_capacity(batch.len());
    for req in batch.iter_mut() {
        // Ops are taken out of the requests; the requests keep their reply channels.
        let op = std::mem::replace(&mut req.op, Op::CreateSnapshot { reason: String::new() });
        let result = apply(&mut unit, op).await;
        if let Err(e) = &result
            && !e.is_client_error()
        {
            // The transaction may be unusable (PostgreSQL aborts it); give up on the batch.
            return Err(Error::Unavailable(e.to_string()));
        }
        results.push(result);
    }
    let applied = started.elapsed();
    let changes = unit.flush(in_flight).await?;
    let flushed = started.elapsed();
    txn.commit().await?;
    tracing::trace!(ops = batch.len(), ?begun, ?prefetched, ?applied, ?flushed, committed = ?started.elapsed(), "batch committed");
    Ok((results, changes))
}

/// Loads the rows the batch's agent events will touch, a few queries for the whole batch.
async fn prefetch(u: &mut Unit<'_>, batch: &[Request]) -> Result<()> {
    let mut sources = Vec::new();
    let mut packages = Vec::new();
    for req in batch {
        if let Op::AgentEvents { source_id, events, .. } = &req.op {
            sources.push(source_id.clone());
            packages.extend(
                events.iter().filter_map(|(_, e)| e.as_ref().ok()).filter_map(|e| e.package_id()).map(str::to_owned),
            );
        }
    }
    u.prefetch_sources(sources).await?;
    u.prefetch_packages(packages).await
}

async fn apply(u: &mut Unit<'_>, op: Op) -> Result<Output> {
    Ok(match op {
        Op::AgentEvents { source_id, events, .. } => Output::Events(agent_events(u, &source_id, events).await?),
        Op::Hello(h) => {
            let (s, cursor) = hello(u, h).await?;
            Output::Welcome(s, cursor)
        }
        Op::Disconnected { source_id, reason, superseded, .. } => {
            if !superseded {
                disconnected(u, &source_id, &reason).await?;
            }
            Output::Done
        }
        Op::Touch(seen) => {
            touch_sources(u, seen);
            Output::Done
        }
        Op::Ingest { source_id, package } => {
            let (p, created) = ingest(u, &source_id, package, "api").await?;
            Output::Package(p, created)
        }
        Op::Patch(m) => Output::Package(patch(u, m).await?, false),
        Op::DeletePackage { package_id, reason } => {
            delete_package(u, &package_id, &reason).await?;
            Output::Done
        }
        Op::RegisterSource { source_id, label } => Output::Source(register_source(u, &source_id, &label).await?),
        Op::SetRules { rule_sets, reason, event_type, details } => {
            Output::Rules(set_rules(u, rule_sets, &reason, event_type, details).await?)
        }
        Op::RestoreSnapshot { snapshot_id, reason } => Output::Rules(restore_snapshot(u, snapshot_id, &reason).await?),
        Op::CreateSnapshot { reason } => Output::Snapshot(snapshot(u, &reason, "api").await?),
        Op::CreateCommand(n) => Output::Command(create_command(u, n).await?),
        Op::CommandsSent { ids, lease_until } => {
            commands_sent(u, ids, lease_until).await?;
            Output::Done
        }
        Op::Transitions(due) => Output::Count(transitions(u, due).await?),
        Op::ScheduleDrill { sample } => Output::Count(lifecycle::schedule_drill(u, sample).await?),
        Op::SyncStations(stations) => {
            sync_stations(u, stations).await?;
            Output::Done
        }
        Op::Bootstrap { preset } => {
            bootstrap(u, &preset).await?;
            reset_connections(u).await?;
            Output::Done
        }
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::store::Store;

    /// Events that are sequenced and rejected: enough to move the cursor.
    fn events(source_id: &str, session_id: &str, seqs: std::ops::RangeInclusive<u64>) -> Op {
        let events = seqs.map(|seq| (seq, Err(Error::invalid("event.kind", "required")))).collect();
        Op::AgentEvents { source_id: source_id.into(), session_id: session_id.into(), events }
    }

    fn applied_seq(out: Result<Output>) -> u64 {
        match out {
            Ok(Output::Events(o)) => o.applied_seq,
            other => panic!("expected applied events, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn after_a_failed_write_a_session_gets_nothing_more_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/c.db?mode=rwc", dir.path().display()), 2).await.unwrap();
        store.migrate().await.unwrap();
        let stop = CancellationToken::new();
        let (writer, task) = Writer::spawn(store.db().clone(), Hub::new(16), Arc::new(Notify::new()), 64, stop.clone());
        let db = store.db();

        // The database fails the batch holding s1's seq 1 ...
        db.execute_unprepared("ALTER TABLE agent_cursors RENAME TO agent_cursors_away").await.unwrap();
        assert!(writer.submit(events("edge-1", "s1", 1..=1)).await.is_err());
        db.execute_unprepared("ALTER TABLE agent_cursors_away RENAME TO agent_cursors").await.unwrap();
        // ... so s1's seq 2, queued behind it, must not be applied: the cursor would pass seq 1.
        let refused = writer.submit(events("edge-1", "s1", 2..=2)).await;
        assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
        // The agent's next session resends from the cursor and is applied.
        assert_eq!(applied_seq(writer.submit(events("edge-1", "s2", 1..=2)).await), 2);
        // Once s1 has ended, the writer forgets it.
        let ended = Op::Disconnected {
            source_id: "edge-1".into(),
            session_id: "s1".into(),
            reason: "test".into(),
            superseded: true,
        };
        assert!(matches!(writer.submit(ended).await, Ok(Output::Done)));
        assert_eq!(applied_seq(writer.submit(events("edge-1", "s1", 3..=3)).await), 3);
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_session_that_ended_in_a_failed_batch_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/c.db?mode=rwc", dir.path().display()), 2).await.unwrap();
        store.migrate().await.unwrap();
        let db = store.db();
        let mut sink = Sink {
            in_flight: HashMap::new(),
            hub: Hub::new(16),
            status_dirty: Arc::new(Notify::new()),
            commits: Arc::new(AtomicU64::new(0)),
            failed_sessions: HashSet::new(),
        };
        let ended = Op::Disconnected {
            source_id: "edge-1".into(),
            session_id: "s1".into(),
            reason: "test".into(),
            superseded: true,
        };
        let (reply, answer) = oneshot::channel();
        let mut batch = vec![
            Request { op: events("edge-1", "s1", 1..=1), reply: Some(reply) },
            Request { op: events("edge-1", "s2", 1..=1), reply: None },
            Request { op: ended, reply: None },
        ];
        db.execute_unprepared("ALTER TABLE agent_cursors RENAME TO agent_cursors_away").await.unwrap();
        apply_batch(db, &mut batch, &mut sink).await;
        assert!(answer.await.unwrap().is_err(), "the batch failed");
        assert_eq!(sink.failed_sessions, HashSet::from(["s2".to_owned()]), "s1 ended; s2 goes on and is refused");
    }
}
