//! Conversions between sea-orm rows and domain types. Stored enum spellings that do not parse
//! are reported as corruption, never unwrapped.

use sea_orm::ActiveValue::Set;

use super::command_codec;
use super::entity::{
    agent_credential, alert, command, config_snapshot, enrollment_token, journal, notification, package,
    package_manifest, pending_change, person_token, placement, recovery_point, rule_set, source, station,
};
use crate::domain::*;
use crate::error::Error;
use crate::error::Result;
use crate::rules::RuleSet;
use crate::rules::{PendingChange, PendingKind, PendingState};

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Storage spelling of an optional tier ("" = none).
pub fn tier_str(tier: Option<Tier>) -> &'static str {
    tier.map_or("", Tier::as_str)
}

pub fn package_from(m: package::Model) -> Result<Package> {
    Ok(Package {
        package_type: parse_stored(&m.package_type, PackageType::parse, "package type")?,
        status: parse_stored(&m.status, PackageStatus::parse, "package status")?,
        tool: parse_stored(&m.tool, Tool::parse, "tool")?,
        tier: if m.tier.is_empty() { None } else { Some(parse_stored(&m.tier, Tier::parse, "tier")?) },
        package_id: m.package_id,
        source_id: m.source_id,
        path: m.path,
        size_bytes: u64_of(m.size_bytes),
        sha256: m.sha256,
        bytes_done: u64_of(m.bytes_done),
        progress_percent: u32::try_from(m.progress_percent).unwrap_or(0),
        tool_ref: m.tool_ref,
        tier_entered_at: m.tier_entered_at,
        next_transition_at: m.next_transition_at,
        retry_count: u32::try_from(m.retry_count).unwrap_or(0),
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
        completed_at: m.completed_at,
        expired_at: m.expired_at,
    })
}

pub fn package_active(p: &Package) -> package::ActiveModel {
    package::ActiveModel {
        package_id: Set(p.package_id.clone()),
        source_id: Set(p.source_id.clone()),
        path: Set(p.path.clone()),
        package_type: Set(p.package_type.as_str().to_owned()),
        size_bytes: Set(i64_of(p.size_bytes)),
        sha256: Set(p.sha256.clone()),
        status: Set(p.status.as_str().to_owned()),
        bytes_done: Set(i64_of(p.bytes_done)),
        progress_percent: Set(i32::try_from(p.progress_percent).unwrap_or(100)),
        tool: Set(p.tool.as_str().to_owned()),
        tool_ref: Set(p.tool_ref.clone()),
        tier: Set(tier_str(p.tier).to_owned()),
        tier_entered_at: Set(p.tier_entered_at),
        next_transition_at: Set(p.next_transition_at),
        retry_count: Set(i32::try_from(p.retry_count).unwrap_or(i32::MAX)),
        last_error: Set(p.last_error.clone()),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
        completed_at: Set(p.completed_at),
        expired_at: Set(p.expired_at),
    }
}

pub fn placement_from(m: placement::Model) -> Result<Placement> {
    Ok(Placement {
        status: parse_stored(&m.status, PlacementStatus::parse, "placement status")?,
        package_id: m.package_id,
        station_id: m.station_id,
        verified_sha256: m.verified_sha256,
        verified_at: m.verified_at,
        error: m.error,
        updated_at: m.updated_at,
    })
}

pub fn placement_active(p: &Placement) -> placement::ActiveModel {
    placement::ActiveModel {
        package_id: Set(p.package_id.clone()),
        station_id: Set(p.station_id.clone()),
        status: Set(p.status.as_str().to_owned()),
        verified_sha256: Set(p.verified_sha256.clone()),
        verified_at: Set(p.verified_at),
        error: Set(p.error.clone()),
        updated_at: Set(p.updated_at),
    }
}

pub fn source_from(m: source::Model) -> Result<Source> {
    let capabilities = m
        .capabilities
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| parse_stored(c, Capability::parse, "capability"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Source {
        safety_state: parse_stored(&m.safety_state, SafetyState::parse, "safety state")?,
        capabilities,
        source_id: m.source_id,
        label: m.label,
        hostname: m.hostname,
        os: m.os,
        agent_version: m.agent_version,
        first_seen_at: m.first_seen_at,
        last_seen_at: m.last_seen_at,
        connected: m.connected,
        safety_reason: m.safety_reason,
        last_completed_at: m.last_completed_at,
        replica: m.replica,
    })
}

