//! Policy: rule sets (with the re-plan of their packages), presets, config snapshots, and the
//! first start's rules.

use sha2::{Digest, Sha256};

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::RuleSet;
use crate::rules::{PendingChange, PendingKind};

/// Why rule sets change; decides the journal event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleChange {
    /// A person edited a rule set.
    Update,
    /// A person applied a named preset.
    Preset(String),
    /// A person restored a config snapshot.
    Restore(u64),
    /// A pending change (asked for earlier, held for the protection delay) took effect.
    Pending(u64),
}

impl RuleChange {
    /// What asked for it, as pending changes show it.
    pub fn origin(&self) -> String {
        match self {
            Self::Update => "update".to_owned(),
            Self::Preset(name) => format!("preset {name}"),
            Self::Restore(id) => format!("snapshot {id}"),
            Self::Pending(id) => format!("pending change {id}"),
        }
    }
}

/// Replaces rule sets, re-plans their packages, snapshots the config and journals the change.
#[derive(Debug)]
pub struct SetRules {
    pub rule_sets: Vec<RuleSet>,
    pub reason: String,
    pub change: RuleChange,
    /// Who asked (the journal's and the snapshot event's actor).
    pub actor: String,
}

/// Outcome of a rule change.
#[derive(Debug, Clone)]
pub struct RulesOutcome {
    /// Every rule set as it is now, sorted by type.
    pub rule_sets: Vec<RuleSet>,
    /// The snapshot recording what applied at once; 0 when nothing did.
    pub snapshot_id: u64,
    /// Stored packages whose plan was recomputed.
    pub replanned: u64,
    /// The rule sets that would delete data sooner, held for the protection delay.
    pub pending: Vec<PendingChange>,
}

impl Op for SetRules {
    type Output = RulesOutcome;

    async fn apply(self, u: &mut Unit<'_>) -> Result<RulesOutcome> {
        set_rules(u, self.rule_sets, &self.reason, self.change, &self.actor).await
    }
}

/// Restores the rules of a stored config snapshot.
#[derive(Debug)]
pub struct RestoreSnapshot {
    pub snapshot_id: u64,
    pub reason: String,
    pub actor: String,
}

impl Op for RestoreSnapshot {
    type Output = RulesOutcome;

    async fn apply(self, u: &mut Unit<'_>) -> Result<RulesOutcome> {
        let id = self.snapshot_id;
        let snap = u.stored_snapshot(id).await?.ok_or_else(|| Error::not_found("snapshot", id.to_string()))?;
        let (sets, _stations) = parse_config(&snap.config_json)?;
        let reason = if self.reason.is_empty() { format!("restore of snapshot {id}") } else { self.reason };
        set_rules(u, sets, &reason, RuleChange::Restore(id), &self.actor).await
    }
}

/// Writes a config snapshot of the current rules and stations.
#[derive(Debug)]
pub struct CreateSnapshot {
    pub reason: String,
    pub actor: String,
}

impl Op for CreateSnapshot {
    type Output = ConfigSnapshot;

    async fn apply(self, u: &mut Unit<'_>) -> Result<ConfigSnapshot> {
        snapshot(u, &self.reason, &self.actor).await
    }
}

/// Start-up housekeeping: the first start's rules and snapshot; no agent is connected yet,
/// whatever the database says from before a crash.
#[derive(Debug)]
pub struct Bootstrap {
    pub preset: String,
}

impl Op for Bootstrap {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        u.reset_connections().await?;
        if !u.rules().await?.is_empty() {
            return Ok(());
        }
        let p = crate::rules::preset(&self.preset).ok_or_else(|| Error::invalid("initial_preset", "unknown preset"))?;
        u.put_rules(&p.rule_sets).await?;
        for rs in &p.rule_sets {
            u.record_rules(rs, u.now);
        }
        snapshot(u, &format!("initial config (preset {})", self.preset), "catcher").await?;
        // Packages imported before the first start (restores, bulk loads) are summarised once,
        // unless the importer already did (the counters are then present).
        if !u.has_counters().await? {
            u.recount();
        }
        Ok(())
    }
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

