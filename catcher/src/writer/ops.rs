//! What each write does to the state. Every op checks everything before it changes anything,
//! so an op that fails leaves the batch's unit of work as it found it.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use super::unit::{Unit, replan_stored};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::{Next, RuleSet};
use crate::store::convert::{command_active, command_from};
use crate::store::entity::{command, config_snapshot, placement, station};
use crate::store::{Due, convert::tier_str};

/// A package announced by an agent or a script.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPackage {
    pub package_id: String,
    pub path: String,
    pub package_type: PackageType,
    pub size_bytes: u64,
    pub sha256: String,
    pub tool: Tool,
}

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
    pub placements: Vec<(String, PlacementStatus, String, String)>,
    pub manifest: Vec<ManifestEntry>,
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
    pub details_json: String,
}

/// A sequenced event from an agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Ingest(NewPackage),
    Progress(ProgressUpdate),
    Complete(Completion),
    Fail(Failure),
    CommandResult(CommandOutcome),
    SafetyAlert { reason: String, details_json: String },
}

impl AgentEvent {
    /// The package the event is about, if any.
    pub fn package_id(&self) -> Option<&str> {
        match self {
            AgentEvent::Ingest(n) => Some(&n.package_id),
            AgentEvent::Progress(g) => Some(&g.package_id),
            AgentEvent::Complete(c) => Some(&c.package_id),
            AgentEvent::Fail(f) => Some(&f.package_id),
            AgentEvent::CommandResult(_) | AgentEvent::SafetyAlert { .. } => None,
        }
    }
}

/// What an agent says about itself in Hello.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloInfo {
    pub source_id: String,
    pub label: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub capabilities: Vec<Capability>,
}

/// A script's PATCH of a package.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackagePatch {
    pub package_id: String,
    pub progress_percent: Option<u32>,
    pub bytes_done: Option<u64>,
    pub sha256: Option<String>,
    pub status: Option<PackageStatus>,
    pub error: Option<String>,
    pub attempt: Option<u32>,
}

/// A command to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommand {
    pub source_id: String,
    pub kind: CommandKind,
    pub package_id: String,
    pub from_station_id: String,
    pub to_station_id: String,
    pub args_json: String,
    pub actor: String,
}

fn actor_of(source_id: &str) -> String {
    format!("agent:{source_id}")
}

/// Loads a package that `source_id` may speak for.
async fn owned_package(u: &mut Unit<'_>, source_id: Option<&str>, id: &str) -> Result<Package> {
    let p = u.package(id).await?.ok_or_else(|| Error::not_found("package", id))?;
    if let Some(s) = source_id
        && p.source_id != s
    {
        return Err(Error::PermissionDenied(format!("package {id} belongs to another source")));
    }
    Ok(p)
}

pub async fn ingest(u: &mut Unit<'_>, source_id: &str, n: NewPackage, actor: &str) -> Result<(Package, bool)> {
    if let Some(existing) = u.package(&n.package_id).await? {
        if existing.source_id != source_id {
            return Err(Error::PermissionDenied(format!("package {} belongs to another source", n.package_id)));
        }
        let same = existing.path == n.path
            && existing.package_type == n.package_type
            && (n.sha256.is_empty() || existing.sha256.is_empty() || existing.sha256 == n.sha256)
            && (n.size_bytes == 0 || existing.size_bytes == n.size_bytes);
        if !same {
            return Err(Error::FailedPrecondition(format!(
                "package_id: {} was already ingested with a different path, type, size or sha256",
                n.package_id
            )));
        }
        return Ok((existing, false));
    }
    let mut source = u.source_or_new(source_id, actor).await?;
    source.last_seen_at = u.now;
    u.put_source(source);
    let p = Package {
        package_id: n.package_id,
        source_id: source_id.to_owned(),
        path: n.path,
        package_type: n.package_type,
        size_bytes: n.size_bytes,
        sha256: n.sha256,
        status: PackageStatus::Pending,
        bytes_done: 0,
        progress_percent: 0,
        tool: n.tool,
        tool_ref: String::new(),
        tier: None,
        tier_entered_at: None,
        next_transition_at: None,
        retry_count: 0,
        last_error: String::new(),
        created_at: u.now,
        updated_at: u.now,
        completed_at: None,
        expired_at: None,
    };
    u.journal(JournalEntry {
        actor: actor.to_owned(),
        event_type: "package.ingested".into(),
        source_id: source_id.to_owned(),
        package_id: p.package_id.clone(),
        status_after: p.status.as_str().into(),
        checksum: p.sha256.clone(),
        details_json: serde_json::json!({"path": p.path, "package_type": p.package_type, "size_bytes": p.size_bytes, "tool": p.tool}).to_string(),
        ..Default::default()
    });
    u.put_package(p.clone());
    Ok((p, true))
}

