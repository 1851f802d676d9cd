//! `AgentService.Connect`: the agent's bidirectional stream (protocol in docs/ARCHITECTURE.md).
//!
//! Per stream: wait for Hello, register the session (superseding an older one), answer Welcome,
//! then loop: gather the frames that are ready, hand the events to the writer as one op, and
//! acknowledge cumulatively once they are committed. Heartbeats keep the stream alive; a stream
//! silent for `agent_timeout` is closed.

use std::pin::Pin;
use std::time::Duration;

use edgebackup_proto::v1::{
    self as pb, agent_event::Kind, agent_message::Body as In, agent_service_server::AgentService,
    catcher_message::Body as Out,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

mod progress;
mod snapshot;

use crate::domain::ManifestEntry;
use crate::error::{Error, Result};
use crate::service::sessions::{self, error_frame};
use crate::service::{Shared, commands_wire, convert, packages::new_package, validate as v};
use crate::writer::{
    AgentEvent, AgentEvents, CommandOutcome, Completion, Disconnected, EventsOutcome, Failure, Hello, HelloInfo,
    NewPackage, ProgressUpdate, Touch,
};

/// Most events handed to the writer in one op.
const MAX_EVENTS_PER_OP: usize = 1024;
/// Ops one session may have queued at the writer: enough that reading never waits for a commit.
const MAX_OPS_IN_FLIGHT: usize = 4;
/// Most files one Complete may list.
const MAX_MANIFEST_FILES: usize = 100_000;
/// How long a new stream may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Agents(pub Shared);

#[tonic::async_trait]
impl AgentService for Agents {
    type ConnectStream = Pin<Box<dyn Stream<Item = Result<pb::CatcherMessage, Status>> + Send>>;

    async fn connect(&self, r: Request<Streaming<pb::AgentMessage>>) -> Result<Response<Self::ConnectStream>, Status> {
        let who = crate::service::caller(&r);
        let mut inbound = r.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.next()).await {
            Ok(Some(Ok(pb::AgentMessage { body: Some(In::Hello(h)) }))) => h,
            Ok(Some(Ok(_))) => return Err(Error::invalid("hello", "the first message must be Hello").into()),
            Ok(Some(Err(status))) => return Err(status),
            Ok(None) => return Err(Error::invalid("hello", "stream closed before Hello").into()),
            Err(_) => return Err(Status::deadline_exceeded("no Hello within 10 s")),
        };
        let hello = hello_in(hello)?;
        speaks_for(&who, &hello)?;
        let source_id = hello.source_id.clone();
        let state = self.0.clone();
        if let Err(wait) = state.admission.hello() {
            let wait = crate::service::admission::retry_after(wait);
            tracing::debug!(source_id, ?wait, "Hello deferred: too many agents connecting at once");
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(Box::new(sessions::deferred_frame(wait)));
            return Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(|m| Ok(*m)))));
        }
        let (source, last_applied) = state.writer.submit(Hello(hello)).await?;
        let session_id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = mpsc::channel(512);
        let cancel = state.shutdown.child_token();
        state.sessions.register(&source_id, &session_id, tx.clone(), cancel.clone());
        let welcome = async {
            Ok::<_, Error>(pb::Welcome {
                session_id: session_id.clone(),
                heartbeat_interval: Some(convert::secs(state.config.heartbeat_interval_secs)),
                rule_sets: state.store.rule_sets().await?.into_iter().map(convert::rule_set).collect(),
                resume: state
                    .store
                    .resume_list(&source_id)
                    .await?
                    .into_iter()
                    .map(|p| convert::package(p, Vec::new()))
                    .collect(),
                last_applied_seq: last_applied,
                safety_state: convert::source(source, 0, 0).safety_state,
                stations: state.store.stations().await?.into_iter().map(convert::station).collect(),
            })
        }
        .await;
        let welcome = match welcome {
            Ok(w) => w,
            Err(e) => {
                end_session(&state, &source_id, &session_id, "welcome failed").await;
                return Err(e.into());
            }
        };
        let _ = tx.send(Box::new(pb::CatcherMessage { body: Some(Out::Welcome(welcome)) })).await;
        state.sessions.mark_fresh(&source_id);
        state.commands_due.notify_one();
        tracing::info!(source_id, session_id, last_applied, "agent connected");
        tokio::spawn(async move {
            let why = serve(&state, &source_id, &session_id, inbound, &tx, &cancel).await;
            if let Err(e) = &why {
                let _ = tx.try_send(Box::new(error_frame(status_code(e.code()), &e.to_string())));
            }
            let reason = why.err().map_or_else(|| "stream closed".to_owned(), |e| e.to_string());
            // Boxed: only the end of a session needs it, every idle session would carry its size.
            Box::pin(end_session(&state, &source_id, &session_id, &reason)).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(|m| Ok(*m)))))
    }
}

