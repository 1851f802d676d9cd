//! The one-shot report in three formats: `human` (the dashboard's sections as text), `json` (one
//! document for scripts) and `ai` (tab-separated `EBK` key=value lines, one per record, for grep).
//! Pure: a fleet and a clock in, a string out.

use edgebackup_proto::v1 as pb;
use serde_json::{Value, json};

use super::format::{
    bytes, checksum_prefix, command_phase_key, command_state_key, millis, safety_key, span, status_key, stop, tier_key,
    type_key,
};
use super::model::Fleet;
use super::sections::{self, Ctx, PROJECTION_WINDOW_MS, RETENTION_NOTE, Section, Theme};

/// What `--check` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub failed_packages: u64,
    pub stopped_clients: u64,
    /// Files present on a device whose newest version has no verified copy anywhere.
    pub unprotected_files: u64,
    /// Alerts open.
    pub open_alerts: u64,
    /// Folders whose last complete backup is older than their RPO.
    pub rpo_breached: u64,
}

impl Check {
    pub fn of(fleet: &Fleet) -> Self {
        Self {
            failed_packages: fleet.failed_packages(),
            stopped_clients: fleet.stopped_clients(),
            unprotected_files: fleet.coverage.as_ref().map_or(0, |c| c.unprotected_files),
            open_alerts: fleet.open_alerts().0,
            rpo_breached: fleet.rpo_breached(),
        }
    }

    pub fn ok(self) -> bool {
        self.failed_packages == 0
            && self.stopped_clients == 0
            && self.unprotected_files == 0
            && self.open_alerts == 0
            && self.rpo_breached == 0
    }