pub async fn progress(u: &mut Unit<'_>, source_id: Option<&str>, g: ProgressUpdate, actor: &str) -> Result<Package> {
    let mut p = owned_package(u, source_id, &g.package_id).await?;
    if matches!(p.status, PackageStatus::Completed | PackageStatus::Expired) {
        return Err(Error::FailedPrecondition(format!("package {} is already {}", p.package_id, p.status)));
    }
    let before = p.status;
    if g.attempt > p.retry_count {
        // A new attempt may start over.
        p.retry_count = g.attempt;
        p.last_error.clear();
    } else if g.attempt < p.retry_count {
        return Err(Error::FailedPrecondition(format!(
            "attempt: {} is older than the current attempt {}",
            g.attempt, p.retry_count
        )));
    } else if g.progress_percent < p.progress_percent && before != PackageStatus::Failed {
        return Err(Error::invalid(
            "progress_percent",
            format!("must not decrease within an attempt (is {}, got {})", p.progress_percent, g.progress_percent),
        ));
    }
    p.progress_percent = g.progress_percent;
    p.bytes_done = g.bytes_done;
    p.status = PackageStatus::InProgress;
    if before != PackageStatus::InProgress {
        u.journal(JournalEntry {
            actor: actor.to_owned(),
            event_type: if before == PackageStatus::Failed { "package.retried" } else { "package.started" }.into(),
            source_id: p.source_id.clone(),
            package_id: p.package_id.clone(),
            status_before: before.as_str().into(),
            status_after: p.status.as_str().into(),
            details_json: serde_json::json!({"attempt": p.retry_count}).to_string(),
            ..Default::default()
        });
    }
    u.put_package(p.clone());
    Ok(p)
}

pub async fn complete(u: &mut Unit<'_>, source_id: Option<&str>, c: Completion, actor: &str) -> Result<Package> {
    let mut p = owned_package(u, source_id, &c.package_id).await?;
    if p.status == PackageStatus::Completed && (p.sha256 == c.sha256 || c.sha256.is_empty()) {
        return Ok(p); // a replayed completion
    }
    if p.status == PackageStatus::Expired {
        return Err(Error::FailedPrecondition(format!("package {} has expired", p.package_id)));
    }
    if !p.sha256.is_empty() && !c.sha256.is_empty() && p.sha256 != c.sha256 {
        return Err(Error::FailedPrecondition(format!(
            "sha256: {} does not match the checksum {} the package was ingested with",
            c.sha256, p.sha256
        )));
    }
    let size = if c.size_bytes > 0 { c.size_bytes } else { p.size_bytes };
    let sha = if c.sha256.is_empty() { p.sha256.clone() } else { c.sha256.clone() };
    if size > 0 && sha.is_empty() {
        return Err(Error::invalid("sha256", "required to complete a package with size_bytes > 0"));
    }
    if !c.placements.is_empty() && !c.placements.iter().any(|pl| pl.1 == PlacementStatus::Verified) {
        return Err(Error::FailedPrecondition("placements: no verified copy; report Fail instead".into()));
    }
    for (station_id, status, verified, error) in &c.placements {
        if *status == PlacementStatus::Verified && verified != &sha {
            return Err(Error::FailedPrecondition(format!(
                "placements: station {station_id} verified sha256 {verified}, expected {sha}"
            )));
        }
        u.put_placement(Placement {
            package_id: p.package_id.clone(),
            station_id: station_id.clone(),
            status: *status,
            verified_sha256: verified.clone(),
            verified_at: (*status == PlacementStatus::Verified).then_some(u.now),
            error: error.clone(),
            updated_at: u.now,
        });
    }
    if !c.manifest.is_empty() {
        u.put_manifest(&p.package_id, c.manifest);
    }
    let before = p.status;
    let rules = u.rule(p.package_type).await?;
    let tier = rules.first_tier();
    p.status = PackageStatus::Completed;
    p.size_bytes = size;
    p.sha256 = sha;
    p.bytes_done = size;
    p.progress_percent = 100;
    p.tool_ref = c.tool_ref;
    p.last_error.clear();
    p.completed_at = Some(u.now);
    p.tier = Some(tier);
    p.tier_entered_at = Some(u.now);
    p.next_transition_at = rules.due_at(tier, u.now);
    if let Some(mut s) = u.source(&p.source_id).await? {
        s.last_completed_at = Some(u.now);
        u.put_source(s);
    }
    u.journal(JournalEntry {
        actor: actor.to_owned(),
        event_type: "package.completed".into(),
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.as_str().into(),
        status_after: p.status.as_str().into(),
        checksum: p.sha256.clone(),
        details_json: serde_json::json!({
            "tier": tier,
            "size_bytes": p.size_bytes,
            "stations": c.placements.iter().map(|pl| &pl.0).collect::<Vec<_>>(),
        })
        .to_string(),
        ..Default::default()
    });
    u.put_package(p.clone());
    Ok(p)
}

