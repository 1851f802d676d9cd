//! The single writer: every change to the database goes through here.
//!
//! Requests from all agent streams and API calls queue on one channel. The writer takes
//! everything queued (up to `batch_max_ops` rows-worth), applies it in ONE transaction — events
//! together with their sources' cursors — commits, and only then answers each request. That is
//! group commit: one fsync for hundreds of events, and an answer always means "durable".
//!
//! Each op is its own type with its own answer type (`Op::Output`); `ops!` below lists them and
//! builds the queue's request enum, so an op can only ever be answered with its own output.
//! Ops stage their changes in the batch's unit of work (`unit.rs`) and never write: `flush.rs`
//! writes everything once all ops have run. An op that fails is rolled back inside the unit, so
//! it has written nothing — by construction, not by care.

mod alerts;
mod catalog;
mod cluster;
mod commands;
mod credentials;
mod damage;
mod deletion;
mod events;
mod lifecycle;
mod packages;
mod policy;
mod protection;
mod sources;
mod stations;
mod unit;

#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use sea_orm::{DatabaseConnection, SqliteTransactionMode, TransactionOptions, TransactionTrait};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use self::alerts::{AcknowledgeAlert, ChannelTested, EvaluateAlerts, Evaluated, NotificationsAttempted, Route};
pub use self::cluster::{Beat, BeatOutcome};
pub use self::commands::{CommandsProgressed, CommandsSent, CreateCommand, NewCommand};
pub use self::credentials::{CreateEnrollment, CreateToken, Enroll, Renew, RevokeAgent, RevokeToken};
pub use self::damage::{Damage, ReportChecks};
pub use self::events::{
    AgentEvent, AgentEvents, CommandOutcome, Completion, EventsOutcome, Failure, PlacementReport, ProgressUpdate,
};
pub use self::lifecycle::{ScheduleDrill, Transitions};
pub use self::packages::{DeletePackage, Ingest, NewPackage, PackagePatch, Patch, Recount};
pub use self::policy::{
    Bootstrap, CreateSnapshot, RestoreSnapshot, RuleChange, RulesOutcome, SetRules, canonical_config, parse_config,
};
pub use self::protection::{ApplyDue, CancelPending, DueOutcome};
pub use self::sources::{Disconnected, Hello, HelloInfo, RegisterSource, Touch};
pub use self::stations::SyncStations;
pub use self::unit::ClusterSettings;
use self::unit::Unit;
use crate::change::Changes;
use crate::domain::{Millis, now_ms};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::watch::{Committed, Hub};

/// One kind of write: applied inside the batch's unit of work, answered with `Output` once the
/// batch has committed.
pub trait Op: Send + Sized + 'static {
    /// What the op answers.
    type Output: Send + 'static;

    /// Jumps the queue: applied in the next batch, ahead of whatever waits (the replica
    /// heartbeat — a lease renewal must not wait behind seconds of queued events).
    const URGENT: bool = false;

    /// How many rows-worth of work the op is, for sizing a group commit.
    fn weight(&self) -> usize {
        1
    }

    /// Stages the op's changes in `u`. On error the unit rolls back what the op staged.
    fn apply(self, u: &mut Unit<'_>) -> impl Future<Output = Result<Self::Output>> + Send;
}

type Reply<T> = oneshot::Sender<Result<T>>;

