//! Packages: announced, uploaded, completed or failed by agents and scripts; deleted by people.

use super::Op;
use super::events::{Completion, Failure, PlacementReport, ProgressUpdate};
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::{PendingChange, PendingKind};

/// A package announced by an agent or a script.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPackage {
    pub package_id: String,
    pub path: String,
    pub package_type: PackageType,
    pub size_bytes: u64,
    pub sha256: String,
    pub tool: Tool,
    /// When the agent made it (its clock); `None` for scripts: when the catcher heard of it.
    pub made_at: Option<Millis>,
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
    /// Copies the script wrote (completing needs a verified one).
    pub placements: Vec<PlacementReport>,
}

/// A script announces a package (PackageService.IngestPackage).
#[derive(Debug)]
pub struct Ingest {
    pub source_id: String,
    pub package: NewPackage,
    /// Who asked (the journal's actor): `agent:SOURCE` or `token:NAME (ROLE)`.
    pub actor: String,
}

impl Op for Ingest {
    /// The package, and whether it was new.
    type Output = (Package, bool);

    async fn apply(self, u: &mut Unit<'_>) -> Result<(Package, bool)> {
        ingest(u, &self.source_id, self.package, &self.actor).await
    }
}

/// A script updates a package (PackageService.UpdatePackage).
#[derive(Debug)]
pub struct Patch {
    pub patch: PackagePatch,
    /// Who asked (the journal's actor).
    pub actor: String,
}

impl Op for Patch {
    type Output = Package;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Package> {
        patch(u, self.patch, &self.actor).await
    }
}

/// A person asks to delete a package's record: held for the protection delay as a pending
/// change (answered), or deleted at once when the delay is 0 (answered `None`).
#[derive(Debug)]
pub struct DeletePackage {
    pub package_id: String,
    pub reason: String,
    pub actor: String,
}

impl Op for DeletePackage {
    type Output = Option<PendingChange>;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Option<PendingChange>> {
        let p = deletable(u, &self.package_id).await?;
        if u.protection_ms == 0
            && super::deletion::delete_due(u, &self.package_id, &self.reason, &self.actor).await?
                == super::deletion::Deletion::Done
        {
            return Ok(None);
        }
        // Asking twice is waiting for the same deletion.
        let open = u.open_pending().await?;
        let same = |c: &&PendingChange| matches!(&c.kind, PendingKind::PackageDeletion { package_id, .. } if *package_id == p.package_id);
        if let Some(c) = open.iter().find(same) {
            return Ok(Some(c.clone()));
        }
        let kind = PendingKind::PackageDeletion { package_id: p.package_id, source_id: p.source_id, path: p.path };
        Ok(Some(super::protection::hold(u, kind, &self.reason, &self.actor).await?))
    }
}

// The journal details of the three events every package goes through, written as typed
// structs (no intermediate `serde_json::Value` map per event, on the hottest path). Fields in
// alphabetical order: the same text `json!` gave before, so entries read alike.

#[derive(serde::Serialize)]
struct IngestDetails<'a> {
    package_type: PackageType,
    path: &'a str,
    size_bytes: u64,
    tool: Tool,
}

#[derive(serde::Serialize)]
struct AttemptDetails {
    attempt: u32,
}

#[derive(serde::Serialize)]
struct CompleteDetails<'a> {
    size_bytes: u64,
    stations: Vec<&'a str>,
    tier: Tier,
}

fn details(d: &impl serde::Serialize) -> String {
    serde_json::to_string(d).expect("plain structs always serialise")
}

