//! Agent events: one session's sequenced events, applied each on its own (a refused event
//! changes nothing) and all together with the source's cursor.

use super::unit::Unit;
use super::{Op, catalog, commands, packages, sources};
use crate::domain::*;
use crate::error::{Error, Result};

/// Upload progress.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub package_id: String,
    pub bytes_done: u64,
    pub progress_percent: u32,
    pub attempt: u32,
}

/// A verified upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub package_id: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub tool_ref: String,
    pub placements: Vec<PlacementReport>,
    pub manifest: Vec<ManifestEntry>,
    /// When the agent finished it (its clock); `None`: when the catcher heard of it.
    pub done_at: Option<Millis>,
}

impl Completion {
    /// A package stored with one copy, verified, on `station_id` (no manifest): what tests and
    /// load generators report.
    pub fn verified_on(
        package_id: &str,
        sha256: &str,
        size_bytes: u64,
        station_id: &str,
        done_at: Option<Millis>,
    ) -> Self {
        Self {
            package_id: package_id.to_owned(),
            sha256: sha256.to_owned(),
            size_bytes,
            tool_ref: String::new(),
            placements: vec![PlacementReport {
                station_id: station_id.to_owned(),
                status: PlacementStatus::Verified,
                verified_sha256: sha256.to_owned(),
                error: String::new(),
            }],
            manifest: Vec::new(),
            done_at,
        }
    }
}

/// One copy an agent reports with a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementReport {
    pub station_id: String,
    pub status: PlacementStatus,
    pub verified_sha256: String,
    pub error: String,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub package_id: String,
    pub error: String,
}

/// An agent's answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    pub command_id: String,
    pub success: bool,
    pub unsupported: bool,
    pub message: String,
    pub details: Option<CommandDetails>,
}

/// A sequenced event from an agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Ingest(super::NewPackage),
    Progress(ProgressUpdate),
    Complete(Completion),
    Fail(Failure),
    CommandResult(CommandOutcome),
    SafetyAlert {
        reason: String,
        details_json: String,
    },
    /// One part of what a pass saw in a folder.
    Snapshot(FolderChanges),
}

impl AgentEvent {
    /// The package the event is about, if any.
    pub fn package_id(&self) -> Option<&str> {
        match self {
            AgentEvent::Ingest(n) => Some(&n.package_id),
            AgentEvent::Progress(g) => Some(&g.package_id),
            AgentEvent::Complete(c) => Some(&c.package_id),
            AgentEvent::Fail(f) => Some(&f.package_id),
            AgentEvent::CommandResult(_) | AgentEvent::SafetyAlert { .. } | AgentEvent::Snapshot(_) => None,
        }
    }
}

/// Events from one agent session, in sequence order. A session may have several of these
/// queued; once one fails, its later ones are refused (see `Sink::failed_sessions`).
#[derive(Debug)]
pub struct AgentEvents {
    pub source_id: String,
    pub session_id: String,
    /// `(seq, event)`; an event that failed validation is still sequenced, and rejected.
    pub events: Vec<(u64, Result<AgentEvent>)>,
}

/// Outcome of one source's events in a batch.
#[derive(Debug, Default)]
pub struct EventsOutcome {
    /// Cumulative ack: every event at or below is durable (applied, rejected or a replay).
    pub applied_seq: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: Vec<(u64, Error)>,
}

impl Op for AgentEvents {
    type Output = EventsOutcome;

    fn weight(&self) -> usize {
        self.events.len().max(1)
    }

    /// Replays at or below the cursor are skipped. An invalid event is rejected; it moves the
    /// cursor only when it is the next one (`cursor + 1`), so the agent can drop it from its
    /// outbox, while one numbered far ahead cannot make the events before it look applied. (A
    /// rejected event after a gap is dropped with the next applied one, or refused again.)
    async fn apply(self, u: &mut Unit<'_>) -> Result<EventsOutcome> {
        let source_id = self.source_id;
        let mut cursor = u.cursor(&source_id).await?;
        let mut out = EventsOutcome::default();
        let actor = sources::actor_of(&source_id);
        for (seq, event) in self.events {
            if seq <= cursor {
                out.duplicates += 1;
                continue;
            }
            let mark = u.mark();
            let result = apply_one(u, &source_id, &actor, event).await;
            u.settle(mark, result.is_ok());
            match result {
                Ok(()) => out.applied += 1,
                Err(e) if e.is_client_error() => {
                    // Kept in the journal: the agent drops a rejected event from its outbox.
                    let mut j = JournalEntry::new(EventType::AgentEventRejected, actor.clone());
                    j.source_id = source_id.clone();
                    j.error = e.to_string();
                    j.details_json = serde_json::json!({ "seq": seq }).to_string();
                    u.journal(j);
                    out.rejected.push((seq, e));
                    if seq != cursor + 1 {
                        continue;
                    }
                }
                // A database failure aborts the whole batch; nothing is acknowledged.
                Err(e) => return Err(e),
            }
            cursor = seq;
        }
        u.set_cursor(&source_id, cursor);
        if let Some(mut s) = u.source(&source_id).await? {
            s.last_seen_at = u.now;
            u.put_source(s);
        }
        out.applied_seq = cursor;
        Ok(out)
    }
}

async fn apply_one(u: &mut Unit<'_>, source_id: &str, actor: &str, event: Result<AgentEvent>) -> Result<()> {
    match event? {
        AgentEvent::Ingest(n) => packages::ingest(u, source_id, n, actor).await.map(|_| ()),
        AgentEvent::Progress(g) => packages::progress(u, Some(source_id), g, actor).await.map(|_| ()),
        AgentEvent::Complete(c) => packages::complete(u, Some(source_id), c, actor).await.map(|_| ()),
        AgentEvent::Fail(f) => packages::fail(u, Some(source_id), f, actor).await.map(|_| ()),
        AgentEvent::CommandResult(r) => commands::command_result(u, source_id, r).await,
        AgentEvent::SafetyAlert { reason, details_json } => {
            sources::safety_alert(u, source_id, reason, details_json).await
        }
        AgentEvent::Snapshot(changes) => catalog::apply_snapshot(u, source_id, changes, actor).await,
    }
}