pub async fn fail(u: &mut Unit<'_>, source_id: Option<&str>, f: Failure, actor: &str) -> Result<Package> {
    let mut p = owned_package(u, source_id, &f.package_id).await?;
    if matches!(p.status, PackageStatus::Completed | PackageStatus::Expired) {
        return Err(Error::FailedPrecondition(format!("package {} is already {}", p.package_id, p.status)));
    }
    let before = p.status;
    p.status = PackageStatus::Failed;
    p.last_error = f.error;
    u.journal(JournalEntry {
        actor: actor.to_owned(),
        event_type: "package.failed".into(),
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.as_str().into(),
        status_after: p.status.as_str().into(),
        error: p.last_error.clone(),
        ..Default::default()
    });
    u.put_package(p.clone());
    Ok(p)
}

/// A script's PATCH: checksum, then progress, then the status change it asks for.
pub async fn patch(u: &mut Unit<'_>, m: PackagePatch) -> Result<Package> {
    let actor = "api";
    let p = owned_package(u, None, &m.package_id).await?;
    if let Some(sha) = &m.sha256
        && !p.sha256.is_empty()
        && &p.sha256 != sha
    {
        return Err(Error::FailedPrecondition(format!(
            "sha256: {sha} does not match the checksum {} the package was ingested with",
            p.sha256
        )));
    }
    match m.status {
        Some(PackageStatus::Completed) => {
            let c = Completion {
                package_id: m.package_id,
                sha256: m.sha256.unwrap_or_default(),
                size_bytes: 0,
                tool_ref: p.tool_ref.clone(),
                placements: Vec::new(),
                manifest: Vec::new(),
            };
            complete(u, None, c, actor).await
        }
        Some(PackageStatus::Failed) => {
            fail(
                u,
                None,
                Failure { package_id: m.package_id, error: m.error.unwrap_or_else(|| "failed".into()) },
                actor,
            )
            .await
        }
        Some(PackageStatus::InProgress) | None => {
            let mut p = if m.progress_percent.is_some()
                || m.bytes_done.is_some()
                || m.attempt.is_some()
                || m.status.is_some()
            {
                let g = ProgressUpdate {
                    package_id: m.package_id.clone(),
                    bytes_done: m.bytes_done.unwrap_or(p.bytes_done),
                    progress_percent: m.progress_percent.unwrap_or(p.progress_percent),
                    attempt: m.attempt.unwrap_or(p.retry_count),
                };
                progress(u, None, g, actor).await?
            } else {
                p
            };
            if let Some(sha) = m.sha256
                && p.sha256.is_empty()
            {
                p.sha256 = sha;
                u.put_package(p.clone());
            }
            Ok(p)
        }
        Some(other) => {
            Err(Error::invalid("status", format!("cannot be set to {other}; use in_progress, completed or failed")))
        }
    }
}

pub async fn delete_package(u: &mut Unit<'_>, id: &str, reason: &str) -> Result<()> {
    let p = owned_package(u, None, id).await?;
    u.delete_package(id);
    u.journal(JournalEntry {
        actor: "api".into(),
        event_type: "package.deleted".into(),
        source_id: p.source_id,
        package_id: p.package_id,
        status_before: p.status.as_str().into(),
        checksum: p.sha256,
        details_json: serde_json::json!({"reason": reason, "path": p.path}).to_string(),
        ..Default::default()
    });
    Ok(())
}

