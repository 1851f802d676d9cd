//! Tier moves and expiry, and restore drills.
//!
//! The scheduler's due packages come here. If a package's copies sit on stations the catcher
//! knows and the next tier has stations, a connected agent with the `mover` capability gets one
//! MOVE command per destination station; only when every destination reports a verified copy
//! (its sha256 measured there) does the package change tier, and only then are the old copies
//! deleted (unless the rule set replicates to all tiers). Expiry deletes every copy first and
//! marks the package expired last. A package is never left without a verified copy, and a
//! failed hop is retried with backoff while the package stays where it was. Without stations
//! (or for copies on stations the catcher does not know) tiers advance as metadata only.
//!
//! A batch of due packages is loaded in bulk first (packages, placements, open moves; stations
//! and movers once per batch), so a scheduler batch of a thousand costs a handful of queries.

use super::unit::Unit;
use super::{Op, commands::new_command};
use crate::domain::*;
use crate::error::Result;
use crate::rules::{Held, Next, RuleSet};
use crate::store::Due;

/// How long before a package with a move in flight is looked at again (to re-assign the move
/// if its mover went away).
const RECHECK_MS: Millis = 30_000;

/// Retry backoff for failed hops: 5 s doubling, capped at 10 minutes.
fn backoff_ms(retries: u32) -> Millis {
    let delay = edgebackup_common::backoff::exponential(
        retries.saturating_add(1),
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(600),
    );
    Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX)
}

/// Moves due packages on; answers how many were handled.
#[derive(Debug)]
pub struct Transitions(pub Vec<Due>);

impl Op for Transitions {
    type Output = u64;

    fn weight(&self) -> usize {
        self.0.len().max(1)
    }

    async fn apply(self, u: &mut Unit<'_>) -> Result<u64> {
        let ids: Vec<String> = self.0.iter().map(|d| d.package_id.clone()).collect();
        u.prefetch_holds(ids.iter().cloned()).await?;
        if !u.stations().await?.is_empty() {
            u.prefetch_placements(ids.iter().cloned()).await?;
            u.prefetch_open_moves(ids).await?;
        }
        let mut moved = 0;
        for d in self.0 {
            let Some(mut p) = u.package(&d.package_id).await? else { continue };
            // Re-check under the transaction: a rule change or a concurrent pass may have got there first.
            if p.status != PackageStatus::Completed
                || p.tier != Some(d.tier)
                || p.next_transition_at.is_none_or(|t| t > u.now)
            {
                continue;
            }
            let rules = u.rule(p.package_type).await?;
            if rules.after(d.tier) == Next::Expire
                && (retain(u, &mut p, &rules).await? || super::protection::floor_keeps(u, &mut p, &rules).await?)
            {
                u.put_package(p);
                moved += 1;
                continue;
            }
            if !start(u, &mut p, &rules, d.tier).await? {
                advance_metadata(u, &mut p, &rules, d.tier).await?;
            }
            u.put_package(p);
            moved += 1;
        }
        Ok(moved)
    }
}

/// Keeps a package its rules would expire while a version it holds is still needed: the
/// newest version of a present entry (for good, until a pass supersedes it: see
/// `catalog::wake`), or superseded versions within their retention (until then). Answers
/// whether it was kept.
async fn retain(u: &mut Unit<'_>, p: &mut Package, rules: &RuleSet) -> Result<bool> {
    let hold = u.hold(&p.package_id).await?;
    let live = hold.as_ref().map_or(0, |h| h.live_versions);
    match rules.held(hold.as_ref(), u.now) {
        Held::No => return Ok(false),
        Held::Forever => keep_for_good(u, p, live),
        Held::Until(t) => {
            p.next_transition_at = Some(t);
            let tier = p.tier.map_or("", Tier::as_str);
            let why = "holds superseded versions within their retention";
            let details = serde_json::json!({ "reason": why, "live_versions": live, "until": t });
            journal(u, p, EventType::PackageRetained, tier, tier, details);
        }
    }
    Ok(true)
}

/// Plans when a completed package that entered `tier` at `entered` leaves it. At the end of
/// its route a package still needed is not planned to expire at all: it is kept for good while
/// it holds a current version, or until its superseded versions' retention ends, so the
/// projections count only what will really expire (`retain` re-checks when it comes due).
pub(super) async fn plan_leaving(
    u: &mut Unit<'_>,
    p: &mut Package,
    rules: &RuleSet,
    tier: Tier,
    entered: Millis,
) -> Result<()> {
    p.next_transition_at = rules.due_at(tier, entered);
    let Some(due) = p.next_transition_at else { return Ok(()) };
    if !rules.ends_route(tier) {
        return Ok(());
    }
    let hold = u.hold(&p.package_id).await?;
    match rules.held(hold.as_ref(), u.now) {
        Held::No => {}
        Held::Until(t) => p.next_transition_at = Some(due.max(t)),
        Held::Forever => keep_for_good(u, p, hold.map_or(0, |h| h.live_versions)),
    }
    Ok(())
}