async fn snapshot(u: &mut Unit<'_>, reason: &str, actor: &str) -> Result<ConfigSnapshot> {
    let rules: Vec<RuleSet> = u.rules().await?.values().cloned().collect();
    let stations = u.stations().await?.to_vec();
    let config_json = canonical_config(&rules, &stations);
    let sha256 = hex::encode(Sha256::digest(config_json.as_bytes()));
    let snapshot_id = u.put_snapshot(u.now, reason, sha256.clone(), config_json.clone(), actor).await?;
    u.journal(JournalEntry {
        checksum: sha256.clone(),
        details_json: serde_json::json!({"snapshot_id": snapshot_id, "reason": reason}).to_string(),
        ..JournalEntry::new(EventType::ConfigSnapshot, actor)
    });
    Ok(ConfigSnapshot {
        snapshot_id,
        created_at: u.now,
        reason: reason.to_owned(),
        sha256,
        config_json,
        actor: actor.to_owned(),
    })
}

/// A rule change as asked for: rule sets that keep data at least as long apply at once;
/// those that would delete data sooner become pending changes (unless the protection delay is
/// 0). Whatever it touches supersedes the open pending changes of the same package types.
async fn set_rules(
    u: &mut Unit<'_>,
    sets: Vec<RuleSet>,
    reason: &str,
    change: RuleChange,
    actor: &str,
) -> Result<RulesOutcome> {
    for rs in &sets {
        rs.validate()?;
    }
    let current = u.rules().await?.clone();
    let (mut now, mut held) = (Vec::new(), Vec::new());
    for rs in sets {
        match current.get(&rs.package_type) {
            Some(before) if u.protection_ms > 0 && !rs.shortened_from(before).is_empty() => {
                held.push((before.clone(), rs));
            }
            _ => now.push(rs),
        }
    }
    let touched: Vec<PackageType> = now.iter().chain(held.iter().map(|(_, a)| a)).map(|r| r.package_type).collect();
    super::protection::supersede_rules(u, &touched, actor).await?;
    let mut pending = Vec::new();
    for (before, after) in held {
        let shortened = after.shortened_from(&before);
        let kind = PendingKind::RuleSet { before, after, shortened, origin: change.origin() };
        pending.push(super::protection::hold(u, kind, reason, actor).await?);
    }
    if now.is_empty() {
        let mut all: Vec<RuleSet> = current.into_values().collect();
        all.sort_by_key(|r| r.package_type);
        return Ok(RulesOutcome { rule_sets: all, snapshot_id: 0, replanned: 0, pending });
    }
    let mut out = apply_rules(u, now, reason, change, actor, u.now).await?;
    out.pending = pending;
    Ok(out)
}

/// Puts rule sets in force (asked for at `since`), re-plans their packages, snapshots the
/// config and journals the change.
pub(super) async fn apply_rules(
    u: &mut Unit<'_>,
    sets: Vec<RuleSet>,
    reason: &str,
    change: RuleChange,
    actor: &str,
    since: Millis,
) -> Result<RulesOutcome> {
    for rs in &sets {
        rs.validate()?;
    }
    let before = u.rules().await?.clone();
    u.put_rules(&sets).await?;
    let mut replanned = 0;
    for rs in &sets {
        u.record_rules(rs, since);
        if before.get(&rs.package_type) == Some(rs) {
            continue;
        }
        replanned += u.count_completed(rs.package_type).await?;
        u.replan_type(rs);
    }
    let snap = snapshot(u, reason, actor).await?;
    let (event, mut details) = match &change {
        RuleChange::Update => (EventType::RulesUpdated, serde_json::json!({})),
        RuleChange::Preset(name) => (EventType::RulesPresetApplied, serde_json::json!({ "preset": name })),
        RuleChange::Restore(id) => (EventType::ConfigRestored, serde_json::json!({ "restored_snapshot_id": id })),
        RuleChange::Pending(id) => (EventType::RulesUpdated, serde_json::json!({ "pending_change_id": id })),
    };
    details["snapshot_id"] = serde_json::json!(snap.snapshot_id);
    details["replanned_packages"] = serde_json::json!(replanned);
    details["package_types"] = serde_json::json!(sets.iter().map(|r| r.package_type).collect::<Vec<_>>());
    details["reason"] = serde_json::json!(reason);
    u.journal(JournalEntry {
        checksum: snap.sha256.clone(),
        details_json: details.to_string(),
        ..JournalEntry::new(event, actor)
    });
    let mut all: Vec<RuleSet> = u.rules().await?.values().cloned().collect();
    all.sort_by_key(|r| r.package_type);
    Ok(RulesOutcome { rule_sets: all, snapshot_id: snap.snapshot_id, replanned, pending: Vec::new() })
}