async fn end_session(state: &Shared, source_id: &str, session_id: &str, reason: &str) {
    let superseded = !state.sessions.unregister(source_id, session_id);
    if !superseded {
        tracing::info!(source_id, session_id, reason, "agent disconnected");
    }
    let op = Disconnected {
        source_id: source_id.to_owned(),
        session_id: session_id.to_owned(),
        reason: reason.to_owned(),
        superseded,
    };
    let _ = state.writer.submit(op).await;
}

/// Runs one session until the agent closes it, it goes silent, it is superseded, or the catcher stops.
///
/// Reading goes on while earlier events are being committed (up to `MAX_OPS_IN_FLIGHT` ops), so
/// events that arrive during a group commit join the next one instead of waiting for the ack.
/// Answers come back in the order the ops were queued; each becomes an ack.
async fn serve(
    state: &Shared,
    source_id: &str,
    session_id: &str,
    mut inbound: Streaming<pb::AgentMessage>,
    tx: &sessions::Outbound,
    cancel: &CancellationToken,
) -> Result<()> {
    let timeout = state.config.agent_timeout();
    let mut in_flight = FuturesOrdered::new();
    let mut progress = progress::Limiter::default();
    let mut reading = true;
    while reading || !in_flight.is_empty() {
        // The select's arms only decide; the awaits come after it, each boxed. An idle session's
        // task is then the size of what it waits on, not of the largest message or await it
        // might hold (10,000 idle agents hold 10,000 of these).
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => Next::Answer(answer),
            m = tokio::time::timeout(timeout, inbound.next()), if reading && in_flight.len() < MAX_OPS_IN_FLIGHT => match m {
                Err(_) => return Err(Error::Unavailable(format!("no message for {} s; closing the stream", timeout.as_secs()))),
                Ok(None) => Next::Closed,
                Ok(Some(Err(status))) => return Err(Error::Unavailable(format!("stream error: {}", status.message()))),
                Ok(Some(Ok(first))) => {
                    let (events, reports) = gather(state, source_id, first, &mut inbound)?;
                    Next::Read(events, reports)
                }
            },
        };
        match next {
            Next::Answer(answer) => Box::pin(acknowledge(tx, source_id, answer)).await?,
            Next::Closed => reading = false,
            Next::Read(events, reports) => {
                if !reports.is_empty() {
                    Box::pin(progress.submit(state, source_id, reports)).await?;
                }
                if events.is_empty() {
                    continue;
                }
                if !state.sessions.is_current(source_id, session_id) {
                    return Ok(()); // superseded while reading; the new stream carries on
                }
                use tracing::Instrument;
                let span = tracing::info_span!("agent_events", source_id, events = events.len());
                let op = AgentEvents { source_id: source_id.to_owned(), session_id: session_id.to_owned(), events };
                in_flight.push_back(Box::pin(state.writer.enqueue(op).instrument(span)).await?);
            }
        }
    }
    Ok(())
}

/// What a session does next.
enum Next {
    /// The writer answered the oldest op in flight.
    Answer(Result<EventsOutcome>),
    /// The agent closed its side.
    Closed,
    /// Frames were read: events and progress reports.
    Read(Gathered, Vec<pb::CommandProgress>),
}

/// Events as gathered: each with its sequence number, validated or refused.
type Gathered = Vec<(u64, Result<AgentEvent>)>;

/// Takes `first` and whatever else is already here (one op, and one commit, covers many frames):
/// the events, validated, and the progress reports; heartbeats are noted on the way.
fn gather(
    state: &Shared,
    source_id: &str,
    first: pb::AgentMessage,
    inbound: &mut Streaming<pb::AgentMessage>,
) -> Result<(Gathered, Vec<pb::CommandProgress>)> {
    let mut frames = vec![first];
    while frames.len() < MAX_EVENTS_PER_OP {
        match inbound.next().now_or_never() {
            Some(Some(Ok(m))) => frames.push(m),
            _ => break,
        }
    }
    let mut events = Vec::new();
    let mut reports = Vec::new();
    let mut last_seq = 0;
    for frame in frames {
        match frame.body {
            Some(In::Event(e)) => {
                last_seq = seq_in(e.seq, last_seq)?;
                events.push((e.seq, event_in(e)));
            }
            Some(In::Heartbeat(_)) => state.sessions.heard(source_id, crate::domain::now_ms()),
            Some(In::CommandProgress(p)) => reports.push(p),
            Some(In::Hello(_)) => return Err(Error::invalid("hello", "sent twice on one stream")),
            None => return Err(Error::invalid("body", "empty message")),
        }
    }
    Ok((events, reports))
}