/// Keeps a package at the end of its route for good: it holds the newest version of entries
/// still present (`catalog::wake` brings it back once it holds none).
pub(super) fn keep_for_good(u: &mut Unit<'_>, p: &mut Package, live_versions: u64) {
    p.next_transition_at = None;
    let tier = p.tier.map_or("", Tier::as_str);
    let why = "holds the newest version of entries still present";
    let details = serde_json::json!({ "reason": why, "live_versions": live_versions, "until": None::<Millis> });
    journal(u, p, EventType::PackageRetained, tier, tier, details);
}

/// Moves a package on in the records alone (no stations to copy between).
async fn advance_metadata(u: &mut Unit<'_>, p: &mut Package, rules: &RuleSet, from: Tier) -> Result<()> {
    let (event, after) = match rules.after(from) {
        Next::Move(to) => {
            p.tier = Some(to);
            p.tier_entered_at = Some(u.now);
            (EventType::PackageTierChanged, to.as_str())
        }
        Next::Expire => {
            p.status = PackageStatus::Expired;
            p.tier = None;
            p.next_transition_at = None;
            p.expired_at = Some(u.now);
            for mut pl in u.placements_of(&p.package_id).await? {
                pl.status = PlacementStatus::Deleted;
                pl.updated_at = u.now;
                u.put_placement(pl);
            }
            (EventType::PackageExpired, PackageStatus::Expired.as_str())
        }
        Next::Stay => {
            p.next_transition_at = None;
            (EventType::PackageKeptForever, from.as_str())
        }
    };
    journal(u, p, event, from.as_str(), after, serde_json::json!({"from": from.as_str(), "mode": "metadata"}));
    if let Next::Move(to) = rules.after(from) {
        plan_leaving(u, p, rules, to, u.now).await?;
    }
    Ok(())
}

/// A connected mover, spread over packages by id.
pub(super) async fn pick_mover(u: &mut Unit<'_>, key: &str) -> Result<Option<String>> {
    let movers = u.movers().await?;
    if movers.is_empty() {
        return Ok(None);
    }
    let spread = key.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    Ok(Some(movers[spread % movers.len()].clone()))
}

pub(super) fn journal(
    u: &mut Unit<'_>,
    p: &Package,
    event: EventType,
    before: &str,
    after: &str,
    details: serde_json::Value,
) {
    u.journal(JournalEntry {
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.into(),
        status_after: after.into(),
        details_json: details.to_string(),
        ..JournalEntry::new(event, "scheduler")
    });
}

pub(super) fn placement(
    package_id: &str,
    station_id: &str,
    status: PlacementStatus,
    sha: &str,
    error: &str,
    now: Millis,
) -> Placement {
    Placement {
        package_id: package_id.to_owned(),
        station_id: station_id.to_owned(),
        status,
        verified_sha256: sha.to_owned(),
        verified_at: (status == PlacementStatus::Verified).then_some(now),
        error: error.to_owned(),
        updated_at: now,
    }
}

