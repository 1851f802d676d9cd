//! Tier moves and expiry that move real bytes, when stations are configured.
//!
//! The scheduler's due packages come here first. If the package's copies sit on stations the
//! catcher knows and the next tier has stations, a connected agent with the `mover` capability
//! gets one MOVE command per destination station; only when every destination reports a
//! verified copy (its sha256 measured there) does the package change tier, and only then are
//! the old copies deleted (unless the rule set replicates to all tiers). Expiry deletes every
//! copy first and marks the package expired last. A package is never left without a verified
//! copy, and a failed hop is retried with backoff while the package stays where it was.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::unit::Unit;
use crate::domain::*;
use crate::error::Result;
use crate::rules::{Next, RuleSet};
use crate::store::convert::{command_active, command_from, station_from};
use crate::store::entity::{command, station};

/// How long before a package with a move in flight is looked at again (to re-assign the move
/// if its mover went away).
const RECHECK_MS: Millis = 30_000;
/// Retry backoff for failed hops: 5 s doubling, capped at 10 minutes.
fn backoff_ms(retries: u32) -> Millis {
    (5_000i64 << retries.min(7)).min(600_000)
}

async fn stations(u: &Unit<'_>) -> Result<Vec<Station>> {
    station::Entity::find().all(u.txn).await?.into_iter().map(station_from).collect()
}

/// Open MOVE/EXPIRE commands of a package.
async fn open_commands(u: &Unit<'_>, package_id: &str) -> Result<Vec<Command>> {
    let open = [CommandState::Pending.as_str(), CommandState::Leased.as_str()];
    let kinds = [CommandKind::Move.as_str(), CommandKind::Expire.as_str()];
    command::Entity::find()
        .filter(command::Column::PackageId.eq(package_id))
        .filter(command::Column::State.is_in(open))
        .filter(command::Column::Kind.is_in(kinds))
        .all(u.txn)
        .await?
        .into_iter()
        .map(command_from)
        .collect()
}

/// A connected mover, spread over packages by id.
async fn pick_mover(u: &mut Unit<'_>, package_id: &str) -> Result<Option<String>> {
    use crate::store::entity::source;
    let mut movers: Vec<String> = source::Entity::find()
        .filter(source::Column::Connected.eq(true))
        .filter(source::Column::Capabilities.contains(Capability::Mover.as_str()))
        .all(u.txn)
        .await?
        .into_iter()
        .map(|s| s.source_id)
        .collect();
    movers.sort();
    if movers.is_empty() {
        return Ok(None);
    }
    let spread = package_id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    Ok(Some(movers.swap_remove(spread % movers.len())))
}

async fn connected(u: &mut Unit<'_>, source_id: &str) -> Result<bool> {
    Ok(u.source(source_id).await?.is_some_and(|s| s.connected))
}

fn new_command(
    u: &Unit<'_>,
    mover: &str,
    kind: CommandKind,
    package_id: &str,
    from: &str,
    to: &str,
    args: serde_json::Value,
) -> Command {
    Command {
        command_id: uuid::Uuid::now_v7().to_string(),
        source_id: mover.to_owned(),
        kind,
        package_id: package_id.to_owned(),
        from_station_id: from.to_owned(),
        to_station_id: to.to_owned(),
        args_json: args.to_string(),
        state: CommandState::Pending,
        attempts: 0,
        lease_until: None,
        created_at: u.now,
        finished_at: None,
        result_message: String::new(),
        result_details_json: String::new(),
    }
}

async fn insert(u: &mut Unit<'_>, c: Command) -> Result<()> {
    command::Entity::insert(command_active(&c)).exec_without_returning(u.txn).await?;
    // The dispatcher picks it up within its one-second tick.
    u.status_changed = true;
    Ok(())
}

fn journal(u: &mut Unit<'_>, p: &Package, event_type: &str, before: &str, after: &str, details: serde_json::Value) {
    u.journal(JournalEntry {
        actor: "scheduler".into(),
        event_type: event_type.into(),
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.into(),
        status_after: after.into(),
        details_json: details.to_string(),
        ..Default::default()
    });
}