/// Sends what the writer said about one op: its rejected events, then the cumulative ack.
async fn acknowledge(tx: &sessions::Outbound, source_id: &str, answer: Result<EventsOutcome>) -> Result<()> {
    let out = answer?;
    for (seq, err) in out.rejected {
        tracing::warn!(source_id, seq, error = %err, "agent event rejected");
        let frame = pb::EventRejected { seq, code: status_code(err.code()) as i32, message: err.to_string() };
        send(tx, Out::EventRejected(frame)).await?;
    }
    send(tx, Out::Ack(pb::Ack { applied_seq: out.applied_seq })).await
}

/// Writes the gathered heartbeats every `every` until `stop`, then once more.
pub async fn flush_heartbeats(
    sessions: std::sync::Arc<sessions::Sessions>,
    writer: crate::writer::Writer,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(every) => false,
            () = stop.cancelled() => true,
        };
        let seen = sessions.take_seen();
        if !seen.is_empty()
            && let Err(e) = writer.submit(Touch(seen)).await
        {
            tracing::warn!(error = %e, "writing heartbeats failed; the next ones will do");
        }
        if stopping {
            return;
        }
    }
}

async fn send(tx: &sessions::Outbound, body: Out) -> Result<()> {
    tx.send(Box::new(pb::CatcherMessage { body: Some(body) }))
        .await
        .map_err(|_| Error::Unavailable("agent went away".into()))
}

/// The credential decides who the agent is: its source, and whether it may move copies. A
/// Hello claiming more changes nothing (not even superseding the real agent's stream).
fn speaks_for(who: &crate::auth::Principal, hello: &HelloInfo) -> Result<()> {
    let crate::auth::Principal::Agent { source_id, mover, .. } = who else {
        return Err(Error::Unauthenticated("an agent credential is required".into()));
    };
    if *source_id != hello.source_id {
        return Err(Error::PermissionDenied(format!(
            "hello.source_id: this credential speaks for {source_id}, not {}",
            hello.source_id
        )));
    }
    if !mover && hello.capabilities.contains(&crate::domain::Capability::Mover) {
        return Err(Error::PermissionDenied(
            "hello.capabilities: this credential was not enrolled as a mover (catcher enroll --mover)".into(),
        ));
    }
    Ok(())
}

/// An event's sequence number, which must follow `last` (the cursor is stored as a signed
/// 64-bit integer).
fn seq_in(seq: u64, last: u64) -> Result<u64> {
    if seq > i64::MAX as u64 {
        return Err(Error::invalid("event.seq", format!("must be at most {}, got {seq}", i64::MAX)));
    }
    if seq == 0 || seq <= last {
        return Err(Error::invalid("event.seq", format!("must be >= 1 and increasing, got {seq} after {last}")));
    }
    Ok(seq)
}

fn hello_in(h: pb::Hello) -> Result<HelloInfo> {
    let text = |field: &str, value: String| -> Result<String> {
        if value.chars().count() > 256 {
            return Err(Error::invalid(field, "longer than 256 characters"));
        }
        Ok(value)
    };
    let mut capabilities = Vec::new();
    for c in &h.capabilities {
        if let Some(c) = v::capability("hello.capabilities", *c, true)?
            && !capabilities.contains(&c)
        {
            capabilities.push(c);
        }
    }
    Ok(HelloInfo {
        source_id: v::id("hello.source_id", &h.source_id)?,
        label: text("hello.label", h.label)?,
        hostname: text("hello.hostname", h.hostname)?,
        os: text("hello.os", h.os)?,
        agent_version: text("hello.agent_version", h.agent_version)?,
        capabilities,
    })
}