pub async fn register_source(u: &mut Unit<'_>, id: &str, label: &str) -> Result<Source> {
    let mut s = u.source_or_new(id, "api").await?;
    if !label.is_empty() {
        s.label = label.to_owned();
    }
    u.put_source(s.clone());
    Ok(s)
}

pub async fn hello(u: &mut Unit<'_>, h: HelloInfo) -> Result<(Source, u64)> {
    let actor = actor_of(&h.source_id);
    let mut s = u.source_or_new(&h.source_id, &actor).await?;
    if !h.label.is_empty() {
        s.label = h.label;
    }
    s.hostname = h.hostname;
    s.os = h.os;
    s.agent_version = h.agent_version;
    s.capabilities = h.capabilities;
    s.connected = true;
    s.last_seen_at = u.now;
    u.journal(JournalEntry {
        actor,
        event_type: "source.connected".into(),
        source_id: s.source_id.clone(),
        details_json: serde_json::json!({"agent_version": s.agent_version, "hostname": s.hostname}).to_string(),
        ..Default::default()
    });
    u.put_source(s.clone());
    let cursor = u.cursor(&s.source_id).await?;
    Ok((s, cursor))
}

pub async fn disconnected(u: &mut Unit<'_>, id: &str, why: &str) -> Result<()> {
    if let Some(mut s) = u.source(id).await? {
        s.connected = false;
        s.last_seen_at = u.now;
        u.put_source(s);
        u.journal(JournalEntry {
            actor: actor_of(id),
            event_type: "source.disconnected".into(),
            source_id: id.to_owned(),
            details_json: serde_json::json!({"reason": why}).to_string(),
            ..Default::default()
        });
    }
    Ok(())
}

/// Heartbeats gathered since the last flush: `(source_id, heard at)`. Sources unknown here are
/// skipped by the UPDATE itself.
pub fn touch_sources(u: &mut Unit<'_>, seen: Vec<(String, Millis)>) {
    for (id, at) in seen {
        u.touch(&id, at);
    }
}

pub async fn command_result(u: &mut Unit<'_>, source_id: &str, r: CommandOutcome) -> Result<()> {
    let row = command::Entity::find_by_id(r.command_id.clone()).one(u.txn).await?;
    let mut c = command_from(row.ok_or_else(|| Error::not_found("command", &r.command_id))?)?;
    if c.source_id != source_id {
        return Err(Error::PermissionDenied(format!("command {} was sent to another source", c.command_id)));
    }
    if matches!(c.state, CommandState::Succeeded | CommandState::Failed) {
        return Ok(()); // an answer replayed after a reconnect
    }
    c.state = if r.success { CommandState::Succeeded } else { CommandState::Failed };
    c.finished_at = Some(u.now);
    c.result_message = if r.unsupported { format!("unsupported by the agent: {}", r.message) } else { r.message };
    c.result_details_json = r.details_json;
    command::Entity::update(command_active(&c)).exec(u.txn).await?;
    u.status_changed = true;
    if matches!(c.kind, CommandKind::Move | CommandKind::Expire) {
        super::lifecycle::on_result(u, &c, r.success, &c.result_message, &c.result_details_json).await?;
    }
    if c.kind == CommandKind::RestoreDrill {
        super::lifecycle::on_drill_result(u, &c, r.success, &c.result_message, &c.result_details_json).await?;
    }
    if c.kind == CommandKind::Resume
        && r.success
        && let Some(mut s) = u.source(source_id).await?
    {
        s.safety_state = SafetyState::Ok;
        s.safety_reason.clear();
        u.put_source(s);
        u.journal(JournalEntry {
            actor: actor_of(source_id),
            event_type: "source.resumed".into(),
            source_id: source_id.to_owned(),
            status_before: SafetyState::StoppedForSafety.as_str().into(),
            status_after: SafetyState::Ok.as_str().into(),
            ..Default::default()
        });
    }
    u.journal(JournalEntry {
        actor: actor_of(source_id),
        event_type: "command.finished".into(),
        source_id: source_id.to_owned(),
        package_id: c.package_id.clone(),
        status_after: c.state.as_str().into(),
        error: if r.success { String::new() } else { c.result_message.clone() },
        details_json: serde_json::json!({"command_id": c.command_id, "kind": c.kind}).to_string(),
        ..Default::default()
    });
    Ok(())
}