pub fn source_active(s: &Source) -> source::ActiveModel {
    source::ActiveModel {
        source_id: Set(s.source_id.clone()),
        label: Set(s.label.clone()),
        hostname: Set(s.hostname.clone()),
        os: Set(s.os.clone()),
        agent_version: Set(s.agent_version.clone()),
        capabilities: Set(s.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")),
        mover: Set(s.capabilities.contains(&Capability::Mover)),
        first_seen_at: Set(s.first_seen_at),
        last_seen_at: Set(s.last_seen_at),
        connected: Set(s.connected),
        safety_state: Set(s.safety_state.as_str().to_owned()),
        safety_reason: Set(s.safety_reason.clone()),
        last_completed_at: Set(s.last_completed_at),
        replica: Set(s.replica.clone()),
    }
}

pub fn station_from(m: station::Model) -> Result<Station> {
    Ok(Station {
        tier: parse_stored(&m.tier, Tier::parse, "tier")?,
        kind: parse_stored(&m.kind, StationKind::parse, "station kind")?,
        station_id: m.station_id,
        uri: m.uri,
    })
}

pub fn command_from(m: command::Model) -> Result<Command> {
    let kind = parse_stored(&m.kind, CommandKind::parse, "command kind")?;
    let progress = match (m.progress_phase.as_str(), m.progress_at) {
        ("", _) | (_, None) => None,
        (phase, Some(at)) => Some(CommandProgress {
            phase: parse_stored(phase, CommandPhase::parse, "command progress phase")?,
            files_done: u64_of(m.progress_files_done),
            files_total: u64_of(m.progress_files_total),
            bytes_done: u64_of(m.progress_bytes_done),
            bytes_total: u64_of(m.progress_bytes_total),
            at,
        }),
    };
    Ok(Command {
        progress,
        args: command_codec::decode_args(kind, &m.from_station_id, &m.to_station_id, &m.args_json)?,
        result: command_codec::decode_details(&m.command_id, kind, &m.result_details_json),
        state: parse_stored(&m.state, CommandState::parse, "command state")?,
        command_id: m.command_id,
        source_id: m.source_id,
        package_id: m.package_id,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        lease_until: m.lease_until,
        created_at: m.created_at,
        finished_at: m.finished_at,
        result_message: m.result_message,
    })
}

pub fn command_active(c: &Command) -> Result<command::ActiveModel> {
    let (from_station_id, to_station_id, args_json) = command_codec::encode_args(&c.args)?;
    Ok(command::ActiveModel {
        command_id: Set(c.command_id.clone()),
        source_id: Set(c.source_id.clone()),
        kind: Set(c.kind().as_str().to_owned()),
        package_id: Set(c.package_id.clone()),
        from_station_id: Set(from_station_id),
        to_station_id: Set(to_station_id),
        args_json: Set(args_json),
        state: Set(c.state.as_str().to_owned()),
        attempts: Set(i32::try_from(c.attempts).unwrap_or(i32::MAX)),
        lease_until: Set(c.lease_until),
        created_at: Set(c.created_at),
        finished_at: Set(c.finished_at),
        result_message: Set(c.result_message.clone()),
        result_details_json: Set(command_codec::encode_details(c.result.as_ref())?),
        progress_phase: Set(c.progress.map_or("", |p| p.phase.as_str()).to_owned()),
        progress_files_done: Set(c.progress.map_or(0, |p| i64_of(p.files_done))),
        progress_files_total: Set(c.progress.map_or(0, |p| i64_of(p.files_total))),
        progress_bytes_done: Set(c.progress.map_or(0, |p| i64_of(p.bytes_done))),
        progress_bytes_total: Set(c.progress.map_or(0, |p| i64_of(p.bytes_total))),
        progress_at: Set(c.progress.map(|p| p.at)),
    })
}

pub fn journal_from(m: journal::Model) -> JournalEvent {
    JournalEvent {
        sequence: u64_of(m.sequence),
        at: m.at,
        entry: JournalRecord {
            actor: m.actor,
            event_type: m.event_type,
            source_id: m.source_id,
            package_id: m.package_id,
            station_id: m.station_id,
            status_before: m.status_before,
            status_after: m.status_after,
            checksum: m.checksum,
            error: m.error,
            details_json: m.details_json,
        },
        prev_hash: m.prev_hash,
        hash: m.hash,
    }
}

pub fn journal_active(e: &JournalEvent) -> journal::ActiveModel {
    let j = &e.entry;
    journal::ActiveModel {
        sequence: Set(i64_of(e.sequence)),
        at: Set(e.at),
        actor: Set(j.actor.clone()),
        event_type: Set(j.event_type.clone()),
        source_id: Set(j.source_id.clone()),
        package_id: Set(j.package_id.clone()),
        station_id: Set(j.station_id.clone()),
        status_before: Set(j.status_before.clone()),
        status_after: Set(j.status_after.clone()),
        checksum: Set(j.checksum.clone()),
        error: Set(j.error.clone()),
        details_json: Set(j.details_json.clone()),
        prev_hash: Set(e.prev_hash.clone()),
        hash: Set(e.hash.clone()),
    }
}

pub fn station_active(s: &Station) -> station::ActiveModel {
    station::ActiveModel {
        station_id: Set(s.station_id.clone()),
        tier: Set(s.tier.as_str().to_owned()),
        kind: Set(s.kind.as_str().to_owned()),
        uri: Set(s.uri.clone()),
    }
}

pub fn rule_set_from(row: &rule_set::Model) -> Result<RuleSet> {
    serde_json::from_str(&row.body).map_err(|e| Error::Corrupt(format!("rule set {}: {e}", row.package_type)))
}

pub fn rule_set_active(rs: &RuleSet, now: Millis) -> rule_set::ActiveModel {
    rule_set::ActiveModel {
        package_type: Set(rs.package_type.as_str().to_owned()),
        body: Set(serde_json::to_string(rs).expect("a rule set always serialises")),
        updated_at: Set(now),
    }
}

pub fn snapshot_from(m: config_snapshot::Model) -> ConfigSnapshot {
    ConfigSnapshot {
        snapshot_id: u64_of(m.snapshot_id),
        created_at: m.created_at,
        reason: m.reason,
        sha256: m.sha256,
        config_json: m.config_json,
        actor: m.actor,
    }
}

pub fn snapshot_active(s: &ConfigSnapshot) -> config_snapshot::ActiveModel {
    config_snapshot::ActiveModel {
        snapshot_id: Set(i64_of(s.snapshot_id)),
        created_at: Set(s.created_at),
        reason: Set(s.reason.clone()),
        sha256: Set(s.sha256.clone()),
        config_json: Set(s.config_json.clone()),
        actor: Set(s.actor.clone()),
    }
}

pub fn pending_from(m: pending_change::Model) -> Result<PendingChange> {
    let kind: PendingKind =
        serde_json::from_str(&m.body).map_err(|e| Error::Corrupt(format!("pending change {}: {e}", m.change_id)))?;
    Ok(PendingChange {
        change_id: u64_of(m.change_id),
        kind,
        state: PendingState::parse(&m.state)
            .ok_or_else(|| Error::Corrupt(format!("pending change {}: state {:?}", m.change_id, m.state)))?,
        requested_by: m.requested_by,
        reason: m.reason,
        created_at: m.created_at,
        effective_at: m.effective_at,
        resolved_at: m.resolved_at,
        resolved_by: m.resolved_by,
        outcome: m.outcome,
    })
}

pub fn pending_active(c: &PendingChange) -> Result<pending_change::ActiveModel> {
    Ok(pending_change::ActiveModel {
        change_id: Set(i64_of(c.change_id)),
        kind: Set(c.kind.name().to_owned()),
        body: Set(serde_json::to_string(&c.kind).map_err(|e| Error::Corrupt(format!("pending change: {e}")))?),
        state: Set(c.state.as_str().to_owned()),
        requested_by: Set(c.requested_by.clone()),
        reason: Set(c.reason.clone()),
        created_at: Set(c.created_at),
        effective_at: Set(c.effective_at),
        resolved_at: Set(c.resolved_at),
        resolved_by: Set(c.resolved_by.clone()),
        outcome: Set(c.outcome.clone()),
    })
}

pub fn manifest_active(package_id: String, files: &[ManifestEntry]) -> Result<package_manifest::ActiveModel> {
    Ok(package_manifest::ActiveModel {
        package_id: Set(package_id),
        file_count: Set(i64::try_from(files.len()).unwrap_or(i64::MAX)),
        manifest_json: Set(serde_json::to_string(files).map_err(|e| Error::Corrupt(e.to_string()))?),
    })
}

pub fn enrollment_from(m: enrollment_token::Model) -> EnrollmentToken {
    EnrollmentToken {
        token_id: m.token_id,
        token_hash: m.token_hash,
        source_id: m.source_id,
        mover: m.mover,
        uses_left: u32::try_from(m.uses_left.max(0)).unwrap_or(u32::MAX),
        expires_at: m.expires_at,
        created_at: m.created_at,
        created_by: m.created_by,
    }
}

pub fn enrollment_active(t: &EnrollmentToken) -> enrollment_token::ActiveModel {
    enrollment_token::ActiveModel {
        token_id: Set(t.token_id.clone()),
        token_hash: Set(t.token_hash.clone()),
        source_id: Set(t.source_id.clone()),
        mover: Set(t.mover),
        uses_left: Set(i64::from(t.uses_left)),
        expires_at: Set(t.expires_at),
        created_at: Set(t.created_at),
        created_by: Set(t.created_by.clone()),
    }
}

pub fn person_token_from(m: person_token::Model) -> Result<PersonToken> {
    Ok(PersonToken {
        role: m.role.parse().map_err(|_| Error::Corrupt(format!("token {}: role {:?}", m.name, m.role)))?,
        name: m.name,
        token_hash: m.token_hash,
        unredacted: m.unredacted,
        created_at: m.created_at,
        created_by: m.created_by,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
    })
}

pub fn person_token_active(t: &PersonToken) -> person_token::ActiveModel {
    person_token::ActiveModel {
        name: Set(t.name.clone()),
        token_hash: Set(t.token_hash.clone()),
        role: Set(t.role.to_string()),
        unredacted: Set(t.unredacted),
        created_at: Set(t.created_at),
        created_by: Set(t.created_by.clone()),
        expires_at: Set(t.expires_at),
        revoked_at: Set(t.revoked_at),
    }
}

pub fn agent_credential_from(m: agent_credential::Model) -> AgentCredential {
    AgentCredential {
        serial: m.serial,
        source_id: m.source_id,
        mover: m.mover,
        key_sha256: m.key_sha256,
        issued_at: m.issued_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
    }
}

pub fn agent_credential_active(c: &AgentCredential) -> agent_credential::ActiveModel {
    agent_credential::ActiveModel {
        serial: Set(c.serial.clone()),
        source_id: Set(c.source_id.clone()),
        mover: Set(c.mover),
        key_sha256: Set(c.key_sha256.clone()),
        issued_at: Set(c.issued_at),
        expires_at: Set(c.expires_at),
        revoked_at: Set(c.revoked_at),
    }
}

pub fn alert_from(m: alert::Model) -> Result<Alert> {
    Ok(Alert {
        kind: parse_stored(&m.kind, AlertKind::parse, "alert kind")?,
        id: m.alert_id,
        subject: m.subject,
        source_id: m.source_id,
        message: m.message,
        raised_at: m.raised_at,
        resolved_at: m.resolved_at,
        acknowledged_at: m.acknowledged_at,
        acknowledged_by: m.acknowledged_by,
        note: m.note,
    })
}

pub fn alert_active(a: &Alert) -> alert::ActiveModel {
    alert::ActiveModel {
        alert_id: Set(a.id.clone()),
        kind: Set(a.kind.as_str().to_owned()),
        subject: Set(a.subject.clone()),
        source_id: Set(a.source_id.clone()),
        message: Set(a.message.clone()),
        raised_at: Set(a.raised_at),
        resolved_at: Set(a.resolved_at),
        acknowledged_at: Set(a.acknowledged_at),
        acknowledged_by: Set(a.acknowledged_by.clone()),
        note: Set(a.note.clone()),
    }
}

pub fn notification_from(m: notification::Model) -> Result<Notification> {
    Ok(Notification {
        transition: parse_stored(&m.transition, Transition::parse, "notification transition")?,
        state: parse_stored(&m.state, DeliveryState::parse, "notification state")?,
        id: m.notification_id,
        alert_id: m.alert_id,
        channel: m.channel,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        created_at: m.created_at,
        next_attempt_at: m.next_attempt_at,
        delivered_at: m.delivered_at,
        last_error: m.last_error,
    })
}

pub fn notification_active(n: &Notification) -> notification::ActiveModel {
    notification::ActiveModel {
        notification_id: Set(n.id.clone()),
        alert_id: Set(n.alert_id.clone()),
        channel: Set(n.channel.clone()),
        transition: Set(n.transition.as_str().to_owned()),
        state: Set(n.state.as_str().to_owned()),
        attempts: Set(i32::try_from(n.attempts).unwrap_or(i32::MAX)),
        created_at: Set(n.created_at),
        next_attempt_at: Set(n.next_attempt_at),
        delivered_at: Set(n.delivered_at),
        last_error: Set(n.last_error.clone()),
    }
}

pub fn recovery_point_from(m: recovery_point::Model) -> Result<RecoveryPoint> {
    Ok(RecoveryPoint {
        package_type: parse_stored(&m.package_type, PackageType::parse, "package type")?,
        source_id: m.source_id,
        folder: m.folder,
        first_pass_at: m.first_pass_at,
        last_backup_at: m.last_backup_at,
        last_pass_at: m.last_pass_at,
        unprotected: u64_of(m.unprotected),
    })
}

pub fn recovery_point_active(p: &RecoveryPoint) -> recovery_point::ActiveModel {
    recovery_point::ActiveModel {
        source_id: Set(p.source_id.clone()),
        folder: Set(p.folder.clone()),
        package_type: Set(p.package_type.as_str().to_owned()),
        first_pass_at: Set(p.first_pass_at),
        last_backup_at: Set(p.last_backup_at),
        last_pass_at: Set(p.last_pass_at),
        unprotected: Set(i64_of(p.unprotected)),
    }
}

pub fn replica_from(m: super::entity::replica::Model) -> Replica {
    Replica { replica_id: m.replica_id, address: m.address, started_at: m.started_at, heartbeat_at: m.heartbeat_at }
}