/// Lists every op type; builds the queue's request enum and the answers it holds until commit.
macro_rules! ops {
    ($($name:ident),+ $(,)?) => {
        /// A queued op with the channel its typed answer goes to.
        enum Request {
            $($name($name, Reply<<$name as Op>::Output>),)+
        }

        /// An applied op with its answer, held until the batch commits.
        enum Applied {
            $($name(Reply<<$name as Op>::Output>, Result<<$name as Op>::Output>),)+
        }

        /// Turns an op into a queued request; implemented for exactly the listed op types.
        pub trait Queued: Op {
            #[doc(hidden)]
            fn request(self, reply: Reply<Self::Output>) -> RequestBox;
        }

        $(impl Queued for $name {
            fn request(self, reply: Reply<Self::Output>) -> RequestBox {
                RequestBox(Request::$name(self, reply))
            }
        })+

        impl Request {
            fn weight(&self) -> usize {
                match self { $(Self::$name(op, _) => op.weight(),)+ }
            }

            /// Applies the op atomically within the unit: all it staged, or nothing.
            async fn apply(self, u: &mut Unit<'_>) -> Applied {
                match self {
                    $(Self::$name(op, reply) => {
                        let mark = u.mark();
                        let result = op.apply(u).await;
                        u.settle(mark, result.is_ok());
                        Applied::$name(reply, result)
                    })+
                }
            }

            /// Answers with `e` without applying (after the batch commits, like the rest).
            fn refuse(self, e: Error) -> Applied {
                match self { $(Self::$name(_, reply) => Applied::$name(reply, Err(e)),)+ }
            }

            /// Answers without applying: `Unavailable` with `message`.
            fn fail(self, message: &str) {
                match self { $(Self::$name(_, reply) => { let _ = reply.send(Err(Error::Unavailable(message.to_owned()))); })+ }
            }
        }

        impl Applied {
            /// A failure that is not the caller's: the transaction may be unusable.
            fn storage_failure(&self) -> Option<&Error> {
                match self { $(Self::$name(_, Err(e)) if !e.is_client_error() => Some(e),)+ _ => None }
            }

            fn answer(self) {
                match self { $(Self::$name(reply, result) => { let _ = reply.send(result); })+ }
            }

            /// Replaces the answer: the batch did not commit.
            fn fail(self, message: &str) {
                match self { $(Self::$name(reply, _) => { let _ = reply.send(Err(Error::Unavailable(message.to_owned()))); })+ }
            }
        }
    };
}

ops!(
    AgentEvents,
    Hello,
    Disconnected,
    Touch,
    Ingest,
    Patch,
    DeletePackage,
    RegisterSource,
    SetRules,
    RestoreSnapshot,
    CreateSnapshot,
    CreateCommand,
    CommandsSent,
    CommandsProgressed,
    Transitions,
    ScheduleDrill,
    SyncStations,
    Bootstrap,
    Recount,
    CreateEnrollment,
    Enroll,
    RevokeAgent,
    Renew,
    CreateToken,
    RevokeToken,
    CancelPending,
    ApplyDue,
    ReportChecks,
    EvaluateAlerts,
    AcknowledgeAlert,
    NotificationsAttempted,
    ChannelTested,
    Beat,
);

/// How the writer works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most queued writes applied in one transaction (group commit).
    pub max_batch: usize,
    /// The protection delay: a change that would delete data sooner waits this long, and
    /// expiry keeps what any rule set in force this long ago would keep.
    pub protection_ms: Millis,
    /// Who this writer is among the replicas sharing the database.
    pub cluster: ClusterSettings,
}

impl Settings {
    /// Group commits of `max_batch`, no protection delay (tools and tests that change no rules).
    pub fn batch(max_batch: usize) -> Self {
        Self { max_batch, protection_ms: 0, cluster: ClusterSettings::single() }
    }
}

/// Where a committed batch's changes go.
#[derive(Clone)]
pub enum Publish {
    /// Straight to the live views (one catcher on its database: SQLite).
    Hub(Hub),
    /// Through the changes feed, which every replica reads in commit order (PostgreSQL): the
    /// batch appends its feed row and hands its changes to this replica's feed.
    Feed(Committed),
}

/// A queued request: the op, the span it was queued in (its group commit links to it), and
/// the lease term it was made under, if any (fencing).
struct Entry {
    request: Request,
    span: tracing::Span,
    fence: Option<u64>,
}

/// A queued request (opaque outside the writer).
pub struct RequestBox(Request);

/// Handle for submitting writes. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Entry>,
    /// The lane of urgent ops (`Op::URGENT`), taken first.
    urgent: mpsc::Sender<Entry>,
    generation: Arc<AtomicU64>,
    /// Rung when the status view changed: its publisher recomputes it for Watch streams.
    status_dirty: Arc<Notify>,
    metrics: Metrics,
    /// The lease term this handle's ops are made under (`fenced`).
    fence: Option<u64>,
}