/// Starts a due package's transition through stations. Returns false when there is nothing to
/// move physically (no known copies, or no station in the next tier): the caller then advances
/// the record alone.
pub async fn start(u: &mut Unit<'_>, p: &mut Package, rules: &RuleSet, from: Tier) -> Result<bool> {
    let all = stations(u).await?;
    if all.is_empty() {
        return Ok(false);
    }
    let tier_of = |id: &str| all.iter().find(|s| s.station_id == id).map(|s| s.tier);
    let placements = u.placements_of(&p.package_id).await?;
    let held: Vec<&Placement> = placements
        .iter()
        .filter(|pl| pl.status == PlacementStatus::Verified && tier_of(&pl.station_id).is_some())
        .collect();
    if held.is_empty() {
        return Ok(false);
    }
    let next = rules.after(from);
    let destinations: Vec<&Station> = match next {
        Next::Move(to) => all.iter().filter(|s| s.tier == to).collect(),
        _ => Vec::new(),
    };
    if matches!(next, Next::Stay) || (matches!(next, Next::Move(_)) && destinations.is_empty()) {
        return Ok(false);
    }
    // A move already under way waits for its result, unless its mover has gone.
    let mut in_flight = false;
    for mut c in open_commands(u, &p.package_id).await? {
        if connected(u, &c.source_id).await? {
            in_flight = true;
        } else {
            c.state = CommandState::Failed;
            c.finished_at = Some(u.now);
            c.result_message = "the mover disconnected; the work was given to another mover".into();
            command::Entity::update(command_active(&c)).exec(u.txn).await?;
        }
    }
    p.next_transition_at = Some(u.now + RECHECK_MS);
    if in_flight {
        return Ok(true);
    }
    let Some(mover) = pick_mover(u, &p.package_id).await? else {
        tracing::debug!(package = %p.package_id, "due, waiting for a connected mover");
        return Ok(true);
    };
    let args = serde_json::json!({ "owner": p.source_id, "sha256": p.sha256 });
    match next {
        Next::Move(to) => {
            // Copy from a copy in the current tier when there is one.
            let from_station =
                held.iter().find(|pl| tier_of(&pl.station_id) == Some(from)).unwrap_or(&held[0]).station_id.clone();
            let mut issued = Vec::new();
            for d in destinations {
                let done =
                    placements.iter().any(|pl| pl.station_id == d.station_id && pl.status == PlacementStatus::Verified);
                if done {
                    continue;
                }
                let c = new_command(
                    u,
                    &mover,
                    CommandKind::Move,
                    &p.package_id,
                    &from_station,
                    &d.station_id,
                    args.clone(),
                );
                insert(u, c).await?;
                u.put_placement(Placement {
                    package_id: p.package_id.clone(),
                    station_id: d.station_id.clone(),
                    status: PlacementStatus::InProgress,
                    verified_sha256: String::new(),
                    verified_at: None,
                    error: String::new(),
                    updated_at: u.now,
                });
                issued.push(d.station_id.clone());
            }
            if issued.is_empty() {
                // Every destination already holds a verified copy (an earlier run got that far).
                advance(u, p, rules, to, &mover).await?;
            } else {
                let details = serde_json::json!({ "mover": mover, "from": from_station, "to": issued });
                journal(u, p, "package.move_started", from.as_str(), to.as_str(), details);
            }
        }
        Next::Expire => {
            let mut args = args;
            args["purpose"] = "expire".into();
            for pl in &held {
                let c = new_command(u, &mover, CommandKind::Expire, &p.package_id, &pl.station_id, "", args.clone());
                insert(u, c).await?;
            }
            let stations: Vec<&str> = held.iter().map(|pl| pl.station_id.as_str()).collect();
            journal(
                u,
                p,
                "package.expiry_started",
                from.as_str(),
                "expired",
                serde_json::json!({ "mover": mover, "stations": stations }),
            );
        }
        Next::Stay => unreachable!("handled above"),
    }
    Ok(true)
}

/// The package enters `to`; its copies outside `to` are deleted unless the rules keep a copy in
/// every tier.
async fn advance(u: &mut Unit<'_>, p: &mut Package, rules: &RuleSet, to: Tier, mover: &str) -> Result<()> {
    let from = p.tier;
    p.tier = Some(to);
    p.tier_entered_at = Some(u.now);
    p.next_transition_at = rules.due_at(to, u.now);
    p.last_error.clear();
    let details = serde_json::json!({ "from": from.map(|t| t.as_str()), "mode": "moved" });
    journal(u, p, "package.tier_changed", from.map_or("", |t| t.as_str()), to.as_str(), details);
    if rules.replicate_to_all {
        return Ok(());
    }
    let all = stations(u).await?;
    let args = serde_json::json!({ "owner": p.source_id, "sha256": p.sha256, "purpose": "cleanup" });
    for pl in u.placements_of(&p.package_id).await? {
        let elsewhere = all.iter().any(|s| s.station_id == pl.station_id && s.tier != to);
        if pl.status == PlacementStatus::Verified && elsewhere {
            let c = new_command(u, mover, CommandKind::Expire, &p.package_id, &pl.station_id, "", args.clone());
            insert(u, c).await?;
        }
    }
    Ok(())
}

