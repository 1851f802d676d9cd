//! Protected retention: a change that would delete data sooner is held as a pending change for
//! the protection delay; any operator may cancel it; when due it applies (or fails, changing
//! nothing). Expiry also keeps what any rule set in force within the delay would keep
//! (`floor_keeps`), so a hostile change cannot race the delay.

use super::Op;
use super::policy::{RuleChange, apply_rules};
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::{Held, RuleSet};
use crate::rules::{PendingChange, PendingKind, PendingState};

/// Holds `kind` for the protection delay; journals it.
pub(super) async fn hold(u: &mut Unit<'_>, kind: PendingKind, reason: &str, actor: &str) -> Result<PendingChange> {
    let change = PendingChange {
        change_id: u.next_pending_id().await?,
        kind,
        state: PendingState::Pending,
        requested_by: actor.to_owned(),
        reason: reason.to_owned(),
        created_at: u.now,
        effective_at: u.now.saturating_add(u.protection_ms),
        resolved_at: None,
        resolved_by: String::new(),
        outcome: String::new(),
    };
    journal(u, &change, EventType::PendingChangeCreated, actor);
    u.put_pending_change(change.clone());
    Ok(change)
}

/// Ends the open rule changes of `types`: a later word on a rule set replaces an earlier one
/// still waiting.
pub(super) async fn supersede_rules(u: &mut Unit<'_>, types: &[PackageType], actor: &str) -> Result<()> {
    for mut c in u.open_pending().await? {
        let PendingKind::RuleSet { after, .. } = &c.kind else { continue };
        if !types.contains(&after.package_type) {
            continue;
        }
        resolve(&mut c, PendingState::Superseded, u.now, "catcher", &format!("replaced by a later change by {actor}"));
        journal(u, &c, EventType::PendingChangeCancelled, "catcher");
        u.put_pending_change(c);
    }
    Ok(())
}

fn resolve(c: &mut PendingChange, state: PendingState, at: Millis, by: &str, outcome: &str) {
    c.state = state;
    c.resolved_at = Some(at);
    c.resolved_by = by.to_owned();
    c.outcome = outcome.to_owned();
}

fn journal(u: &mut Unit<'_>, c: &PendingChange, event: EventType, actor: &str) {
    let (what, source_id, package_id) = match &c.kind {
        PendingKind::RuleSet { after, shortened, origin, .. } => (
            serde_json::json!({"package_type": after.package_type, "shortened": shortened, "origin": origin}),
            String::new(),
            String::new(),
        ),
        PendingKind::PackageDeletion { package_id, source_id, path } => {
            (serde_json::json!({"package_id": package_id, "path": path}), source_id.clone(), package_id.clone())
        }
    };
    let details = serde_json::json!({
        "change_id": c.change_id,
        "kind": c.kind.name(),
        "change": what,
        "requested_by": c.requested_by,
        "reason": c.reason,
        "effective_at": c.effective_at,
        "outcome": c.outcome,
    });
    u.journal(JournalEntry {
        source_id,
        package_id,
        status_before: if event == EventType::PendingChangeCreated { String::new() } else { "pending".to_owned() },
        status_after: c.state.as_str().to_owned(),
        details_json: details.to_string(),
        ..JournalEntry::new(event, actor)
    });
}

/// An operator cancels an open pending change.
#[derive(Debug)]
pub struct CancelPending {
    pub change_id: u64,
    pub reason: String,
    pub actor: String,
}

impl Op for CancelPending {
    type Output = PendingChange;

    async fn apply(self, u: &mut Unit<'_>) -> Result<PendingChange> {
        let mut c = u
            .pending_change(self.change_id)
            .await?
            .ok_or_else(|| Error::not_found("pending change", self.change_id.to_string()))?;
        if !c.is_open() {
            return Err(Error::FailedPrecondition(format!(
                "change_id: pending change {} is already {}",
                c.change_id,
                c.state.as_str()
            )));
        }
        let outcome = if self.reason.is_empty() { "cancelled".to_owned() } else { self.reason };
        resolve(&mut c, PendingState::Cancelled, u.now, &self.actor, &outcome);
        journal(u, &c, EventType::PendingChangeCancelled, &self.actor);
        u.put_pending_change(c.clone());
        Ok(c)
    }
}

/// What the due pending changes did.
#[derive(Debug, Default)]
pub struct DueOutcome {
    /// The changes resolved (applied or failed).
    pub resolved: Vec<PendingChange>,
    /// Every rule set as it is now, when a rule change applied (agents keep a copy).
    pub rule_sets: Option<Vec<RuleSet>>,
    /// When the next open change is due.
    pub next_due: Option<Millis>,
}

/// Applies the pending changes whose delay is over.
#[derive(Debug)]
pub struct ApplyDue;

impl Op for ApplyDue {
    type Output = DueOutcome;