impl Writer {
    /// Starts the writer task. It runs until `stop` is cancelled, then applies what is queued and ends.
    pub fn spawn(
        db: DatabaseConnection,
        publish: Publish,
        status_dirty: Arc<Notify>,
        settings: Settings,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let max_batch = settings.max_batch;
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let (urgent, urgent_rx) = mpsc::channel(16);
        let generation = Arc::new(AtomicU64::new(0));
        let metrics = Metrics::new();
        let sink = Sink::new(publish, status_dirty.clone(), generation.clone(), settings, metrics.clone());
        // The writer gets a thread of its own: a commit is a dozen hops to the database's worker
        // thread and back, and on the shared runtime each wake-up queued behind the sessions'
        // and Watch streams' work (p99 latency with ten subscribers 52 -> 47 ms).
        let shared = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            let writer = run(db, Queues { urgent: urgent_rx, normal: rx }, sink, max_batch.max(1), stop);
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(own) => own.block_on(writer),
                Err(e) => {
                    tracing::warn!(error = %e, "no runtime of its own for the writer; sharing the main one");
                    shared.block_on(writer)
                }
            }
        });
        (Self { tx, urgent, generation, status_dirty, metrics, fence: None }, task)
    }

    /// A handle whose ops are made under lease term `term`: each is refused, writing nothing,
    /// unless this replica still holds the singleton lease with that term when it applies.
    pub fn fenced(&self, term: u64) -> Self {
        Self { fence: Some(term), ..self.clone() }
    }

    /// Something a cached view shows changed other than through this writer (another
    /// replica's commit, the evaluator's RPO tally): readers that cache by generation look again.
    pub fn views_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The status view changed other than through a batch (the evaluator's RPO tally): cached
    /// statuses look again, and Watch streams get the new one, as after a batch that set
    /// `Changes::status`.
    pub fn status_changed(&self) {
        self.views_changed();
        self.status_dirty.notify_one();
    }

    /// The catcher's metrics; the writer counts commits and events into them.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The generation of what readers see: it moves with every committed batch that changed
    /// something (`Changes` not empty), before any of its requests is answered, so a reader
    /// that saw the old value before such a write started sees a new one after.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Queues an op (waiting only while the queue is full). Ops are applied in the order they
    /// were queued; the returned future resolves once the op's batch has committed or failed.
    pub async fn enqueue<O: Queued>(&self, op: O) -> Result<Pending<O::Output>> {
        let (reply, rx) = oneshot::channel();
        let queued = Entry { request: op.request(reply).0, span: tracing::Span::current(), fence: self.fence };
        let lane = if O::URGENT { &self.urgent } else { &self.tx };
        lane.send(queued).await.map_err(|_| shutting_down())?;
        Ok(Pending(rx))
    }

    /// Submits an op and waits until it is committed.
    pub async fn submit<O: Queued>(&self, op: O) -> Result<O::Output> {
        self.enqueue(op).await?.await
    }
}

/// The answer to a queued op, due when its batch commits.
pub struct Pending<T>(oneshot::Receiver<Result<T>>);

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| answer.unwrap_or_else(|_| Err(shutting_down())))
    }
}

/// Where a committed batch's effects go besides the replies.
struct Sink {
    /// Unfinished packages per source, for the live view (see `flush`).
    in_flight: HashMap<String, u64>,
    publish: Publish,
    status_dirty: Arc<Notify>,
    generation: Arc<AtomicU64>,
    /// Sessions with an op in a failed batch. Their ops queued behind it are refused: applying
    /// them would move the source's cursor past the failed events, which the agent would then
    /// never resend. Forgotten when the session's `Disconnected` arrives (it is queued last).
    failed_sessions: HashSet<String>,
    protection_ms: Millis,
    cluster: ClusterSettings,
    /// The changes feed's newest row after this writer's last commit (feed mode): when a batch
    /// finds another, another replica committed meanwhile and the in-memory counts are stale.
    feed_head: Option<i64>,
    metrics: Metrics,
}

impl Sink {
    fn new(
        publish: Publish,
        status_dirty: Arc<Notify>,
        generation: Arc<AtomicU64>,
        settings: Settings,
        metrics: Metrics,
    ) -> Self {
        Self {
            in_flight: HashMap::new(),
            publish,
            status_dirty,
            generation,
            failed_sessions: HashSet::new(),
            protection_ms: settings.protection_ms,
            cluster: settings.cluster,
            feed_head: None,
            metrics,
        }
    }
}

/// What every op of a batch that did not commit is answered.
const NOT_APPLIED: &str = "the write failed and nothing was applied; retry (the catcher's log has the details)";

fn shutting_down() -> Error {
    Error::Unavailable("the catcher is shutting down; retry".into())
}

/// The writer's two lanes.
struct Queues {
    urgent: mpsc::Receiver<Entry>,
    normal: mpsc::Receiver<Entry>,
}

impl Queues {
    /// The next queued request without waiting, urgent ones first.
    fn try_next(&mut self) -> Option<Entry> {
        self.urgent.try_recv().or_else(|_| self.normal.try_recv()).ok()
    }
}