pub async fn safety_alert(u: &mut Unit<'_>, source_id: &str, reason: String, details_json: String) -> Result<()> {
    let mut s = u.source_or_new(source_id, &actor_of(source_id)).await?;
    let before = s.safety_state;
    s.safety_state = SafetyState::StoppedForSafety;
    s.safety_reason = reason.clone();
    u.put_source(s);
    u.journal(JournalEntry {
        actor: actor_of(source_id),
        event_type: "source.stopped_for_safety".into(),
        source_id: source_id.to_owned(),
        status_before: before.as_str().into(),
        status_after: SafetyState::StoppedForSafety.as_str().into(),
        error: reason,
        details_json,
        ..Default::default()
    });
    Ok(())
}

/// Applies one source's sequenced events: replays at or below the cursor are skipped, invalid
/// events are rejected but still move the cursor, so the agent can drop them from its outbox.
pub async fn agent_events(
    u: &mut Unit<'_>,
    source_id: &str,
    events: Vec<(u64, Result<AgentEvent>)>,
) -> Result<EventsOutcome> {
    let mut cursor = u.cursor(source_id).await?;
    let mut out = EventsOutcome::default();
    let actor = actor_of(source_id);
    for (seq, event) in events {
        if seq <= cursor {
            out.duplicates += 1;
            continue;
        }
        let result = match event {
            Err(e) => Err(e),
            Ok(AgentEvent::Ingest(n)) => ingest(u, source_id, n, &actor).await.map(|_| ()),
            Ok(AgentEvent::Progress(g)) => progress(u, Some(source_id), g, &actor).await.map(|_| ()),
            Ok(AgentEvent::Complete(c)) => complete(u, Some(source_id), c, &actor).await.map(|_| ()),
            Ok(AgentEvent::Fail(f)) => fail(u, Some(source_id), f, &actor).await.map(|_| ()),
            Ok(AgentEvent::CommandResult(r)) => command_result(u, source_id, r).await,
            Ok(AgentEvent::SafetyAlert { reason, details_json }) => {
                safety_alert(u, source_id, reason, details_json).await
            }
        };
        match result {
            Ok(()) => out.applied += 1,
            Err(e) if e.is_client_error() => {
                // Kept in the journal: the agent drops a rejected event from its outbox.
                u.journal(JournalEntry {
                    actor: actor.clone(),
                    event_type: "agent.event_rejected".into(),
                    source_id: source_id.to_owned(),
                    error: e.to_string(),
                    details_json: serde_json::json!({ "seq": seq }).to_string(),
                    ..Default::default()
                });
                out.rejected.push((seq, e))
            }
            // A database failure aborts the whole batch; nothing is acknowledged.
            Err(e) => return Err(e),
        }
        cursor = seq;
    }
    u.set_cursor(source_id, cursor);
    if let Some(mut s) = u.source(source_id).await? {
        s.last_seen_at = u.now;
        u.put_source(s);
    }
    out.applied_seq = cursor;
    Ok(out)
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

/// Canonical JSON of the policy config; its sha256 identifies a snapshot.
pub fn canonical_config(rule_sets: &[RuleSet], stations: &[Station]) -> String {
    let mut rule_sets = rule_sets.to_vec();
    rule_sets.sort_by_key(|r| r.package_type);
    let mut stations = stations.to_vec();
    stations.sort_by(|a, b| a.station_id.cmp(&b.station_id));
    serde_json::json!({"rule_sets": rule_sets, "stations": stations}).to_string()
}

/// Parses a snapshot's config back.
pub fn parse_config(json: &str) -> Result<(Vec<RuleSet>, Vec<Station>)> {
    #[derive(serde::Deserialize)]
    struct Doc {
        rule_sets: Vec<RuleSet>,
        stations: Vec<Station>,
    }
    let doc: Doc = serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("snapshot config: {e}")))?;
    Ok((doc.rule_sets, doc.stations))
}

async fn current_stations(u: &Unit<'_>) -> Result<Vec<Station>> {
    station::Entity::find().all(u.txn).await?.into_iter().map(crate::store::convert::station_from).collect()
}