/// Loads a package that `source_id` may speak for.
pub(super) async fn owned_package(u: &mut Unit<'_>, source_id: Option<&str>, id: &str) -> Result<Package> {
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
        // The agent's time, never ahead of ours: an outage does not bunch its backups up.
        created_at: n.made_at.map_or(u.now, |t| t.min(u.now)),
        updated_at: u.now,
        completed_at: None,
        expired_at: None,
    };
    u.journal(JournalEntry {
        source_id: source_id.to_owned(),
        package_id: p.package_id.clone(),
        status_after: p.status.as_str().into(),
        checksum: p.sha256.clone(),
        details_json: details(&IngestDetails {
            package_type: p.package_type,
            path: &p.path,
            size_bytes: p.size_bytes,
            tool: p.tool,
        }),
        ..JournalEntry::new(EventType::PackageIngested, actor.to_owned())
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
        let event = if before == PackageStatus::Failed { EventType::PackageRetried } else { EventType::PackageStarted };
        u.journal(JournalEntry {
            source_id: p.source_id.clone(),
            package_id: p.package_id.clone(),
            status_before: before.as_str().into(),
            status_after: p.status.as_str().into(),
            details_json: details(&AttemptDetails { attempt: p.retry_count }),
            ..JournalEntry::new(event, actor)
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
    // Completed means stored: a verified copy reported now, or one the catcher already knows.
    if !c.placements.iter().any(|pl| pl.status == PlacementStatus::Verified)
        && !u.placements_of(&p.package_id).await?.iter().any(|pl| pl.status == PlacementStatus::Verified)
    {
        return Err(Error::FailedPrecondition(
            "placements: no verified copy; a package is completed only once a station holds a copy it verified \
             (report Fail instead)"
                .into(),
        ));
    }
    for pl in &c.placements {
        if pl.status == PlacementStatus::Verified && pl.verified_sha256 != sha {
            return Err(Error::FailedPrecondition(format!(
                "placements: station {} verified sha256 {}, expected {sha}",
                pl.station_id, pl.verified_sha256
            )));
        }
        u.put_placement(Placement {
            package_id: p.package_id.clone(),
            station_id: pl.station_id.clone(),
            status: pl.status,
            verified_sha256: pl.verified_sha256.clone(),
            verified_at: (pl.status == PlacementStatus::Verified).then_some(u.now),
            error: pl.error.clone(),
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
    // When the agent stored and verified it, never ahead of ours nor before it was made: tier
    // waits count from then, so backups queued through an outage keep their own times.
    let done = c.done_at.map_or(u.now, |t| t.clamp(p.created_at.min(u.now), u.now));
    p.completed_at = Some(done);
    p.tier = Some(tier);
    p.tier_entered_at = Some(done);
    if let Some(mut s) = u.source(&p.source_id).await? {
        s.last_completed_at = Some(u.now);
        u.put_source(s);
    }
    u.journal(JournalEntry {
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.as_str().into(),
        status_after: p.status.as_str().into(),
        checksum: p.sha256.clone(),
        details_json: details(&CompleteDetails {
            size_bytes: p.size_bytes,
            stations: c.placements.iter().map(|pl| pl.station_id.as_str()).collect(),
            tier,
        }),
        ..JournalEntry::new(EventType::PackageCompleted, actor.to_owned())
    });
    super::lifecycle::plan_leaving(u, &mut p, &rules, tier, done).await?;
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
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: before.as_str().into(),
        status_after: p.status.as_str().into(),
        error: p.last_error.clone(),
        ..JournalEntry::new(EventType::PackageFailed, actor.to_owned())
    });
    u.put_package(p.clone());
    Ok(p)
}

/// A script's PATCH: checksum, then progress, then the status change it asks for.
async fn patch(u: &mut Unit<'_>, m: PackagePatch, actor: &str) -> Result<Package> {
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
                placements: m.placements,
                manifest: Vec::new(),
                done_at: None,
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

/// The package, if it may be deleted: never while it holds the newest version of a file still
/// present on the device.
pub(super) async fn deletable(u: &mut Unit<'_>, id: &str) -> Result<Package> {
    let p = owned_package(u, None, id).await?;
    if let Some(h) = u.hold(id).await?
        && h.live_versions > 0
    {
        return Err(Error::FailedPrecondition(format!(
            "package_id: {id} holds the only recorded version of {} files still present on the device; \
             it is kept until they change or are deleted",
            h.live_versions
        )));
    }
    Ok(p)
}

/// Recomputes the package counters and day buckets from the packages table (a repair; the
/// writer keeps them by delta otherwise).
#[derive(Debug)]
pub struct Recount;

impl Op for Recount {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        u.recount();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed details read exactly as the `json!` maps they replaced (keys sorted).
    #[test]
    fn typed_details_match_the_json_maps() {
        let ingest = IngestDetails {
            package_type: PackageType::AppLogs,
            path: "/var/log/a \"b\".log",
            size_bytes: 7,
            tool: Tool::Restic,
        };
        let was = serde_json::json!({"path": "/var/log/a \"b\".log", "package_type": PackageType::AppLogs, "size_bytes": 7, "tool": Tool::Restic});
        assert_eq!(details(&ingest), was.to_string());
        assert_eq!(details(&AttemptDetails { attempt: 3 }), serde_json::json!({"attempt": 3}).to_string());
        let done = CompleteDetails { size_bytes: 9, stations: vec!["hot-1", "cold-2"], tier: Tier::Hot };
        let was = serde_json::json!({"tier": Tier::Hot, "size_bytes": 9, "stations": ["hot-1", "cold-2"]});
        assert_eq!(details(&done), was.to_string());
    }
}