async fn run(db: DatabaseConnection, mut q: Queues, mut sink: Sink, max_batch: usize, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let first = tokio::select! {
            biased;
            Some(req) = q.urgent.recv() => req,
            req = q.normal.recv() => match req {
                Some(req) => req,
                None => break,
            },
            () = stop.cancelled() => {
                // Apply whatever was queued before stopping, so accepted requests get answers.
                q.urgent.close();
                q.normal.close();
                loop {
                    // Both lanes are closed: each yields what it holds, then nothing.
                    let next = match q.try_next() {
                        Some(req) => Some(req),
                        None => q.normal.recv().await,
                    };
                    let Some(req) = next else { break };
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
        let mut weight = first.request.weight();
        batch.push(first);
        while weight < max_batch {
            match q.try_next() {
                Some(req) => {
                    weight += req.request.weight();
                    batch.push(req);
                }
                None => break,
            }
        }
        apply_batch(&db, &mut batch, &mut sink).await;
    }
    tracing::debug!("writer stopped");
}

async fn apply_batch(db: &DatabaseConnection, batch: &mut Vec<Entry>, sink: &mut Sink) {
    let mut sessions = Vec::new();
    let mut ended = Vec::new();
    let mut admitted = Vec::with_capacity(batch.len());
    // The group commit follows from the spans its ops were queued in (a trace per agent stream
    // read, linked to the commit that made it durable).
    let commit = tracing::info_span!("group_commit", ops = batch.len(), events = tracing::field::Empty);
    for q in batch.drain(..) {
        if q.span.id().is_some() {
            commit.follows_from(&q.span);
        }
        match &q.request {
            Request::AgentEvents(op, _) if sink.failed_sessions.contains(&op.session_id) => {
                q.request.fail("an earlier write of this stream failed; reconnect");
                continue;
            }
            Request::AgentEvents(op, _) => sessions.push(op.session_id.clone()),
            Request::Disconnected(op, _) => ended.push(op.session_id.clone()),
            _ => {}
        }
        admitted.push((q.request, q.fence));
    }
    if !admitted.is_empty() {
        use tracing::Instrument;
        commit_batch(db, admitted, sink, sessions).instrument(commit).await;
    }
    // After the outcome: a session's last ops and its end can share a (failed) batch.
    for id in ended {
        sink.failed_sessions.remove(&id);
    }
}

/// Applies and commits what `apply_batch` admitted, then answers every op.
async fn commit_batch(
    db: &DatabaseConnection,
    batch: Vec<(Request, Option<u64>)>,
    sink: &mut Sink,
    sessions: Vec<String>,
) {
    let size = batch.len();
    let started = std::time::Instant::now();
    let feed = matches!(sink.publish, Publish::Feed(_));
    match apply_in_txn(db, batch, sink, feed).await {
        Ok((applied, changes, head)) => {
            let status = changes.status;
            // Readers that cache by generation (the status view) look again only when a batch
            // changed something they show: heartbeats and lease renewals, every few seconds,
            // would otherwise make every cached status over a million packages be recomputed.
            if !changes.is_empty() {
                sink.generation.fetch_add(1, Ordering::AcqRel);
            }
            sink.metrics.committed(size, started.elapsed(), &changes.journal);
            let events: u64 =
                applied.iter().map(|a| if let Applied::AgentEvents(_, Ok(o)) = a { o.applied } else { 0 }).sum();
            sink.metrics.events_applied.inc_by(events);
            tracing::Span::current().record("events", events);
            tracing::info_span!("publish_changes").in_scope(|| match &sink.publish {
                Publish::Hub(hub) => hub.publish_changes(changes),
                Publish::Feed(committed) => {
                    // The batch appended feed row head + 1 when it changed anything; a batch
                    // that did not (heartbeats) wakes no feed.
                    let row = head.filter(|_| !changes.is_empty()).map(|h| h + 1);
                    sink.feed_head = row.or(head);
                    if let Some(row) = row {
                        committed.push(row, changes);
                    }
                }
            });
            if status {
                sink.status_dirty.notify_one();
            }
            applied.into_iter().for_each(Applied::answer);
        }
        Err(Failed { err, applied, unapplied }) => {
            // Counts may hold this batch's uncommitted deltas; they are re-read as needed.
            sink.in_flight.clear();
            sink.feed_head = None;
            sink.failed_sessions.extend(sessions);
            tracing::error!(error = %err, ops = size, "group commit failed; every op in the batch is answered with the error");
            // The database's text stays in the log; callers learn only that nothing was applied.
            applied.into_iter().for_each(|a| a.fail(NOT_APPLIED));
            unapplied.into_iter().for_each(|r| r.fail(NOT_APPLIED));
        }
    }
}

/// A batch that did not commit, with every op still to be answered.
struct Failed {
    err: Error,
    applied: Vec<Applied>,
    unapplied: Vec<Request>,
}

/// A batch's requests with their fences.
type Batch = Vec<(Request, Option<u64>)>;

fn requests(batch: Batch) -> Vec<Request> {
    batch.into_iter().map(|(r, _)| r).collect()
}

async fn apply_in_txn(
    db: &DatabaseConnection,
    batch: Batch,
    sink: &mut Sink,
    feed: bool,
) -> std::result::Result<(Vec<Applied>, Changes, Option<i64>), Failed> {
    let started = std::time::Instant::now();
    let mut applied = Vec::with_capacity(batch.len());
    // SQLite: take the write lock at BEGIN, where the busy timeout waits for another process
    // (`catcher enroll`, `catcher token …`) to finish; a deferred transaction that read first
    // would fail at once with "database is locked" when that process committed meanwhile.
    let immediate = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = match db.begin_with_options(immediate).await {
        Ok(txn) => txn,
        Err(e) => return Err(Failed { err: e.into(), applied, unapplied: requests(batch) }),
    };
    let begun = started.elapsed();
    let mut unit = Unit::new(&txn, now_ms(), sink.protection_ms, sink.cluster.clone());
    // Replicas take turns (PostgreSQL); one that finds the feed moved by another since its own
    // last commit drops its counts, which that commit may have changed.
    let head = match unit.begin_cluster_batch(feed).await {
        Ok(head) => head,
        Err(err) => return Err(Failed { err, applied, unapplied: requests(batch) }),
    };
    if head.is_some() && head != sink.feed_head {
        sink.in_flight.clear();
    }
    let in_flight = &mut sink.in_flight;
    if let Err(err) = prefetch(&mut unit, &batch).await {
        return Err(Failed { err, applied, unapplied: requests(batch) });
    }
    let prefetched = started.elapsed();
    let mut queue = batch.into_iter();
    while let Some((req, fence)) = queue.next() {
        let done = match fence {
            Some(term) => match unit.check_fence(term).await {
                Ok(()) => req.apply(&mut unit).await,
                Err(e) if e.is_client_error() => req.refuse(e),
                Err(e) => {
                    let err = Error::Unavailable(format!("a fence check failed: {e}"));
                    let mut unapplied = vec![req];
                    unapplied.extend(queue.map(|(r, _)| r));
                    return Err(Failed { err, applied, unapplied });
                }
            },
            None => req.apply(&mut unit).await,
        };
        if let Some(e) = done.storage_failure() {
            // The transaction may be unusable (PostgreSQL aborts it); give up on the batch.
            let err = Error::Unavailable(format!("an op failed: {e}"));
            applied.push(done);
            return Err(Failed { err, applied, unapplied: queue.map(|(r, _)| r).collect() });
        }
        applied.push(done);
    }
    let applied_at = started.elapsed();
    let ops = applied.len();
    let changes = match unit.flush(in_flight).await {
        Ok(c) => c,
        Err(err) => return Err(Failed { err, applied, unapplied: Vec::new() }),
    };
    let flushed = started.elapsed();
    if let Err(e) = txn.commit().await {
        return Err(Failed { err: e.into(), applied, unapplied: Vec::new() });
    }
    tracing::trace!(ops, ?begun, ?prefetched, applied = ?applied_at, ?flushed, committed = ?started.elapsed(), "batch committed");
    Ok((applied, changes, head))
}

/// Loads the rows the batch's agent events will touch, a few queries for the whole batch.
async fn prefetch(u: &mut Unit<'_>, batch: &Batch) -> Result<()> {
    let mut sources = Vec::new();
    let mut packages = Vec::new();
    let mut commands = Vec::new();
    for (req, _) in batch {
        match req {
            Request::AgentEvents(op, _) => {
                sources.push(op.source_id.clone());
                for (_, e) in &op.events {
                    match e {
                        Ok(AgentEvent::CommandResult(r)) => commands.push(r.command_id.clone()),
                        Ok(e) => packages.extend(e.package_id().map(str::to_owned)),
                        Err(_) => {}
                    }
                }
            }
            Request::Transitions(op, _) => packages.extend(op.0.iter().map(|d| d.package_id.clone())),
            Request::CommandsSent(op, _) => commands.extend(op.ids.iter().cloned()),
            _ => {}
        }
    }
    u.prefetch_sources(sources).await?;
    u.prefetch_packages(packages).await?;
    u.prefetch_commands(commands).await
}