    /// One line for people: what is wrong, or that nothing is.
    pub fn summary(self) -> String {
        if self.ok() {
            return "check: ok (no failed packages, no client stopped for safety, every file has a verified copy, \
                    no open alert, every RPO held)"
                .into();
        }
        let problems: Vec<String> = [
            (self.failed_packages, "failed packages"),
            (self.stopped_clients, "clients stopped for safety"),
            (self.unprotected_files, "files without a verified copy"),
            (self.open_alerts, "open alerts"),
            (self.rpo_breached, "RPOs breached"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!("check: FAILED ({})", problems.join(", "))
    }
}

/// Every section as plain text, `width` columns wide.
pub fn human(fleet: &Fleet, url: &str, now: i64, width: u16) -> String {
    let ctx = Ctx { now, width, filter: "", theme: Theme { color: false } };
    let mut out = format!("Edge Backup status · {url}\n");
    for section in Section::ALL {
        let body = sections::build(fleet, section, &ctx);
        out.push_str(&format!("\n== {} ==\n", section.title()));
        for line in body.header.iter().chain(&body.rows) {
            out.push_str(&sections::plain(line));
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&Check::of(fleet).summary());
    out.push('\n');
    out
}

fn ts(t: Option<&prost_types::Timestamp>) -> Value {
    millis(t).map_or(Value::Null, |ms| {
        chrono::DateTime::from_timestamp_millis(ms).map_or(Value::Null, |d| Value::String(d.to_rfc3339()))
    })
}

fn secs(d: Option<&prost_types::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.seconds))
}

fn stop_json(s: Option<&pb::Stop>) -> Value {
    match s {
        Some(s) if s.enabled => json!({ "wait_secs": secs(s.wait.as_ref()), "never_delete": s.never_delete }),
        _ => Value::Null,
    }
}

/// One JSON document with everything the human report shows, in stable keys.
pub fn json(fleet: &Fleet, url: &str, now: i64) -> Value {
    let status = fleet.status.clone().unwrap_or_default();
    let counts = status.statuses.unwrap_or_default();
    let check = Check::of(fleet);
    json!({
        "catcher": {
            "url": url,
            "reachable": true,
            "version": status.version,
            "database": status.database,
            "started_at": ts(status.started_at.as_ref()),
            "now": ts(status.now.as_ref()),
            "journal_head": status.journal_head,
            "stations": status.stations,
            "commands_open": status.commands_open,
            "replica_id": status.replica_id,
            "replicas": status.replicas.iter().map(|r| json!({
                "replica_id": r.replica_id,
                "address": r.address,
                "started_at": ts(r.started_at.as_ref()),
                "heartbeat_at": ts(r.heartbeat_at.as_ref()),
                "holds_lease": r.holds_lease,
            })).collect::<Vec<_>>(),
        },
        "clients_summary": {
            "connected": status.clients_connected,
            "total": status.clients_total,
            "stopped_for_safety": status.clients_stopped_for_safety,
        },
        "statuses": {
            "pending": counts.pending,
            "in_progress": counts.in_progress,
            "completed": counts.completed,
            "failed": counts.failed,
            "expired": counts.expired,
        },
        "tiers": fleet.tiers().iter().map(|t| json!({
            "tier": tier_key(t.tier),
            "packages": t.package_count,
            "bytes": t.total_bytes,
            "incoming_next_hour": t.incoming_next_hour,
            "outgoing_next_hour": t.outgoing_next_hour,
        })).collect::<Vec<_>>(),
        "packages": fleet.packages_newest_first().map(|p| json!({
            "id": p.package_id,
            "path": p.path,
            "source": p.source_id,
            "type": type_key(p.package_type),
            "tier": if p.tier == 0 { Value::Null } else { json!(tier_key(p.tier)) },
            "status": status_key(p.status),
            "progress_percent": p.progress_percent,
            "size_bytes": p.size_bytes,
            "bytes_done": p.bytes_done,
            "sha256": p.sha256,
            "age_secs": millis(p.created_at.as_ref()).map(|at| (now - at).max(0) / 1000),
            "created_at": ts(p.created_at.as_ref()),
            "updated_at": ts(p.updated_at.as_ref()),
            "next_transition_at": ts(p.next_transition_at.as_ref()),
            "last_error": p.last_error,
        })).collect::<Vec<_>>(),
        "clients": fleet.sources.values().map(|s| json!({
            "id": s.source_id,
            "label": s.label,
            "hostname": s.hostname,
            "connected": s.connected,
            "safety": safety_key(s.safety_state),
            "safety_reason": s.safety_reason,
            "agent_version": s.agent_version,
            "in_flight": s.in_flight,
            "last_seen_at": ts(s.last_seen_at.as_ref()),
        })).collect::<Vec<_>>(),
        "restores": fleet.restores.values().map(|c| {
            let p = c.progress.clone().unwrap_or_default();
            json!({
                "id": c.command.as_ref().map(|c| c.command_id.clone()),
                "agent": c.source_id,
                "state": command_state_key(c.state),
                "phase": command_phase_key(p.phase),
                "files_done": p.files_done,
                "files_total": p.files_total,
                "bytes_done": p.bytes_done,
                "bytes_total": p.bytes_total,
                "progress_at": ts(c.progress_at.as_ref()),
                "created_at": ts(c.created_at.as_ref()),
                "message": c.result_message,
            })
        }).collect::<Vec<_>>(),
        "alerts": fleet.alerts_in_order().iter().map(|a| json!({
            "id": a.id,
            "kind": sections::alert_kind_key(a.kind),
            "subject": a.subject,
            "source": a.source_id,
            "open": super::model::alert_open(a),
            "message": a.message,
            "raised_at": ts(a.raised_at.as_ref()),
            "resolved_at": ts(a.resolved_at.as_ref()),
            "acknowledged_by": a.acknowledged_by,
            "note": a.note,
        })).collect::<Vec<_>>(),
        "recovery_points": fleet.recovery_points.iter().flat_map(|r| &r.points).map(|p| json!({
            "source": p.source_id,
            "folder": p.folder,
            "type": type_key(p.package_type),
            "rpo_secs": secs(p.rpo.as_ref()),
            "age_secs": secs(p.age.as_ref()),
            "last_backup_at": ts(p.last_backup_at.as_ref()),
            "last_pass_at": ts(p.last_pass_at.as_ref()),
            "breached": p.state == pb::RpoState::Breached as i32,
            "unprotected_files": p.unprotected_files,
        })).collect::<Vec<_>>(),
        "rule_sets": fleet.rule_sets.iter().map(|r| json!({
            "type": type_key(r.package_type),
            "hot": stop_json(r.hot.as_ref()),
            "warm": stop_json(r.warm.as_ref()),
            "cold": stop_json(r.cold.as_ref()),
            "offsite": stop_json(r.offsite.as_ref()),
            "replicate_to_all": r.replicate_to_all,
            "cache_ttl_secs": secs(r.cache_ttl.as_ref()),
            "rpo_secs": secs(r.rpo.as_ref()),
        })).collect::<Vec<_>>(),
        "projections": fleet.projections(now + PROJECTION_WINDOW_MS).iter().map(|g| json!({
            "from": tier_key(g.from_tier),
            "to": g.to_tier.map(tier_key),
            "expires": g.to_tier.is_none(),
            "packages": g.count,
            "bytes": g.total_bytes,
            "earliest": g.earliest.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.to_rfc3339()),
        })).collect::<Vec<_>>(),
        "journal": fleet.journal.iter().map(|e| json!({
            "sequence": e.sequence,
            "at": ts(e.at.as_ref()),
            "actor": e.actor,
            "event_type": e.event_type,
            "source": e.source_id,
            "package": e.package_id,
            "status_before": e.status_before,
            "status_after": e.status_after,
            "error": e.error,
        })).collect::<Vec<_>>(),
        "note": RETENTION_NOTE,
        "check": {
            "ok": check.ok(),
            "failed_packages": check.failed_packages,
            "stopped_clients": check.stopped_clients,
            "unprotected_files": check.unprotected_files,
            "open_alerts": check.open_alerts,
            "rpo_breached": check.rpo_breached,
            "unprotected": fleet.coverage.iter().flat_map(|c| &c.unprotected).map(|v| json!({
                "source": v.source_id,
                "folder": v.folder,
                "path": v.entry.as_ref().map(|e| e.path.as_str()),
            })).collect::<Vec<_>>(),
        },
    })
}

