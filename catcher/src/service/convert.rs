//! Domain -> wire and wire -> domain conversions. Wire input is validated on the way in.

use edgebackup_proto::v1 as pb;

use super::validate as v;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::{PendingChange, PendingKind, PendingState};
use crate::rules::{RuleSet, Stop};

pub fn ts(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

pub fn ts_opt(ms: Option<Millis>) -> Option<prost_types::Timestamp> {
    ms.map(ts)
}

pub fn secs(s: u64) -> prost_types::Duration {
    prost_types::Duration { seconds: i64::try_from(s).unwrap_or(i64::MAX), nanos: 0 }
}

pub fn package_type(t: PackageType) -> pb::PackageType {
    match t {
        PackageType::UserData => pb::PackageType::UserData,
        PackageType::AppLogs => pb::PackageType::AppLogs,
        PackageType::AuditLogs => pb::PackageType::AuditLogs,
        PackageType::BusinessData => pb::PackageType::BusinessData,
        PackageType::JobPackage => pb::PackageType::JobPackage,
        PackageType::Cache => pb::PackageType::Cache,
    }
}

pub fn tier(t: Option<Tier>) -> pb::Tier {
    match t {
        None => pb::Tier::Unspecified,
        Some(Tier::Hot) => pb::Tier::Hot,
        Some(Tier::Warm) => pb::Tier::Warm,
        Some(Tier::Cold) => pb::Tier::Cold,
        Some(Tier::Offsite) => pb::Tier::Offsite,
    }
}

fn status(s: PackageStatus) -> pb::PackageStatus {
    match s {
        PackageStatus::Pending => pb::PackageStatus::Pending,
        PackageStatus::InProgress => pb::PackageStatus::InProgress,
        PackageStatus::Completed => pb::PackageStatus::Completed,
        PackageStatus::Failed => pb::PackageStatus::Failed,
        PackageStatus::Expired => pb::PackageStatus::Expired,
    }
}

fn tool(t: Tool) -> pb::Tool {
    match t {
        Tool::Native => pb::Tool::Native,
        Tool::Restic => pb::Tool::Restic,
        Tool::Rclone => pb::Tool::Rclone,
    }
}

fn placement_status(s: PlacementStatus) -> pb::PlacementStatus {
    match s {
        PlacementStatus::InProgress => pb::PlacementStatus::InProgress,
        PlacementStatus::Verified => pb::PlacementStatus::Verified,
        PlacementStatus::Failed => pb::PlacementStatus::Failed,
        PlacementStatus::Deleted => pb::PlacementStatus::Deleted,
    }
}

fn capability(c: Capability) -> pb::Capability {
    match c {
        Capability::Backup => pb::Capability::Backup,
        Capability::Mover => pb::Capability::Mover,
    }
}

fn station_kind(k: StationKind) -> pb::StationKind {
    match k {
        StationKind::Local => pb::StationKind::Local,
        StationKind::S3 => pb::StationKind::S3,
        StationKind::Rclone => pb::StationKind::Rclone,
        StationKind::Restic => pb::StationKind::Restic,
    }
}

pub fn command_kind(k: CommandKind) -> pb::CommandKind {
    match k {
        CommandKind::BackupNow => pb::CommandKind::BackupNow,
        CommandKind::Verify => pb::CommandKind::Verify,
        CommandKind::RestoreDrill => pb::CommandKind::RestoreDrill,
        CommandKind::Pause => pb::CommandKind::Pause,
        CommandKind::Resume => pb::CommandKind::Resume,
        CommandKind::Move => pb::CommandKind::Move,
        CommandKind::Expire => pb::CommandKind::Expire,
        CommandKind::Restore => pb::CommandKind::Restore,
        CommandKind::Compact => pb::CommandKind::Compact,
    }
}

pub fn command_state(s: CommandState) -> pb::CommandState {
    match s {
        CommandState::Pending => pb::CommandState::Pending,
        CommandState::Leased => pb::CommandState::Leased,
        CommandState::Succeeded => pb::CommandState::Succeeded,
        CommandState::Failed => pb::CommandState::Failed,
    }
}

pub fn package(p: Package, placements: Vec<Placement>) -> pb::Package {
    pb::Package {
        package_type: package_type(p.package_type) as i32,
        status: status(p.status) as i32,
        tool: tool(p.tool) as i32,
        tier: tier(p.tier) as i32,
        tier_entered_at: ts_opt(p.tier_entered_at),
        next_transition_at: ts_opt(p.next_transition_at),
        created_at: Some(ts(p.created_at)),
        updated_at: Some(ts(p.updated_at)),
        completed_at: ts_opt(p.completed_at),
        expired_at: ts_opt(p.expired_at),
        placements: placements.into_iter().map(placement).collect(),
        package_id: p.package_id,
        source_id: p.source_id,
        path: p.path,
        size_bytes: p.size_bytes,
        sha256: p.sha256,
        bytes_done: p.bytes_done,
        progress_percent: p.progress_percent,
        tool_ref: p.tool_ref,
        retry_count: p.retry_count,
        last_error: p.last_error,
        manifest: Vec::new(),
        // Filled where the manifests are read (ListPackages, GetPackage).
        file_count: 0,
    }
}

pub fn manifest_entry(m: ManifestEntry) -> pb::ManifestEntry {
    pb::ManifestEntry { path: m.path, size_bytes: m.size_bytes, sha256: m.sha256, modified_at: ts_opt(m.modified_at) }
}

fn placement(p: Placement) -> pb::Placement {
    pb::Placement {
        station_id: p.station_id,
        status: placement_status(p.status) as i32,
        verified_sha256: p.verified_sha256,
        verified_at: ts_opt(p.verified_at),
        error: p.error,
        updated_at: Some(ts(p.updated_at)),
    }
}

pub fn source(s: Source, last_applied_seq: u64, in_flight: u64) -> pb::Source {
    pb::Source {
        capabilities: s.capabilities.iter().map(|c| capability(*c) as i32).collect(),
        first_seen_at: Some(ts(s.first_seen_at)),
        last_seen_at: Some(ts(s.last_seen_at)),
        safety_state: match s.safety_state {
            SafetyState::Ok => pb::SafetyState::Ok,
            SafetyState::StoppedForSafety => pb::SafetyState::StoppedForSafety,
        } as i32,
        last_completed_at: ts_opt(s.last_completed_at),
        source_id: s.source_id,
        label: s.label,
        hostname: s.hostname,
        os: s.os,
        agent_version: s.agent_version,
        connected: s.connected,
        safety_reason: s.safety_reason,
        last_applied_seq,
        in_flight,
    }
}

pub fn station(s: Station) -> pb::Station {
    pb::Station {
        tier: tier(Some(s.tier)) as i32,
        kind: station_kind(s.kind) as i32,
        station_id: s.station_id,
        uri: s.uri,
    }
}

fn stop(s: Stop, offsite: bool) -> pb::Stop {
    pb::Stop {
        enabled: s.enabled,
        wait: (s.enabled && !(offsite && s.never_delete)).then(|| secs(s.wait_secs)),
        never_delete: s.never_delete,
    }
}

pub fn rule_set(r: RuleSet) -> pb::RuleSet {
    pb::RuleSet {
        package_type: package_type(r.package_type) as i32,
        hot: Some(stop(r.stops[0], false)),
        warm: Some(stop(r.stops[1], false)),
        cold: Some(stop(r.stops[2], false)),
        offsite: Some(stop(r.stops[3], true)),
        replicate_to_all: r.replicate_to_all,
        cache_ttl: r.cache_ttl_secs.map(secs),
        rpo: r.rpo_secs.map(secs),
    }
}

/// Wire rule set -> domain, checking presence and units; `RuleSet::validate` checks the policy.
pub fn rule_set_in(r: &pb::RuleSet) -> Result<RuleSet> {
    let package_type = v::package_type("rule_set.package_type", r.package_type, true)?.expect("required");
    let cache = package_type == PackageType::Cache;
    let stop_in = |name: &str, s: &Option<pb::Stop>| -> Result<Stop> {
        let field = format!("rule_set.{name}");
        let s = match s {
            Some(s) => s,
            None if cache => return Ok(Stop::default()),
            None => return Err(Error::invalid(field, "required (all four stops must be present)")),
        };
        // A stop that is off, or keeps forever, has no wait: one sent anyway is not stored,
        // so equal rules compare equal (found by the `rule_sets` fuzz target).
        let wait_secs = if s.enabled && !s.never_delete {
            v::duration_secs(&format!("{field}.wait"), s.wait.as_ref(), 0)?
        } else {
            0
        };
        Ok(Stop { enabled: s.enabled, wait_secs, never_delete: s.never_delete })
    };
    Ok(RuleSet {
        package_type,
        stops: [
            stop_in("hot", &r.hot)?,
            stop_in("warm", &r.warm)?,
            stop_in("cold", &r.cold)?,
            stop_in("offsite", &r.offsite)?,
        ],
        replicate_to_all: r.replicate_to_all,
        cache_ttl_secs: match &r.cache_ttl {
            Some(d) => Some(v::duration_secs("rule_set.cache_ttl", Some(d), 0)?),
            None => None,
        },
        rpo_secs: match &r.rpo {
            Some(d) => Some(v::duration_secs("rule_set.rpo", Some(d), 0)?),
            None => None,
        },
    })
}

pub fn journal_event(e: JournalEvent) -> pb::JournalEvent {
    let j = e.entry;
    pb::JournalEvent {
        sequence: e.sequence,
        at: Some(ts(e.at)),
        actor: j.actor,
        r#type: EventType::parse(&j.event_type).map_or(pb::JournalEventType::Unspecified, super::journal::event_type)
            as i32,
        event_type: j.event_type,
        source_id: j.source_id,
        package_id: j.package_id,
        station_id: j.station_id,
        status_before: j.status_before,
        status_after: j.status_after,
        checksum: j.checksum,
        error: j.error,
        details_json: j.details_json,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

pub fn tier_stats(t: &TierRow) -> pb::TierStats {
    pb::TierStats {
        tier: tier(t.tier) as i32,
        package_count: t.count,
        total_bytes: t.bytes,
        incoming_next_hour: t.incoming_next_hour,
        outgoing_next_hour: t.outgoing_next_hour,
    }
}

pub fn status_response(s: &FleetStatus) -> pb::GetStatusResponse {
    let n = |st: PackageStatus| s.statuses.get(&st).copied().unwrap_or(0);
    pb::GetStatusResponse {
        version: s.version.clone(),
        started_at: Some(ts(s.started_at)),
        database: s.database.clone(),
        clients_connected: s.clients_connected,
        clients_total: s.clients_total,
        clients_stopped_for_safety: s.clients_stopped,
        tiers: s.tiers.iter().map(tier_stats).collect(),
        statuses: Some(pb::StatusCounts {
            pending: n(PackageStatus::Pending),
            in_progress: n(PackageStatus::InProgress),
            completed: n(PackageStatus::Completed),
            failed: n(PackageStatus::Failed),
            expired: n(PackageStatus::Expired),
        }),
        journal_head: s.journal_head,
        stations: s.stations,
        commands_open: s.commands_open,
        alerts_open: s.alerts_open,
        alerts_unacknowledged: s.alerts_unacknowledged,
        rpo_breached: s.rpo_breached,
        rpo_held: s.rpo_held,
        replicas: s
            .replicas
            .iter()
            .map(|r| pb::CatcherReplica {
                replica_id: r.replica_id.clone(),
                address: r.address.clone(),
                started_at: Some(ts(r.started_at)),
                heartbeat_at: Some(ts(r.heartbeat_at)),
                holds_lease: s.lease_holder.as_deref() == Some(r.replica_id.as_str()),
            })
            .collect(),
        replica_id: String::new(),
        now: Some(ts(s.now)),
        last_restore_drill: s.last_drill.as_ref().map(|j| {
            let details: serde_json::Value = serde_json::from_str(&j.entry.details_json).unwrap_or_default();
            pb::RestoreDrillSummary {
                finished_at: Some(ts(j.at)),
                passed: j.entry.status_after == "passed",
                tier: details["tier"].as_str().unwrap_or("any").to_owned(),
                message: j.entry.error.clone(),
                source_id: j.entry.source_id.clone(),
                packages_checked: details["checked"].as_u64().unwrap_or(0),
            }
        }),
        type_tiers: s
            .type_tiers
            .iter()
            .map(|t| pb::TypeTierStats {
                package_type: package_type(t.package_type) as i32,
                tier: tier(t.tier) as i32,
                package_count: t.count,
                total_bytes: t.bytes,
            })
            .collect(),
    }
}

pub fn pending_change(c: PendingChange) -> pb::PendingChange {
    use pb::pending_change::Change;
    let state = match c.state {
        PendingState::Pending => pb::PendingChangeState::Pending,
        PendingState::Applied => pb::PendingChangeState::Applied,
        PendingState::Cancelled => pb::PendingChangeState::Cancelled,
        PendingState::Superseded => pb::PendingChangeState::Superseded,
        PendingState::Failed => pb::PendingChangeState::Failed,
    };
    let change = match c.kind {
        PendingKind::RuleSet { before, after, shortened, origin } => Change::RuleSet(pb::RuleSetChange {
            before: Some(rule_set(before)),
            after: Some(rule_set(after)),
            shortened,
            origin,
        }),
        PendingKind::PackageDeletion { package_id, source_id, path } => {
            Change::PackageDeletion(pb::PackageDeletion { package_id, source_id, path })
        }
    };
    pb::PendingChange {
        change_id: c.change_id,
        change: Some(change),
        state: state as i32,
        requested_by: c.requested_by,
        reason: c.reason,
        created_at: Some(ts(c.created_at)),
        effective_at: Some(ts(c.effective_at)),
        resolved_at: ts_opt(c.resolved_at),
        resolved_by: c.resolved_by,
        outcome: c.outcome,
    }
}

pub fn alert_kind(k: AlertKind) -> pb::AlertKind {
    match k {
        AlertKind::RpoBreached => pb::AlertKind::RpoBreached,
        AlertKind::AgentSilent => pb::AlertKind::AgentSilent,
        AlertKind::PackageFailed => pb::AlertKind::PackageFailed,
        AlertKind::SafetyTripped => pb::AlertKind::SafetyTripped,
        AlertKind::RestoreDrillFailed => pb::AlertKind::RestoreDrillFailed,
        AlertKind::MoveFailing => pb::AlertKind::MoveFailing,
        AlertKind::StationFailing => pb::AlertKind::StationFailing,
        AlertKind::JournalBroken => pb::AlertKind::JournalBroken,
        AlertKind::PendingChange => pb::AlertKind::PendingChange,
        AlertKind::ChannelFailing => pb::AlertKind::ChannelFailing,
    }
}

pub fn alert(a: Alert) -> pb::Alert {
    pb::Alert {
        kind: alert_kind(a.kind) as i32,
        state: if a.is_open() { pb::AlertState::Open } else { pb::AlertState::Resolved } as i32,
        raised_at: Some(ts(a.raised_at)),
        resolved_at: ts_opt(a.resolved_at),
        acknowledged_at: ts_opt(a.acknowledged_at),
        id: a.id,
        subject: a.subject,
        source_id: a.source_id,
        message: a.message,
        acknowledged_by: a.acknowledged_by,
        note: a.note,
    }
}

fn millis_duration(ms: Millis) -> prost_types::Duration {
    let ms = ms.max(0);
    prost_types::Duration { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

pub fn recovery_point(v: RpoView) -> pb::RecoveryPoint {
    pb::RecoveryPoint {
        package_type: package_type(v.package_type) as i32,
        rpo: Some(millis_duration(v.rpo_ms)),
        last_backup_at: ts_opt(v.last_backup_at),
        last_pass_at: ts_opt(v.last_pass_at),
        age: Some(millis_duration(v.age_ms)),
        state: match v.state {
            RpoState::Held => pb::RpoState::Held,
            RpoState::Breached => pb::RpoState::Breached,
            RpoState::None => pb::RpoState::None,
        } as i32,
        unprotected_files: v.unprotected,
        source_id: v.source_id,
        folder: v.folder,
    }
}

/// Recovery points and their fleet summary (counted before any filter).
pub fn recovery_points(all: Vec<RpoView>, keep: impl Fn(&RpoView) -> bool) -> pb::GetRecoveryPointsResponse {
    let held = all.iter().filter(|v| v.state == RpoState::Held).count() as u64;
    let breached = all.iter().filter(|v| v.state == RpoState::Breached).count() as u64;
    let worst = all.iter().filter(|v| v.state != RpoState::None).map(|v| v.age_ms).max().unwrap_or(0);
    pb::GetRecoveryPointsResponse {
        points: all.into_iter().filter(|v| keep(v)).map(recovery_point).collect(),
        held,
        breached,
        worst_age: Some(millis_duration(worst)),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Fuzz regression (`rule_sets`, crash-672e08fa): a cache rule set whose disabled hot stop
    /// carried a wait was stored with it and no longer equalled itself after a round trip.
    #[test]
    fn a_rule_set_survives_its_round_trip_whatever_its_disabled_stops_carry() {
        let input =
            [58u8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 18, 8, 18, 6, 8, 8, 8, 8, 24, 8, 8, 3, 8, 8, 8, 8, 8, 8, 8, 8, 8, 6];
        let wire = pb::RuleSet::decode(input.as_slice()).expect("the crash input decodes");
        let rs = rule_set_in(&wire).expect("converts");
        rs.validate().expect("a valid cache rule set");
        assert_eq!(rule_set_in(&rule_set(rs.clone())).unwrap(), rs);
        assert!(rs.stops.iter().all(|s| s.wait_secs == 0), "{rs:?}");
    }
}
