//! Copies found damaged: by a restore drill, a Verify command, or an agent's own check
//! (`agent verify`, its scrub). A damaged copy is marked failed (so nothing counts on it) and,
//! where the reporting agent is a mover and another station holds a verified copy, written
//! again from that one (MOVE with the purpose Resend).

use super::Op;
use super::commands::new_command;
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
            let p = u.package(&c.package_id).await?.ok_or_else(|| Error::not_found("package", &c.package_id))?;
            if p.source_id != self.source_id {
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
/// them ("verify", "restore drill") in the journal and the placement's error.
pub(super) async fn on_checks(u: &mut Unit<'_>, reporter: &str, checks: &[CopyCheck], cause: &str) -> Result<Damage> {
    let mut damage = Damage::default();
    let is_mover = u.source(reporter).await?.is_some_and(|s| s.capabilities.contains(&Capability::Mover));
    for check in checks.iter().filter(|c| !c.ok) {
        let Some(p) = u.package(&check.package_id).await? else { continue };
        let placements = u.placements_of(&p.package_id).await?;
        let Some(before) = placements.iter().find(|pl| pl.station_id == check.station_id) else { continue };
        let problem = if check.problem.is_empty() { "the copy did not match" } else { check.problem.as_str() };
        let error = format!("{cause}: {problem}");
        damage.damaged += 1;
        u.put_placement(Placement {
            package_id: p.package_id.clone(),
            station_id: check.station_id.clone(),
            status: PlacementStatus::Failed,
            verified_sha256: String::new(),
            verified_at: None,
            error: error.clone(),
            updated_at: u.now,
        });
        let bad: Vec<&str> = check.bad_files.iter().take(20).map(|(path, _)| path.as_str()).collect();
        u.journal(JournalEntry {
            source_id: p.source_id.clone(),
            package_id: p.package_id.clone(),
            station_id: check.station_id.clone(),
            status_before: before.status.as_str().into(),
            status_after: PlacementStatus::Failed.as_str().into(),
            error,
            details_json: serde_json::json!({ "found_by": cause, "reporter": reporter, "bad_files": bad }).to_string(),
            ..JournalEntry::new(EventType::PackageCopyDamaged, super::sources::actor_of(reporter))
        });
        let good =
            placements.iter().find(|pl| pl.station_id != check.station_id && pl.status == PlacementStatus::Verified);
        if let (true, Some(from)) = (is_mover, good) {
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
            u.journal(JournalEntry {
                source_id: p.source_id.clone(),
                package_id: p.package_id.clone(),
                station_id: check.station_id.clone(),
                status_before: check.station_id.clone(),
                status_after: check.station_id.clone(),
                details_json: serde_json::json!({ "from": from.station_id }).to_string(),
                ..JournalEntry::new(EventType::PackageResendStarted, "scheduler")
            });
        }
    }
    Ok(damage)
}