/// The JSON document a script gets when the catcher cannot be reached.
pub fn json_unreachable(url: &str, reason: &str) -> Value {
    json!({ "catcher": { "url": url, "reachable": false, "error": reason } })
}

/// A value safe inside a tab-separated key=value line.
fn clean(v: &str) -> String {
    v.replace(['\t', '\n', '\r'], " ")
}

/// `EBK<TAB>kind=..<TAB>key=value…`
fn ai_line(kind: &str, fields: &[(&str, String)]) -> String {
    let mut line = format!("EBK\tkind={kind}");
    for (k, v) in fields {
        line.push('\t');
        line.push_str(k);
        line.push('=');
        line.push_str(&clean(v));
    }
    line.push('\n');
    line
}

/// Tab-separated `EBK` lines, one per component, tier, package, client, rule set, projection and
/// journal event, then the check.
pub fn ai(fleet: &Fleet, url: &str, now: i64) -> String {
    let s = fleet.status.clone().unwrap_or_default();
    let c = s.statuses.unwrap_or_default();
    let mut out = String::new();
    out.push_str(&ai_line(
        "component",
        &[
            ("name", "catcher".into()),
            ("status", "ok".into()),
            ("url", url.into()),
            ("version", s.version.clone()),
            ("uptime_secs", millis(s.started_at.as_ref()).map_or(0, |at| (now - at).max(0) / 1000).to_string()),
            ("commands_open", s.commands_open.to_string()),
        ],
    ));
    out.push_str(&ai_line(
        "component",
        &[("name", "database".into()), ("status", "ok".into()), ("backend", s.database.clone())],
    ));
    for r in &s.replicas {
        out.push_str(&ai_line(
            "replica",
            &[
                ("id", r.replica_id.clone()),
                ("address", r.address.clone()),
                ("holds_lease", r.holds_lease.to_string()),
                ("answered", (r.replica_id == s.replica_id).to_string()),
            ],
        ));
    }
    out.push_str(&ai_line(
        "component",
        &[("name", "journal".into()), ("status", "ok".into()), ("head", s.journal_head.to_string())],
    ));
    out.push_str(&ai_line("component", &[("name", "stations".into()), ("count", s.stations.to_string())]));
    out.push_str(&ai_line(
        "component",
        &[
            ("name", "clients".into()),
            ("status", if s.clients_stopped_for_safety > 0 { "stopped_for_safety" } else { "ok" }.into()),
            ("connected", s.clients_connected.to_string()),
            ("total", s.clients_total.to_string()),
            ("stopped_for_safety", s.clients_stopped_for_safety.to_string()),
        ],
    ));
    out.push_str(&ai_line(
        "component",
        &[
            ("name", "packages".into()),
            ("status", if c.failed > 0 { "failed" } else { "ok" }.into()),
            ("pending", c.pending.to_string()),
            ("in_progress", c.in_progress.to_string()),
            ("completed", c.completed.to_string()),
            ("failed", c.failed.to_string()),
            ("expired", c.expired.to_string()),
        ],
    ));
    for t in fleet.tiers() {
        out.push_str(&ai_line(
            "tier",
            &[
                ("tier", tier_key(t.tier).into()),
                ("packages", t.package_count.to_string()),
                ("bytes", t.total_bytes.to_string()),
                ("size", bytes(t.total_bytes)),
                ("incoming_next_hour", t.incoming_next_hour.to_string()),
                ("outgoing_next_hour", t.outgoing_next_hour.to_string()),
            ],
        ));
    }
    for p in fleet.packages_newest_first() {
        out.push_str(&ai_line(
            "package",
            &[
                ("id", p.package_id.clone()),
                ("path", p.path.clone()),
                ("source", p.source_id.clone()),
                ("type", type_key(p.package_type).into()),
                ("tier", if p.tier == 0 { "-".into() } else { tier_key(p.tier).into() }),
                ("status", status_key(p.status).into()),
                ("progress", p.progress_percent.to_string()),
                ("size_bytes", p.size_bytes.to_string()),
                ("age_secs", millis(p.created_at.as_ref()).map_or(0, |at| (now - at).max(0) / 1000).to_string()),
                ("sha256", checksum_prefix(&p.sha256, 12)),
                ("error", p.last_error.clone()),
            ],
        ));
    }
    for c in fleet.restores.values() {
        let p = c.progress.clone().unwrap_or_default();
        out.push_str(&ai_line(
            "restore",
            &[
                ("id", c.command.as_ref().map(|c| c.command_id.clone()).unwrap_or_default()),
                ("agent", c.source_id.clone()),
                ("state", command_state_key(c.state).into()),
                ("files", format!("{}/{}", p.files_done, p.files_total)),
                ("bytes", format!("{}/{}", p.bytes_done, p.bytes_total)),
                ("message", c.result_message.clone()),
            ],
        ));
    }
    for src in fleet.sources.values() {
        out.push_str(&ai_line(
            "client",
            &[
                ("id", src.source_id.clone()),
                ("connected", src.connected.to_string()),
                ("safety", safety_key(src.safety_state).into()),
                ("in_flight", src.in_flight.to_string()),
                ("version", src.agent_version.clone()),
                ("host", src.hostname.clone()),
                ("reason", src.safety_reason.clone()),
            ],
        ));
    }
    for a in fleet.alerts_in_order() {
        out.push_str(&ai_line(
            "alert",
            &[
                ("id", a.id.clone()),
                ("kind", sections::alert_kind_key(a.kind)),
                ("subject", a.subject.clone()),
                ("open", super::model::alert_open(a).to_string()),
                ("acknowledged_by", a.acknowledged_by.clone()),
                ("message", a.message.clone()),
            ],
        ));
    }
    for p in fleet.recovery_points.iter().flat_map(|r| &r.points) {
        out.push_str(&ai_line(
            "rpo",
            &[
                ("source", p.source_id.clone()),
                ("folder", p.folder.clone()),
                ("type", type_key(p.package_type).into()),
                ("rpo_secs", p.rpo.as_ref().map_or(0, |d| d.seconds).to_string()),
                ("age_secs", p.age.as_ref().map_or(0, |d| d.seconds).to_string()),
                ("breached", (p.state == pb::RpoState::Breached as i32).to_string()),
                ("unprotected_files", p.unprotected_files.to_string()),
            ],
        ));
    }
    for r in &fleet.rule_sets {
        out.push_str(&ai_line(
            "rule_set",
            &[
                ("type", type_key(r.package_type).into()),
                ("hot", stop(r.hot.as_ref())),
                ("warm", stop(r.warm.as_ref())),
                ("cold", stop(r.cold.as_ref())),
                ("offsite", stop(r.offsite.as_ref())),
                ("replicate_to_all", r.replicate_to_all.to_string()),
                ("cache_ttl", r.cache_ttl.as_ref().map_or("-".into(), |d| span(u64::try_from(d.seconds).unwrap_or(0)))),
                ("rpo", r.rpo.as_ref().map_or("default".into(), |d| span(u64::try_from(d.seconds).unwrap_or(0)))),
            ],
        ));
    }
    for g in fleet.projections(now + PROJECTION_WINDOW_MS) {
        out.push_str(&ai_line(
            "projection",
            &[
                ("from", tier_key(g.from_tier).into()),
                ("to", g.to_tier.map_or("expire", tier_key).into()),
                ("packages", g.count.to_string()),
                ("bytes", g.total_bytes.to_string()),
                ("first_in_secs", g.earliest.map_or(0, |e| (e - now).max(0) / 1000).to_string()),
            ],
        ));
    }
    for e in fleet.journal.iter().take(20) {
        out.push_str(&ai_line(
            "journal",
            &[
                ("seq", e.sequence.to_string()),
                ("event", e.event_type.clone()),
                ("actor", e.actor.clone()),
                ("source", e.source_id.clone()),
                ("package", e.package_id.clone()),
                ("error", e.error.clone()),
            ],
        ));
    }
    let check = Check::of(fleet);
    out.push_str(&ai_line(
        "check",
        &[
            ("ok", check.ok().to_string()),
            ("failed_packages", check.failed_packages.to_string()),
            ("stopped_clients", check.stopped_clients.to_string()),
            ("unprotected_files", check.unprotected_files.to_string()),
            ("open_alerts", check.open_alerts.to_string()),
            ("rpo_breached", check.rpo_breached.to_string()),
        ],
    ));
    out
}

