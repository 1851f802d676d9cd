//! Copies found damaged: by a restore drill, a Verify command, or an agent's own check
//! (`agent verify`, its scrub). A damaged copy is marked failed (so nothing counts on it) and,
//! where the reporting agent is a mover and another station holds a verified copy, written
//! again from that one (MOVE with the purpose Resend).

use super::Op;
use super::commands::new_command;
use super::lifecycle::{journal, placement};
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};

/// An agent reports copies it checked outside a command (PackageService.ReportCopyChecks).
#[derive(Debug)]
pub struct ReportChecks {
    /// The reporting agent's source: it may report only its own packages.
    pub source_id: String,
    pub checks: Vec<CopyCheck>,
    /// What ran them ("verify", "scrub"): the journal's `found_by`.
    pub found_by: &'static str,
}

/// What a report changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Damage {
    pub damaged: u32,
    pub repairs: u32,
}

impl Op for ReportChecks {
    type Output = Damage;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Damage> {
        for (i, c) in self.checks.iter().enumerate() {
            // A package deleted since it was checked has nothing left to mark (`on_checks`
            // skips it); one of another source is not the reporter's to vouch for.
            if let Some(p) = u.package(&c.package_id).await?
                && p.source_id != self.source_id
            {
                return Err(Error::invalid(
                    format!("checks[{i}].package_id"),
                    format!("{} is not a package of {}", c.package_id, self.source_id),
                ));
            }
        }
        on_checks(u, &self.source_id, &self.checks, self.found_by).await
    }
}

/// Marks the failed checks' copies damaged and orders their repair; `cause` says what found
/// them ("verify", "scrub", "restore drill") in the journal and the placement's error. A copy
/// already held as damaged is not journaled again, and one being re-sent gets no second move.
/// A copy held as damaged that a check now finds intact (the failure was the station being
/// unreachable, not the bytes) counts as verified again.
pub(super) async fn on_checks(u: &mut Unit<'_>, reporter: &str, checks: &[CopyCheck], cause: &str) -> Result<Damage> {
    let mut damage = Damage::default();
    for check in checks.iter().filter(|c| c.ok) {
        let Some(p) = u.package(&check.package_id).await? else { continue };
        let failed = u
            .placements_of(&p.package_id)
            .await?
            .iter()
            .any(|pl| pl.station_id == check.station_id && pl.status == PlacementStatus::Failed);
        if failed && !p.sha256.is_empty() {
            u.put_placement(placement(
                &p.package_id,
                &check.station_id,
                PlacementStatus::Verified,
                &p.sha256,
                "",
                u.now,
            ));
        }
    }
    let is_mover = u.source(reporter).await?.is_some_and(|s| s.capabilities.contains(&Capability::Mover));
    for check in checks.iter().filter(|c| !c.ok) {
        let Some(p) = u.package(&check.package_id).await? else { continue };
        let placements = u.placements_of(&p.package_id).await?;
        let Some(before) = placements.iter().find(|pl| pl.station_id == check.station_id) else { continue };
        damage.damaged += 1;
        if before.status != PlacementStatus::Failed {
            let problem = if check.problem.is_empty() { "the copy did not match" } else { check.problem.as_str() };
            let error = format!("{cause}: {problem}");
            u.put_placement(placement(&p.package_id, &check.station_id, PlacementStatus::Failed, "", &error, u.now));
            let bad: Vec<&str> = check.bad_files.iter().take(20).map(|(path, _)| path.as_str()).collect();
            u.journal(JournalEntry {
                source_id: p.source_id.clone(),
                package_id: p.package_id.clone(),
                station_id: check.station_id.clone(),
                status_before: before.status.as_str().into(),
                status_after: PlacementStatus::Failed.as_str().into(),
                error,
                details_json: serde_json::json!({ "found_by": cause, "reporter": reporter, "bad_files": bad })
                    .to_string(),
                ..JournalEntry::new(EventType::PackageCopyDamaged, super::sources::actor_of(reporter))
            });
        }
        let resending = u
            .open_moves_of(&p.package_id)
            .await?
            .iter()
            .any(|c| matches!(&c.args, CommandArgs::Move(m) if m.to_station_id == check.station_id));
        let good =
            placements.iter().find(|pl| pl.station_id != check.station_id && pl.status == PlacementStatus::Verified);
        if let (true, false, Some(from)) = (is_mover, resending, good) {
            let args = CommandArgs::Move(MoveArgs {
                from_station_id: from.station_id.clone(),
                to_station_id: check.station_id.clone(),
                owner: p.source_id.clone(),
                sha256: p.sha256.clone(),
                purpose: MovePurpose::Resend,
            });
            let resend = new_command(u, reporter, &p.package_id, args);
            u.put_command(resend);
            damage.repairs += 1;
            let details = serde_json::json!({ "from": from.station_id });
            journal(u, &p, EventType::PackageResendStarted, &check.station_id, &check.station_id, details);
        }
    }
    Ok(damage)
}