pub async fn snapshot(u: &mut Unit<'_>, reason: &str, actor: &str) -> Result<ConfigSnapshot> {
    let rules: Vec<RuleSet> = u.rules().await?.values().cloned().collect();
    let config_json = canonical_config(&rules, &current_stations(u).await?);
    let sha256 = hex::encode(Sha256::digest(config_json.as_bytes()));
    let res = config_snapshot::Entity::insert(config_snapshot::ActiveModel {
        created_at: Set(u.now),
        reason: Set(reason.to_owned()),
        sha256: Set(sha256.clone()),
        config_json: Set(config_json.clone()),
        ..Default::default()
    })
    .exec(u.txn)
    .await?;
    let snapshot_id = u64::try_from(res.last_insert_id).unwrap_or(0);
    u.journal(JournalEntry {
        actor: actor.to_owned(),
        event_type: "config.snapshot".into(),
        checksum: sha256.clone(),
        details_json: serde_json::json!({"snapshot_id": snapshot_id, "reason": reason}).to_string(),
        ..Default::default()
    });
    Ok(ConfigSnapshot { snapshot_id, created_at: u.now, reason: reason.to_owned(), sha256, config_json })
}

/// Outcome of a rule change.
#[derive(Debug, Clone)]
pub struct RulesOutcome {
    pub rule_sets: Vec<RuleSet>,
    pub snapshot_id: u64,
    pub replanned: u64,
}

/// Replaces rule sets, re-plans their packages, snapshots the config and journals the change.
pub async fn set_rules(
    u: &mut Unit<'_>,
    sets: Vec<RuleSet>,
    reason: &str,
    event_type: &str,
    details: serde_json::Value,
) -> Result<RulesOutcome> {
    for rs in &sets {
        rs.validate()?;
    }
    let before = u.rules().await?.clone();
    u.put_rules(&sets).await?;
    let mut replanned = 0;
    for rs in &sets {
        if before.get(&rs.package_type) == Some(rs) {
            continue;
        }
        replanned += replan_stored(u.txn, rs, u.now).await?;
        u.replanned(rs.package_type);
        let now = u.now;
        for p in u
            .cached_packages_mut()
            .filter(|p| p.package_type == rs.package_type && p.status == PackageStatus::Completed)
        {
            if let (Some(tier), Some(entered)) = (p.tier, p.tier_entered_at) {
                let stays = rs.cache_ttl_secs.is_some() || rs.stop(tier).enabled;
                p.next_transition_at = if stays { rs.due_at(tier, entered) } else { Some(now) };
            }
        }
    }
    let snap = snapshot(u, reason, "api").await?;
    let mut details = details;
    details["snapshot_id"] = serde_json::json!(snap.snapshot_id);
    details["replanned_packages"] = serde_json::json!(replanned);
    details["package_types"] = serde_json::json!(sets.iter().map(|r| r.package_type).collect::<Vec<_>>());
    details["reason"] = serde_json::json!(reason);
    u.journal(JournalEntry {
        actor: "api".into(),
        event_type: event_type.to_owned(),
        checksum: snap.sha256.clone(),
        details_json: details.to_string(),
        ..Default::default()
    });
    let mut all: Vec<RuleSet> = u.rules().await?.values().cloned().collect();
    all.sort_by_key(|r| r.package_type);
    Ok(RulesOutcome { rule_sets: all, snapshot_id: snap.snapshot_id, replanned })
}

pub async fn restore_snapshot(u: &mut Unit<'_>, id: u64, reason: &str) -> Result<RulesOutcome> {
    let key = i64::try_from(id).map_err(|_| Error::invalid("snapshot_id", "out of range"))?;
    let row = config_snapshot::Entity::find_by_id(key)
        .one(u.txn)
        .await?
        .ok_or_else(|| Error::not_found("snapshot", id.to_string()))?;
    let (sets, _stations) = parse_config(&row.config_json)?;
    let reason = if reason.is_empty() { format!("restore of snapshot {id}") } else { reason.to_owned() };
    set_rules(u, sets, &reason, "config.restored", serde_json::json!({"restored_snapshot_id": id})).await
}