/// The `ai` line a script gets when the catcher cannot be reached.
pub fn ai_unreachable(url: &str, reason: &str) -> String {
    ai_line(
        "component",
        &[("name", "catcher".into()), ("status", "unreachable".into()), ("url", url.into()), ("error", reason.into())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::render::tests::fixture;

    #[test]
    fn ai_lines_are_tab_separated_and_greppable() {
        let (fleet, now) = fixture();
        let text = ai(&fleet, "http://c", now);
        for line in text.lines() {
            assert!(line.starts_with("EBK\tkind="), "{line:?}");
            assert!(line.split('\t').skip(1).all(|f| f.contains('=')), "every field is key=value: {line:?}");
        }
        assert!(text.contains("EBK\tkind=tier\ttier=hot\tpackages=2\tbytes=3145728\t"), "{text}");
        assert!(text.contains("\tkind=alert\t") && text.contains("\tkind=rpo\tsource=edge-02\t"), "{text}");
        assert!(
            text.contains(
                "\tkind=check\tok=false\tfailed_packages=1\tstopped_clients=1\tunprotected_files=0\topen_alerts=2\trpo_breached=1\n"
            ),
            "{text}"
        );
        let failed = text
            .lines()
            .find(|l| l.contains("kind=package\t") && l.contains("status=failed\t"))
            .expect("the failed package has a line");
        assert!(failed.contains("path=/data/invoices/2024 Q3.xlsx"), "spaces survive, tabs would not: {failed}");
        assert!(failed.contains("error=upload timed out: station hot-1"), "{failed}");
    }

    #[test]
    fn json_has_stable_keys() {
        let (fleet, now) = fixture();
        let v = json(&fleet, "http://c", now);
        assert_eq!(v["catcher"]["reachable"], true);
        assert_eq!(v["tiers"][1]["tier"], "hot");
        assert_eq!(v["tiers"][1]["bytes"], 3_145_728);
        assert_eq!(v["packages"].as_array().unwrap().len(), 4);
        assert_eq!(v["packages"][0]["status"], "in_progress");
        assert_eq!(v["packages"][0]["tier"], Value::Null);
        assert_eq!(v["clients"][1]["safety"], "stopped_for_safety");
        assert_eq!(v["check"]["ok"], false);
        assert_eq!((v["check"]["open_alerts"].as_u64(), v["check"]["rpo_breached"].as_u64()), (Some(2), Some(1)));
        assert_eq!(v["alerts"][0]["kind"], "rpo_breached", "open ones first, newest first");
        assert_eq!(v["recovery_points"][2]["breached"], true);
        assert_eq!(v["note"], RETENTION_NOTE);
        assert_eq!(json_unreachable("http://c", "refused")["catcher"]["reachable"], false);
    }

    #[test]
    fn human_report_has_every_section_and_the_check() {
        let (fleet, now) = fixture();
        let text = human(&fleet, "http://c", now, 100);
        for title in [
            "== Overview ==",
            "== Packages ==",
            "== Clients ==",
            "== Rules ==",
            "== Projections ==",
            "== Journal ==",
            "== Alerts ==",
        ] {
            assert!(text.contains(title), "{title} missing:\n{text}");
        }
        assert!(text.contains(RETENTION_NOTE));
        assert!(
            text.ends_with(
                "check: FAILED (1 failed packages, 1 clients stopped for safety, 2 open alerts, 1 RPOs breached)\n"
            ),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 100), "fits the width:\n{text}");
    }
}