/// Validates one wire event; an invalid one is still sequenced (and rejected) by the writer.
fn event_in(e: pb::AgentEvent) -> Result<AgentEvent> {
    // When the agent recorded the event (its clock): packages keep the times they were made.
    let at = v::timestamp_ms("event.at", e.at.as_ref())?;
    Ok(match e.kind.ok_or_else(|| Error::invalid("event.kind", "required"))? {
        Kind::Ingest(i) => {
            let id = v::package_id("ingest.package_id", &i.package_id)?;
            AgentEvent::Ingest(NewPackage { made_at: at, ..new_package(id, &i, "ingest.", false)? })
        }
        Kind::Progress(p) => AgentEvent::Progress(ProgressUpdate {
            package_id: v::package_id("progress.package_id", &p.package_id)?,
            bytes_done: v::size("progress.bytes_done", p.bytes_done)?,
            progress_percent: v::percent("progress.progress_percent", p.progress_percent)?,
            attempt: p.attempt,
        }),
        Kind::Complete(c) => {
            let sha256 = v::sha256("complete.sha256", &c.sha256)?;
            let placements = v::placement_reports("complete.placements", c.placements)?;
            if c.manifest.len() > MAX_MANIFEST_FILES {
                return Err(Error::invalid("complete.manifest", format!("more than {MAX_MANIFEST_FILES} files")));
            }
            let mut manifest = Vec::with_capacity(c.manifest.len());
            for (i, m) in c.manifest.into_iter().enumerate() {
                let f = |n: &str| format!("complete.manifest[{i}].{n}");
                manifest.push(ManifestEntry {
                    path: v::path(&f("path"), &m.path)?,
                    size_bytes: v::size(&f("size_bytes"), m.size_bytes)?,
                    sha256: v::sha256(&f("sha256"), &m.sha256)?,
                    modified_at: v::timestamp_ms(&f("modified_at"), m.modified_at.as_ref())?,
                });
            }
            AgentEvent::Complete(Completion {
                manifest,
                package_id: v::package_id("complete.package_id", &c.package_id)?,
                sha256,
                size_bytes: v::size("complete.size_bytes", c.size_bytes)?,
                tool_ref: c.tool_ref.chars().take(1024).collect(),
                placements,
                done_at: at,
            })
        }
        Kind::Fail(f) => AgentEvent::Fail(Failure {
            package_id: v::package_id("fail.package_id", &f.package_id)?,
            error: if f.error.is_empty() {
                "failed (no reason given)".into()
            } else {
                f.error.chars().take(4096).collect()
            },
        }),
        Kind::CommandResult(r) => AgentEvent::CommandResult(CommandOutcome {
            command_id: v::id("command_result.command_id", &r.command_id)?,
            success: r.success,
            unsupported: r.unsupported,
            message: r.message.chars().take(4096).collect(),
            details: commands_wire::details_in("command_result.details", r.details)?,
        }),
        Kind::FolderSnapshot(s) => AgentEvent::Snapshot(snapshot::folder_snapshot_in(s)?),
        Kind::SafetyAlert(a) => AgentEvent::SafetyAlert {
            reason: if a.reason.is_empty() {
                "panic brake tripped".into()
            } else {
                a.reason.chars().take(1024).collect()
            },
            details_json: safety_details(a.trigger, a.measurements)?,
        },
    })
}

/// The panic brake's measurements as the journal records them.
fn safety_details(trigger: i32, m: Option<pb::SafetyMeasurements>) -> Result<String> {
    let trigger = match pb::SafetyTrigger::try_from(trigger) {
        Ok(pb::SafetyTrigger::Unspecified) => None,
        Ok(t) => Some(t.as_str_name().trim_start_matches("SAFETY_TRIGGER_").to_ascii_lowercase()),
        Err(_) => return Err(Error::invalid("safety_alert.trigger", format!("unknown value {trigger}"))),
    };
    let m = m.unwrap_or_default();
    if m.canary.chars().count() > 1024 {
        return Err(Error::invalid("safety_alert.measurements.canary", "longer than 1024 characters"));
    }
    let mut details = serde_json::json!({
        "window_secs": m.window_secs,
        "changed": m.changed,
        "removed": m.removed,
        "rewritten": m.rewritten,
        "turned_high_entropy": m.turned_high_entropy,
        "replaced_by_encrypted": m.replaced_by_encrypted,
        "renamed": m.renamed,
    });
    if let Some(t) = trigger {
        details["trigger"] = t.into();
    }
    if !m.canary.is_empty() {
        details["canary"] = m.canary.into();
    }
    Ok(details.to_string())
}

/// The stream's checks of one inbound message, without a session or a database (what the fuzz
/// target `stream_messages` drives): answers whether it would be accepted. Never panics.
#[doc(hidden)]
pub fn check_message(m: pb::AgentMessage) -> bool {
    match m.body {
        Some(In::Hello(h)) => hello_in(h).is_ok(),
        Some(In::Event(e)) => seq_in(e.seq, 0).is_ok() && event_in(e).is_ok(),
        Some(In::CommandProgress(p)) => progress::progress_in(p).is_ok(),
        Some(In::Heartbeat(_)) => true,
        None => false,
    }
}

/// A gRPC code as the stream's frames carry it (the numbers are google.rpc.Code's).
pub fn status_code(code: tonic::Code) -> pb::StatusCode {
    pb::StatusCode::try_from(code as i32).unwrap_or(pb::StatusCode::Unknown)
}