/// Starts a due package's transition through stations. Returns false when there is nothing to
/// move physically (no known copies, or no station in the next tier): the caller then advances
/// the record alone.
async fn start(u: &mut Unit<'_>, p: &mut Package, rules: &RuleSet, from: Tier) -> Result<bool> {
    let all = u.stations().await?.to_vec();
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
    for mut c in u.open_moves_of(&p.package_id).await? {
        if u.source(&c.source_id).await?.is_some_and(|s| s.connected) {
            in_flight = true;
        } else {
            c.state = CommandState::Failed;
            c.finished_at = Some(u.now);
            c.result_message = "the mover disconnected; the work was given to another mover".into();
            u.put_command(c);
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
                let args = CommandArgs::Move(MoveArgs {
                    from_station_id: from_station.clone(),
                    to_station_id: d.station_id.clone(),
                    owner: p.source_id.clone(),
                    sha256: p.sha256.clone(),
                    purpose: MovePurpose::TierMove,
                });
                let c = new_command(u, &mover, &p.package_id, args);
                u.put_command(c);
                let pending = placement(&p.package_id, &d.station_id, PlacementStatus::InProgress, "", "", u.now);
                u.put_placement(pending);
                issued.push(d.station_id.clone());
            }
            if issued.is_empty() {
                // Every destination already holds a verified copy (an earlier run got that far).
                advance(u, p, rules, to, &mover).await?;
            } else {
                let details = serde_json::json!({ "mover": mover, "from": from_station, "to": issued });
                journal(u, p, EventType::PackageMoveStarted, from.as_str(), to.as_str(), details);
            }
        }
        Next::Expire => {
            for pl in &held {
                let args = CommandArgs::Expire(ExpireArgs {
                    station_id: pl.station_id.clone(),
                    owner: p.source_id.clone(),
                    sha256: p.sha256.clone(),
                    purpose: ExpirePurpose::Expire,
                });
                let c = new_command(u, &mover, &p.package_id, args);
                u.put_command(c);
            }
            let stations: Vec<&str> = held.iter().map(|pl| pl.station_id.as_str()).collect();
            let details = serde_json::json!({ "mover": mover, "stations": stations });
            journal(u, p, EventType::PackageExpiryStarted, from.as_str(), "expired", details);
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
    p.last_error.clear();
    let details = serde_json::json!({ "from": from.map(Tier::as_str), "mode": "moved" });
    journal(u, p, EventType::PackageTierChanged, from.map_or("", Tier::as_str), to.as_str(), details);
    plan_leaving(u, p, rules, to, u.now).await?;
    if rules.replicate_to_all {
        return Ok(());
    }
    let all = u.stations().await?.to_vec();
    for pl in u.placements_of(&p.package_id).await? {
        let elsewhere = all.iter().any(|s| s.station_id == pl.station_id && s.tier != to);
        if pl.status == PlacementStatus::Verified && elsewhere {
            let args = CommandArgs::Expire(ExpireArgs {
                station_id: pl.station_id.clone(),
                owner: p.source_id.clone(),
                sha256: p.sha256.clone(),
                purpose: ExpirePurpose::Cleanup,
            });
            let c = new_command(u, mover, &p.package_id, args);
            u.put_command(c);
        }
    }
    Ok(())
}

/// A mover answered a MOVE or EXPIRE.
pub(super) async fn on_result(u: &mut Unit<'_>, c: &Command, success: bool) -> Result<()> {
    let Some(mut p) = u.package(&c.package_id).await? else { return Ok(()) };
    if p.status == PackageStatus::Expired {
        return Ok(());
    }
    let rules = u.rule(p.package_type).await?;
    let now = u.now;
    match &c.args {
        CommandArgs::Move(m) => {
            let all = u.stations().await?.to_vec();
            let Some(to) = all.iter().find(|s| s.station_id == m.to_station_id).map(|s| s.tier) else {
                return Ok(());
            };
            let verified = match &c.result {
                Some(CommandDetails::Move(r)) => r.verified_sha256.as_str(),
                _ => "",
            };
            if success && verified == p.sha256 {
                let copy = placement(&p.package_id, &m.to_station_id, PlacementStatus::Verified, verified, "", now);
                u.put_placement(copy);
                let placements = u.placements_of(&p.package_id).await?;
                let complete = all.iter().filter(|s| s.tier == to).all(|s| {
                    placements.iter().any(|pl| pl.station_id == s.station_id && pl.status == PlacementStatus::Verified)
                });
                if complete && p.tier != Some(to) && m.purpose == MovePurpose::TierMove {
                    advance(u, &mut p, &rules, to, &c.source_id).await?;
                }
            } else {
                let error = if success {
                    format!("the mover reported sha256 {verified:?}, expected {}", p.sha256)
                } else {
                    c.result_message.clone()
                };
                let failed = placement(&p.package_id, &m.to_station_id, PlacementStatus::Failed, "", &error, now);
                u.put_placement(failed);
                if m.purpose == MovePurpose::Resend {
                    // The package's own plan is untouched; the next drill finds the copy still failed.
                    let details = serde_json::json!({ "error": error });
                    journal(u, &p, EventType::PackageResendFailed, &m.to_station_id, &m.to_station_id, details);
                    u.put_package(p);
                    return Ok(());
                }
                p.retry_count += 1;
                p.last_error = format!("move to {}: {error}", m.to_station_id);
                p.next_transition_at = Some(now + backoff_ms(p.retry_count));
                let details = serde_json::json!({ "to": m.to_station_id, "retry_in_ms": backoff_ms(p.retry_count) });
                u.journal(JournalEntry {
                    source_id: p.source_id.clone(),
                    package_id: p.package_id.clone(),
                    station_id: m.to_station_id.clone(),
                    error,
                    details_json: details.to_string(),
                    ..JournalEntry::new(EventType::PackageMoveFailed, "scheduler")
                });
            }
        }
        CommandArgs::Expire(x) => {
            let expiring = x.purpose == ExpirePurpose::Expire;
            if success {
                u.put_placement(placement(&p.package_id, &x.station_id, PlacementStatus::Deleted, "", "", now));
                let left =
                    u.placements_of(&p.package_id).await?.into_iter().any(|pl| pl.status == PlacementStatus::Verified);
                if expiring && !left {
                    let before = p.tier.map_or("", Tier::as_str);
                    p.status = PackageStatus::Expired;
                    p.tier = None;
                    p.next_transition_at = None;
                    p.expired_at = Some(now);
                    journal(
                        u,
                        &p,
                        EventType::PackageExpired,
                        before,
                        "expired",
                        serde_json::json!({ "mode": "deleted" }),
                    );
                }
            } else {
                p.last_error = format!("delete from {}: {}", x.station_id, c.result_message);
                if expiring {
                    p.retry_count += 1;
                    p.next_transition_at = Some(now + backoff_ms(p.retry_count));
                }
                u.journal(JournalEntry {
                    source_id: p.source_id.clone(),
                    package_id: p.package_id.clone(),
                    station_id: x.station_id.clone(),
                    error: c.result_message.clone(),
                    ..JournalEntry::new(EventType::PackageDeleteFailed, "scheduler")
                });
            }
        }
        _ => return Ok(()),
    }
    u.put_package(p);
    Ok(())
}

/// The copies a restore drill restores: up to `sample` completed packages of `tier` (any tier
/// when None), newest first, each with a verified copy on a station of its current tier.
pub(super) async fn drill_plan(u: &mut Unit<'_>, tier: Option<Tier>, sample: u32) -> Result<Vec<DrillTarget>> {
    let all = u.stations().await?.to_vec();
    let candidates = u.recent_completed(tier, u64::from(sample) * 8).await?;
    let mut plan = Vec::new();
    for p in candidates {
        if plan.len() >= sample as usize {
            break;
        }
        let in_tier = |station: &str| all.iter().any(|s| s.station_id == station && Some(s.tier) == p.tier);
        let copy = u
            .placements_of(&p.package_id)
            .await?
            .into_iter()
            .find(|pl| pl.status == PlacementStatus::Verified && in_tier(&pl.station_id));
        if let Some(pl) = copy {
            plan.push(DrillTarget {
                package_id: p.package_id,
                owner: p.source_id,
                sha256: p.sha256,
                station_id: pl.station_id,
            });
        }
    }
    Ok(plan)
}

/// A scheduled drill: the next tier in rotation that has something to restore, done by a
/// mover. Answers whether a drill was queued.
#[derive(Debug)]
pub struct ScheduleDrill {
    pub sample: u32,
}

impl Op for ScheduleDrill {
    type Output = bool;

    async fn apply(self, u: &mut Unit<'_>) -> Result<bool> {
        let Some(mover) = pick_mover(u, "drill").await? else { return Ok(false) };
        let done = u.drill_count().await?;
        let sample = self.sample.clamp(1, MAX_DRILL_SAMPLE);
        for i in 0..Tier::ALL.len() {
            let tier = Tier::ALL[(done as usize + i) % Tier::ALL.len()];
            let targets = drill_plan(u, Some(tier), sample).await?;
            if targets.is_empty() {
                continue;
            }
            let args = CommandArgs::RestoreDrill(DrillArgs {
                scope: DrillScope::Tier(tier),
                sample,
                targets,
                scheduled: true,
            });
            let c = new_command(u, &mover, "", args);
            u.put_command(c);
            return Ok(true);
        }
        Ok(false)
    }
}

/// A drill's outcome: journaled; each failed copy is marked failed and re-sent from another
/// verified copy when there is one.
pub(super) async fn on_drill_result(u: &mut Unit<'_>, c: &Command, success: bool) -> Result<()> {
    let checks = match &c.result {
        Some(CommandDetails::RestoreDrill(checks)) => checks.clone(),
        _ => Vec::new(),
    };
    let tier = match &c.args {
        CommandArgs::RestoreDrill(d) => match d.scope {
            DrillScope::Tier(t) => t.as_str(),
            DrillScope::AnyTier => "any",
            DrillScope::Own => "own",
        },
        _ => "any",
    };
    let (event, outcome) =
        if success { (EventType::RestoreDrillPassed, "passed") } else { (EventType::RestoreDrillFailed, "failed") };
    u.journal(JournalEntry {
        source_id: c.source_id.clone(),
        status_after: outcome.into(),
        error: if success { String::new() } else { c.result_message.clone() },
        details_json: serde_json::json!({ "tier": tier, "checked": checks.len(), "command_id": c.command_id })
            .to_string(),
        ..JournalEntry::new(event, super::sources::actor_of(&c.source_id))
    });
    super::damage::on_checks(u, &c.source_id, &checks, "restore drill").await?;
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