/// A mover answered a MOVE or EXPIRE.
pub async fn on_result(u: &mut Unit<'_>, c: &Command, success: bool, message: &str, details: &str) -> Result<()> {
    let Some(mut p) = u.package(&c.package_id).await? else { return Ok(()) };
    if p.status == PackageStatus::Expired {
        return Ok(());
    }
    let rules = u.rule(p.package_type).await?;
    let all = stations(u).await?;
    let details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let args: serde_json::Value = serde_json::from_str(&c.args_json).unwrap_or_default();
    let placement = |station: &str, status, sha: &str, error: &str, now| Placement {
        package_id: c.package_id.clone(),
        station_id: station.to_owned(),
        status,
        verified_sha256: sha.to_owned(),
        verified_at: (status == PlacementStatus::Verified).then_some(now),
        error: error.to_owned(),
        updated_at: now,
    };
    match c.kind {
        CommandKind::Move => {
            let Some(to) = all.iter().find(|s| s.station_id == c.to_station_id).map(|s| s.tier) else { return Ok(()) };
            let verified = details["verified_sha256"].as_str().unwrap_or_default();
            if success && verified == p.sha256 {
                u.put_placement(placement(&c.to_station_id, PlacementStatus::Verified, verified, "", u.now));
                let placements = u.placements_of(&p.package_id).await?;
                let complete = all.iter().filter(|s| s.tier == to).all(|s| {
                    placements.iter().any(|pl| pl.station_id == s.station_id && pl.status == PlacementStatus::Verified)
                });
                if complete && p.tier != Some(to) {
                    advance(u, &mut p, &rules, to, &c.source_id).await?;
                }
            } else {
                let error = if success {
                    format!("the mover reported sha256 {verified:?}, expected {}", p.sha256)
                } else {
                    message.to_owned()
                };
                u.put_placement(placement(&c.to_station_id, PlacementStatus::Failed, "", &error, u.now));
                if args["purpose"] == "resend" {
                    // The package's own plan is untouched; the next drill finds the copy still failed.
                    journal(
                        u,
                        &p,
                        "package.resend_failed",
                        &c.to_station_id,
                        &c.to_station_id,
                        serde_json::json!({ "error": error }),
                    );
                    u.put_package(p);
                    return Ok(());
                }
                p.retry_count += 1;
                p.last_error = format!("move to {}: {error}", c.to_station_id);
                p.next_transition_at = Some(u.now + backoff_ms(p.retry_count));
                let details = serde_json::json!({ "to": c.to_station_id, "retry_in_ms": backoff_ms(p.retry_count) });
                u.journal(JournalEntry {
                    actor: "scheduler".into(),
                    event_type: "package.move_failed".into(),
                    source_id: p.source_id.clone(),
                    package_id: p.package_id.clone(),
                    station_id: c.to_station_id.clone(),
                    error,
                    details_json: details.to_string(),
                    ..Default::default()
                });
            }
        }
        CommandKind::Expire => {
            let expiring = args["purpose"] == "expire";
            if success {
                u.put_placement(placement(&c.from_station_id, PlacementStatus::Deleted, "", "", u.now));
                let left =
                    u.placements_of(&p.package_id).await?.into_iter().any(|pl| pl.status == PlacementStatus::Verified);
                if expiring && !left {
                    let before = p.tier.map_or("", |t| t.as_str()).to_owned();
                    p.status = PackageStatus::Expired;
                    p.tier = None;
                    p.next_transition_at = None;
                    p.expired_at = Some(u.now);
                    journal(u, &p, "package.expired", &before, "expired", serde_json::json!({ "mode": "deleted" }));
                }
            } else {
                p.last_error = format!("delete from {}: {message}", c.from_station_id);
                if expiring {
                    p.retry_count += 1;
                    p.next_transition_at = Some(u.now + backoff_ms(p.retry_count));
                }
                u.journal(JournalEntry {
                    actor: "scheduler".into(),
                    event_type: "package.delete_failed".into(),
                    source_id: p.source_id.clone(),
                    package_id: p.package_id.clone(),
                    station_id: c.from_station_id.clone(),
                    error: message.to_owned(),
                    ..Default::default()
                });
            }
        }
        _ => return Ok(()),
    }
    u.put_package(p);
    Ok(())
}