/// Makes the stations table match the config (stations are declared in the catcher's config).
pub async fn sync_stations(u: &mut Unit<'_>, stations: Vec<Station>) -> Result<bool> {
    let current = current_stations(u).await?;
    let mut a = current.clone();
    let mut b = stations.clone();
    a.sort_by(|x, y| x.station_id.cmp(&y.station_id));
    b.sort_by(|x, y| x.station_id.cmp(&y.station_id));
    if a == b {
        return Ok(false);
    }
    station::Entity::delete_many().exec(u.txn).await?;
    if !stations.is_empty() {
        let rows = stations.iter().map(|s| station::ActiveModel {
            station_id: Set(s.station_id.clone()),
            tier: Set(s.tier.as_str().to_owned()),
            kind: Set(s.kind.as_str().to_owned()),
            uri: Set(s.uri.clone()),
        });
        station::Entity::insert_many(rows).exec_without_returning(u.txn).await?;
    }
    u.journal(JournalEntry {
        actor: "catcher".into(),
        event_type: "stations.changed".into(),
        details_json: serde_json::json!({"stations": b.iter().map(|s| &s.station_id).collect::<Vec<_>>()}).to_string(),
        ..Default::default()
    });
    u.status_changed = true;
    Ok(true)
}

/// A drill asked for by tier (`{"tier": "cold", "sample": 3}`) is planned here: the catcher knows
/// where every copy is. Without a tier the agent drills its own newest packages.
async fn drill_args(u: &mut Unit<'_>, s: &Source, args_json: &str) -> Result<String> {
    let args: serde_json::Value = if args_json.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(args_json).map_err(|e| Error::invalid("args_json", e.to_string()))?
    };
    let Some(tier) = args.get("tier") else { return Ok(args.to_string()) };
    let tier = match tier.as_str() {
        Some("any") => None,
        Some(t) => {
            Some(Tier::parse(t).ok_or_else(|| Error::invalid("args_json.tier", "hot, warm, cold, offsite or any"))?)
        }
        None => return Err(Error::invalid("args_json.tier", "must be a string")),
    };
    if !s.capabilities.contains(&Capability::Mover) {
        return Err(Error::FailedPrecondition(format!(
            "source {} is not a mover; a drill by tier needs an agent with access to the stations",
            s.source_id
        )));
    }
    let sample = args["sample"].as_u64().unwrap_or(3).clamp(1, 100) as u32;
    let plan = super::lifecycle::drill_plan(u, tier, sample).await?;
    if plan.is_empty() {
        return Err(Error::FailedPrecondition("no package in that tier has a verified copy on a known station".into()));
    }
    Ok(serde_json::json!({ "tier": tier.map_or("any", |t| t.as_str()), "packages": plan }).to_string())
}

pub async fn create_command(u: &mut Unit<'_>, mut n: NewCommand) -> Result<Command> {
    let s = u.source(&n.source_id).await?.ok_or_else(|| Error::not_found("source", &n.source_id))?;
    if !n.package_id.is_empty() {
        owned_package(u, Some(&s.source_id), &n.package_id).await?;
    }
    if n.kind == CommandKind::RestoreDrill {
        n.args_json = drill_args(u, &s, &n.args_json).await?;
    }
    let c = Command {
        command_id: uuid::Uuid::now_v7().to_string(),
        source_id: n.source_id,
        kind: n.kind,
        package_id: n.package_id,
        from_station_id: n.from_station_id,
        to_station_id: n.to_station_id,
        args_json: n.args_json,
        state: CommandState::Pending,
        attempts: 0,
        lease_until: None,
        created_at: u.now,
        finished_at: None,
        result_message: String::new(),
        result_details_json: String::new(),
    };
    command::Entity::insert(command_active(&c)).exec_without_returning(u.txn).await?;
    u.status_changed = true;
    u.journal(JournalEntry {
        actor: n.actor,
        event_type: "command.created".into(),
        source_id: c.source_id.clone(),
        package_id: c.package_id.clone(),
        status_after: c.state.as_str().into(),
        details_json: serde_json::json!({"command_id": c.command_id, "kind": c.kind}).to_string(),
        ..Default::default()
    });
    Ok(c)
}