    async fn apply(self, u: &mut Unit<'_>) -> Result<DueOutcome> {
        let mut out = DueOutcome::default();
        for mut c in u.open_pending().await? {
            if c.effective_at > u.now {
                out.next_due = Some(out.next_due.map_or(c.effective_at, |t: Millis| t.min(c.effective_at)));
                continue;
            }
            // Each change applies whole or not at all; a refused one changes nothing.
            let mark = u.mark();
            let result = apply_one(u, &c).await;
            u.settle(mark, result.is_ok());
            match result {
                Ok(Applied::Later(why)) => {
                    // Still open: looked at again after a while (copies being deleted).
                    tracing::debug!(change = c.change_id, why, "pending change not done yet");
                    c.effective_at = u.now.saturating_add(RECHECK_MS);
                    out.next_due = Some(out.next_due.map_or(c.effective_at, |t: Millis| t.min(c.effective_at)));
                    u.put_pending_change(c);
                    continue;
                }
                Ok(Applied::Done(rules)) => {
                    resolve(&mut c, PendingState::Applied, u.now, "catcher", "");
                    journal(u, &c, EventType::PendingChangeApplied, "catcher");
                    if rules.is_some() {
                        out.rule_sets = rules;
                    }
                }
                Err(e) if e.is_client_error() => {
                    resolve(&mut c, PendingState::Failed, u.now, "catcher", &e.to_string());
                    journal(u, &c, EventType::PendingChangeFailed, "catcher");
                }
                Err(e) => return Err(e),
            }
            u.put_pending_change(c.clone());
            out.resolved.push(c);
        }
        Ok(out)
    }
}

/// How often an open change that is not done yet (copies being deleted) is looked at again.
const RECHECK_MS: Millis = 10_000;

/// What applying a due change did.
enum Applied {
    /// Done; the rule sets now in force when it changed rules.
    Done(Option<Vec<RuleSet>>),
    /// Under way, not done yet (and why).
    Later(String),
}

/// Applies one due change.
async fn apply_one(u: &mut Unit<'_>, c: &PendingChange) -> Result<Applied> {
    match &c.kind {
        PendingKind::RuleSet { after, .. } => {
            let reason = format!("pending change {} ({})", c.change_id, c.reason);
            let change = RuleChange::Pending(c.change_id);
            let out = apply_rules(u, vec![after.clone()], &reason, change, &c.requested_by, c.created_at).await?;
            Ok(Applied::Done(Some(out.rule_sets)))
        }
        PendingKind::PackageDeletion { package_id, .. } => {
            match super::deletion::delete_due(u, package_id, &c.reason, &c.requested_by).await? {
                super::deletion::Deletion::Done => Ok(Applied::Done(None)),
                super::deletion::Deletion::Waiting(why) => Ok(Applied::Later(why)),
            }
        }
    }
}

/// Whether a rule set in force within the protection delay would still keep `p`, which the
/// current rules expire now; if so it is kept until then (or until the window has moved on)
/// and the reason is journaled.
pub(super) async fn floor_keeps(u: &mut Unit<'_>, p: &mut Package, current: &RuleSet) -> Result<bool> {
    if u.protection_ms == 0 {
        return Ok(false);
    }
    let hold = u.hold(&p.package_id).await?;
    let born = p.completed_at.unwrap_or(p.created_at);
    let recheck = u.now.saturating_add(u.protection_ms);
    let mut until: Option<Millis> = None;
    for rs in u.floor_rules(p.package_type).await? {
        if &rs == current {
            continue;
        }
        // A route's whole length from completion: the waits, or a cache package's ttl.
        let route = match rs.cache_ttl_secs {
            Some(ttl) => Some(i64::try_from(ttl).unwrap_or(i64::MAX / 1000).saturating_mul(1000)),
            None => rs.version_retention_ms(),
        };
        let keep = match route {
            // Kept forever under it: look again once it has left the window.
            None => recheck,
            Some(route) => {
                let by_route = born.saturating_add(route);
                match rs.held(hold.as_ref(), u.now) {
                    Held::No => by_route,
                    Held::Until(t) => by_route.max(t),
                    Held::Forever => recheck,
                }
            }
        };
        if keep > u.now {
            until = Some(until.map_or(keep, |t: Millis| t.max(keep)));
        }
    }
    let Some(until) = until else { return Ok(false) };
    let until = until.min(recheck);
    p.next_transition_at = Some(until);
    let tier = p.tier.map_or("", Tier::as_str);
    u.journal(JournalEntry {
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: tier.to_owned(),
        status_after: tier.to_owned(),
        details_json: serde_json::json!({
            "reason": "a rule set in force within the protection delay still keeps it",
            "until": until,
        })
        .to_string(),
        ..JournalEntry::new(EventType::PackageRetained, "catcher")
    });
    Ok(true)
}