/// The packages a restore drill restores: up to `sample` completed packages of `tier` (any tier
/// when None), newest first, each with a verified copy on a station of its current tier.
pub async fn drill_plan(u: &mut Unit<'_>, tier: Option<Tier>, sample: u32) -> Result<Vec<serde_json::Value>> {
    use crate::store::entity::package;
    use sea_orm::{QueryOrder, QuerySelect};
    let all = stations(u).await?;
    let mut q = package::Entity::find().filter(package::Column::Status.eq(PackageStatus::Completed.as_str()));
    if let Some(t) = tier {
        q = q.filter(package::Column::Tier.eq(t.as_str()));
    }
    let candidates = q.order_by_desc(package::Column::PackageId).limit(u64::from(sample) * 8).all(u.txn).await?;
    let mut plan = Vec::new();
    for row in candidates {
        if plan.len() >= sample as usize {
            break;
        }
        let in_tier = |station: &str| all.iter().any(|s| s.station_id == station && s.tier.as_str() == row.tier);
        let copy = u
            .placements_of(&row.package_id)
            .await?
            .into_iter()
            .find(|pl| pl.status == PlacementStatus::Verified && in_tier(&pl.station_id));
        if let Some(pl) = copy {
            plan.push(serde_json::json!({
                "package_id": row.package_id,
                "owner": row.source_id,
                "sha256": row.sha256,
                "station_id": pl.station_id,
            }));
        }
    }
    Ok(plan)
}

/// A scheduled drill: the next tier in rotation that has something to restore, done by a mover.
/// Returns 1 when a drill was queued.
pub async fn schedule_drill(u: &mut Unit<'_>, sample: u32) -> Result<u64> {
    let Some(mover) = pick_mover(u, "drill").await? else { return Ok(0) };
    let done = command::Entity::find()
        .filter(command::Column::Kind.eq(CommandKind::RestoreDrill.as_str()))
        .count(u.txn)
        .await?;
    for i in 0..Tier::ALL.len() {
        let tier = Tier::ALL[(done as usize + i) % Tier::ALL.len()];
        let plan = drill_plan(u, Some(tier), sample).await?;
        if plan.is_empty() {
            continue;
        }
        let args = serde_json::json!({ "tier": tier.as_str(), "packages": plan, "scheduled": true });
        let c = new_command(u, &mover, CommandKind::RestoreDrill, "", "", "", args);
        insert(u, c).await?;
        return Ok(1);
    }
    Ok(0)
}

/// A drill's outcome: journaled; each failed copy is marked failed and re-sent from another
/// verified copy when there is one.
pub async fn on_drill_result(u: &mut Unit<'_>, c: &Command, success: bool, message: &str, details: &str) -> Result<()> {
    let details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let args: serde_json::Value = serde_json::from_str(&c.args_json).unwrap_or_default();
    let checks = details["checks"].as_array().cloned().unwrap_or_default();
    u.journal(JournalEntry {
        actor: format!("agent:{}", c.source_id),
        event_type: if success { "restore_drill.passed" } else { "restore_drill.failed" }.into(),
        source_id: c.source_id.clone(),
        status_after: if success { "passed" } else { "failed" }.into(),
        error: if success { String::new() } else { message.to_owned() },
        details_json: serde_json::json!({ "tier": args["tier"], "checked": checks.len(), "command_id": c.command_id })
            .to_string(),
        ..Default::default()
    });
    let is_mover = u.source(&c.source_id).await?.is_some_and(|s| s.capabilities.contains(&Capability::Mover));
    for check in checks.iter().filter(|c| c["ok"] == false) {
        let (Some(package_id), Some(station_id)) = (check["package_id"].as_str(), check["station_id"].as_str()) else {
            continue;
        };
        let Some(p) = u.package(package_id).await? else { continue };
        let problem = check["problem"].as_str().unwrap_or("restore drill failed");
        let placements = u.placements_of(package_id).await?;
        if !placements.iter().any(|pl| pl.station_id == station_id) {
            continue;
        }
        u.put_placement(Placement {
            package_id: package_id.to_owned(),
            station_id: station_id.to_owned(),
            status: PlacementStatus::Failed,
            verified_sha256: String::new(),
            verified_at: None,
            error: format!("restore drill: {problem}"),
            updated_at: u.now,
        });
        let other = placements.iter().find(|pl| pl.station_id != station_id && pl.status == PlacementStatus::Verified);
        if let (true, Some(from)) = (is_mover, other) {
            let args = serde_json::json!({ "owner": p.source_id, "sha256": p.sha256, "purpose": "resend" });
            let resend =
                new_command(u, &c.source_id, CommandKind::Move, &p.package_id, &from.station_id, station_id, args);
            insert(u, resend).await?;
            journal(
                u,
                &p,
                "package.resend_started",
                station_id,
                station_id,
                serde_json::json!({ "from": from.station_id }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 10_000);
        assert_eq!(backoff_ms(3), 40_000);
        assert_eq!(backoff_ms(50), 600_000);
    }
}