/// Records that commands were sent and when to send them again.
pub async fn commands_sent(u: &mut Unit<'_>, ids: Vec<String>, lease_until: Millis) -> Result<()> {
    for chunk in ids.chunks(400) {
        command::Entity::update_many()
            .col_expr(command::Column::State, Expr::value(CommandState::Leased.as_str()))
            .col_expr(command::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(command::Column::Attempts, Expr::col(command::Column::Attempts).add(1))
            .filter(command::Column::CommandId.is_in(chunk.iter().cloned()))
            .filter(command::Column::State.is_in([CommandState::Pending.as_str(), CommandState::Leased.as_str()]))
            .exec(u.txn)
            .await?;
    }
    Ok(())
}

/// Moves due packages on as metadata (no stations to copy between).
pub async fn transitions(u: &mut Unit<'_>, due: Vec<Due>) -> Result<u64> {
    let mut moved = 0;
    for d in due {
        let Some(mut p) = u.package(&d.package_id).await? else { continue };
        // Re-check under the transaction: a rule change or a concurrent pass may have got there first.
        if p.status != PackageStatus::Completed
            || p.tier != Some(d.tier)
            || p.next_transition_at.is_none_or(|t| t > u.now)
        {
            continue;
        }
        let rules = u.rule(p.package_type).await?;
        let from = d.tier;
        if super::lifecycle::start(u, &mut p, &rules, from).await? {
            u.put_package(p);
            moved += 1;
            continue;
        }
        let mut entry = JournalEntry {
            actor: "scheduler".into(),
            source_id: p.source_id.clone(),
            package_id: p.package_id.clone(),
            status_before: from.as_str().into(),
            ..Default::default()
        };
        match rules.after(from) {
            Next::Move(to) => {
                p.tier = Some(to);
                p.tier_entered_at = Some(u.now);
                p.next_transition_at = rules.due_at(to, u.now);
                entry.event_type = "package.tier_changed".into();
                entry.status_after = to.as_str().into();
            }
            Next::Expire => {
                p.status = PackageStatus::Expired;
                p.tier = None;
                p.next_transition_at = None;
                p.expired_at = Some(u.now);
                entry.event_type = "package.expired".into();
                entry.status_after = PackageStatus::Expired.as_str().into();
                mark_placements_deleted(u, &p.package_id).await?;
            }
            Next::Stay => {
                p.next_transition_at = None;
                entry.event_type = "package.kept_forever".into();
                entry.status_after = from.as_str().into();
            }
        }
        entry.details_json = serde_json::json!({"from": tier_str(Some(from)), "mode": "metadata"}).to_string();
        u.journal(entry);
        u.put_package(p);
        moved += 1;
    }
    Ok(moved)
}

async fn mark_placements_deleted(u: &mut Unit<'_>, package_id: &str) -> Result<()> {
    placement::Entity::update_many()
        .col_expr(placement::Column::Status, Expr::value(PlacementStatus::Deleted.as_str()))
        .col_expr(placement::Column::UpdatedAt, Expr::value(u.now))
        .filter(placement::Column::PackageId.eq(package_id))
        .exec(u.txn)
        .await?;
    Ok(())
}

/// At start, no agent is connected yet, whatever the database says from before a crash.
pub async fn reset_connections(u: &mut Unit<'_>) -> Result<()> {
    use crate::store::entity::source;
    let n = source::Entity::update_many()
        .col_expr(source::Column::Connected, Expr::value(false))
        .filter(source::Column::Connected.eq(true))
        .exec(u.txn)
        .await?
        .rows_affected;
    if n > 0 {
        u.status_changed = true;
    }
    Ok(())
}

/// First start: write the initial rule sets and the first snapshot.
pub async fn bootstrap(u: &mut Unit<'_>, preset: &str) -> Result<bool> {
    if !u.rules().await?.is_empty() {
        return Ok(false);
    }
    let p = crate::rules::preset(preset).ok_or_else(|| Error::invalid("initial_preset", "unknown preset"))?;
    u.put_rules(&p.rule_sets).await?;
    snapshot(u, &format!("initial config (preset {preset})"), "catcher").await?;
    // Packages imported before the first start (restores, bulk loads) are summarised once,
    // unless the importer already did (the counters are then present).
    if crate::store::entity::package_counter::Entity::find().one(u.txn).await?.is_none() {
        super::unit::rebuild_counters(u.txn).await?;
        super::unit::rebuild_transition_days(u.txn, None).await?;
    }
    Ok(true)
}
