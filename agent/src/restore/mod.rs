//! Getting data back: a state from the catalog (`state`), one package to a directory, verify
//! stored copies, restore drills.
//! Every path checks the archive's sha256 against the expected one and every file against
//! the manifest, and says exactly which copy or which file is wrong.

pub mod browse;
pub mod command;
mod progress;
mod ranges;
pub mod state;

/// A channel to the catcher for one-off calls (the catalog, package lookups); the daemon's
/// stream has its own in `link`.
pub async fn catcher_channel(config: &crate::config::Config) -> Result<tonic::transport::Channel, String> {
    crate::credential::channel(config, false).await
}

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::{self, Mismatch, sha256_of};
use crate::engine::Engine;
use crate::state::LocalStatus;
use crate::station::Station;
use edgebackup_proto::v1 as pb;

/// The outcome of checking one copy.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub package_id: String,
    pub station_id: String,
    pub location: String,
    pub ok: bool,
    pub problem: String,
    pub bad_files: Vec<BadFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BadFile {
    pub path: String,
    pub reason: String,
}

impl From<Mismatch> for BadFile {
    fn from(m: Mismatch) -> Self {
        Self { path: m.path, reason: m.reason }
    }
}

impl Check {
    /// The check as the catcher hears it.
    pub fn to_wire(&self) -> pb::CopyCheck {
        pb::CopyCheck {
            package_id: self.package_id.clone(),
            station_id: self.station_id.clone(),
            location: self.location.clone(),
            ok: self.ok,
            problem: self.problem.clone(),
            bad_files: self
                .bad_files
                .iter()
                .map(|f| pb::BadFile { path: f.path.clone(), reason: f.reason.clone() })
                .collect(),
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!("package {} on station {} ({})", self.package_id, self.station_id, self.location);
        if self.ok {
            s.push_str(": ok");
        } else {
            s.push_str(&format!(": {}", self.problem));
            for f in &self.bad_files {
                s.push_str(&format!("; file {}: {}", f.path, f.reason));
            }
        }
        s
    }
}

/// Fetches a package's copy from `station`, checks it against `expected_sha` (when known) and
/// extracts it into `dest`, checking every file against the manifest.
pub async fn restore_from(
    station: &Station,
    owner: &str,
    package_id: &str,
    expected_sha: Option<&str>,
    dest: &Path,
    scratch: &Path,
) -> Check {
    let mut check = Check {
        package_id: package_id.to_owned(),
        station_id: station.id().to_owned(),
        location: String::new(),
        ok: false,
        problem: String::new(),
        bad_files: Vec::new(),
    };
    let tool_ref = match station.locate(owner, package_id).await {
        Ok(r) => r,
        Err(e) => {
            check.problem = e.to_string();
            return check;
        }
    };
    check.location = station.describe(&tool_ref);
    if let Err(e) = std::fs::create_dir_all(scratch) {
        check.problem = format!("scratch dir {}: {e}", scratch.display());
        return check;
    }
    let fetched = scratch.join(format!("{package_id}.fetch"));
    if let Err(e) = station.fetch(&tool_ref, &fetched).await {
        check.problem = e.to_string();
        return check;
    }
    // Unpacked aside first: damaged data never lands in the target directory.
    let unpacked = scratch.join(format!("{package_id}.files"));
    let result = check_and_extract(&fetched, expected_sha, &unpacked).await;
    let _ = std::fs::remove_file(&fetched);
    match result {
        Ok((problem, bad)) => {
            check.ok = problem.is_empty() && bad.is_empty();
            check.problem = problem;
            check.bad_files = bad.into_iter().map(BadFile::from).collect();
        }
        Err(e) => check.problem = e,
    }
    if check.ok
        && let Err(e) = move_tree(&unpacked, dest)
    {
        check.ok = false;
        check.problem = format!("writing into {}: {e}", dest.display());
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    check
}

async fn check_and_extract(
    archive: &Path,
    expected_sha: Option<&str>,
    dest: &Path,
) -> Result<(String, Vec<Mismatch>), String> {
    let archive = archive.to_owned();
    let dest = dest.to_owned();
    let expected = expected_sha.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let (sha, _) = std::fs::File::open(&archive).and_then(sha256_of).map_err(|e| e.to_string())?;
        let mut problem = String::new();
        if let Some(expected) = expected.filter(|e| !e.is_empty())
            && sha != expected
        {
            problem = format!("the stored copy's sha256 is {sha}, expected {expected}");
        }
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let file = std::fs::File::open(&archive).map_err(|e| e.to_string())?;
        match archive::extract(std::io::BufReader::new(file), &dest) {
            Ok((_, bad)) => Ok((problem, bad)),
            Err(e) if problem.is_empty() => Err(e.to_string()),
            Err(e) => Ok((format!("{problem}; {e}"), Vec::new())),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Moves every file under `from` to the same place under `to` (copying across filesystems).
fn move_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry.path().strip_prefix(from).map_err(std::io::Error::other)?;
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if std::fs::rename(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// What a verification checks: a package's expected sha256 and the copies to measure.
#[derive(Debug, Clone)]
pub struct VerifyPlan {
    pub package_id: String,
    /// The source whose package it is (where stations file it).
    pub owner: String,
    pub sha256: String,
    /// `(station id, tool ref)`; without a ref the station locates the copy by owner and id.
    pub copies: Vec<(String, Option<String>)>,
}

impl VerifyPlan {
    /// From this agent's own record of the package.
    pub fn from_record(owner: &str, p: &crate::state::LocalPackage) -> Self {
        Self {
            package_id: p.package_id.clone(),
            owner: owner.to_owned(),
            sha256: p.sha256.clone(),
            copies: p.copies.iter().map(|c| (c.station_id.clone(), Some(c.tool_ref.clone()))).collect(),
        }
    }

    /// From the catcher's record: every station where it holds a copy (verified, or marked
    /// damaged and worth measuring again), never one deleted by a tier move or an expiry.
    pub async fn from_catcher(config: &crate::config::Config, package_id: &str) -> Result<Self, String> {
        let channel = catcher_channel(config).await?;
        let request = pb::GetPackageRequest { package_id: package_id.to_owned(), without_manifest: true };
        let p = pb::package_service_client::PackageServiceClient::new(channel)
            .get_package(request)
            .await
            .map_err(|s| format!("the catcher: {}", s.message()))?
            .into_inner();
        Ok(Self {
            package_id: p.package_id,
            owner: p.source_id,
            sha256: p.sha256,
            copies: p
                .placements
                .into_iter()
                .filter(|pl| {
                    [pb::PlacementStatus::Verified as i32, pb::PlacementStatus::Failed as i32].contains(&pl.status)
                })
                .map(|pl| (pl.station_id, None))
                .collect(),
        })
    }
}

/// Checks every copy of a package (`agent verify`, the Verify command). The plan comes from
/// the catcher's record (it knows where tier moves put the copies); from this agent's own
/// record of the upload only when the catcher cannot be asked.
pub async fn verify_package(engine: &Engine, package_id: &str) -> Vec<Check> {
    let plan = match VerifyPlan::from_catcher(&engine.config, package_id).await {
        Ok(plan) => plan,
        Err(e) => match engine.state.package(package_id) {
            Ok(Some(p)) => {
                tracing::warn!(package_id, error = %e, "verifying the copies this agent uploaded (the catcher's record is out of reach)");
                VerifyPlan::from_record(&engine.config.source_id, &p)
            }
            _ => return vec![unplanned(package_id, &format!("no record here, and {e}"))],
        },
    };
    verify_plan(&engine.stations, &plan, &engine.config.state_dir.join("verify"), Integrity::PerCopy).await
}

/// A check that could not even start.
pub fn unplanned(package_id: &str, problem: &str) -> Check {
    Check {
        package_id: package_id.to_owned(),
        station_id: String::new(),
        location: String::new(),
        ok: false,
        problem: problem.to_owned(),
        bad_files: Vec::new(),
    }
}

/// Whether `verify_plan` checks each station's repository structure (`restic check`) before
/// measuring: yes for one package; a scrub checks each station once instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    PerCopy,
    Done,
}

/// Measures each planned copy on the stations this agent has configured; a copy whose sha256
/// differs is restored into scratch to name the damaged files. Copies on stations this agent
/// does not have are left out (another agent checks those).
pub async fn verify_plan(
    stations: &[Station],
    plan: &VerifyPlan,
    scratch_root: &Path,
    integrity: Integrity,
) -> Vec<Check> {
    let package_id = plan.package_id.as_str();
    if plan.sha256.is_empty() {
        return vec![unplanned(package_id, "the package's sha256 is not known yet (not completed)")];
    }
    let scratch = scratch_root.join(package_id);
    let mut checks = Vec::new();
    for (station_id, tool_ref) in &plan.copies {
        let Some(station) = stations.iter().find(|s| s.id() == station_id) else { continue };
        let mut check = Check { station_id: station_id.clone(), ..unplanned(package_id, "") };
        let located = match tool_ref {
            Some(r) => Ok(r.clone()),
            None => station.locate(&plan.owner, package_id).await,
        };
        let measured = match located {
            Ok(r) => {
                check.location = station.describe(&r);
                match integrity {
                    Integrity::PerCopy => match station.integrity().await {
                        Ok(()) => station.measure(&r).await,
                        Err(e) => Err(e),
                    },
                    Integrity::Done => station.measure(&r).await,
                }
            }
            Err(e) => Err(e),
        };
        match measured {
            Ok(sha) if sha == plan.sha256 => check.ok = true,
            Ok(sha) => {
                check.problem = format!("the stored copy's sha256 is {sha}, expected {}", plan.sha256);
                let deep = restore_from(
                    station,
                    &plan.owner,
                    package_id,
                    Some(&plan.sha256),
                    &scratch.join("files"),
                    &scratch,
                )
                .await;
                check.bad_files = deep.bad_files;
                if check.bad_files.is_empty() && !deep.problem.is_empty() {
                    check.problem = deep.problem;
                }
            }
            Err(e) => check.problem = e.to_string(),
        }
        checks.push(check);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if checks.is_empty() {
        let held: Vec<&str> = plan.copies.iter().map(|(s, _)| s.as_str()).collect();
        let problem = format!("no configured station holds a recorded copy (recorded on: {})", held.join(", "));
        return vec![unplanned(package_id, &problem)];
    }
    checks
}

/// One copy a drill restores.
struct Target {
    package_id: String,
    owner: String,
    sha256: String,
    station_id: String,
}

/// Restores a sample of packages into a scratch dir and verifies them.
///
/// For a drill by tier the catcher names the copies (`targets`); a drill of the agent's own
/// packages (no tier) restores its newest `sample` completed packages from where it stored them.
pub async fn drill(engine: &Engine, args: &pb::RestoreDrillArgs) -> Result<Vec<Check>, String> {
    let by_tier = args.any_tier || args.tier != pb::Tier::Unspecified as i32;
    let mut plan = Vec::new();
    if by_tier {
        if args.targets.is_empty() {
            return Err("args.restore_drill.targets: a drill by tier needs the copies the catcher planned".into());
        }
        for (i, t) in args.targets.iter().enumerate() {
            let field = |n: &str| format!("args.restore_drill.targets[{i}].{n}");
            if uuid::Uuid::parse_str(&t.package_id).is_err() {
                return Err(format!("{}: not a package id", field("package_id")));
            }
            if t.owner_source_id.is_empty() {
                return Err(format!("{}: required", field("owner_source_id")));
            }
            if t.station_id.is_empty() {
                return Err(format!("{}: required", field("station_id")));
            }
            plan.push(Target {
                package_id: t.package_id.clone(),
                owner: t.owner_source_id.clone(),
                sha256: t.sha256.clone(),
                station_id: t.station_id.clone(),
            });
        }
    } else {
        if !args.targets.is_empty() {
            return Err("args.restore_drill.targets: only a drill by tier names copies".into());
        }
        let sample = if args.sample == 0 { 3 } else { args.sample.min(100) } as usize;
        let packages = engine.state.packages().map_err(|e| e.to_string())?;
        for p in packages.into_iter().rev().filter(|p| p.status == LocalStatus::Completed).take(sample) {
            if let Some(copy) = p.copies.first() {
                plan.push(Target {
                    package_id: p.package_id.clone(),
                    owner: engine.config.source_id.clone(),
                    sha256: p.sha256.clone(),
                    station_id: copy.station_id.clone(),
                });
            }
        }
    }
    let scratch: PathBuf = engine.config.state_dir.join("drill");
    let mut checks = Vec::new();
    for t in plan {
        let Ok(station) = station(engine, &t.station_id) else {
            checks.push(Check {
                package_id: t.package_id,
                station_id: t.station_id.clone(),
                location: String::new(),
                ok: false,
                problem: format!("this agent has no station {:?} configured", t.station_id),
                bad_files: Vec::new(),
            });
            continue;
        };
        let dest = scratch.join(&t.package_id);
        checks.push(restore_from(station, &t.owner, &t.package_id, Some(&t.sha256), &dest, &scratch).await);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(checks)
}

fn station<'a>(engine: &'a Engine, id: &str) -> Result<&'a Station, String> {
    engine.stations.iter().find(|s| s.id() == id).ok_or_else(|| format!("this mover has no station {id:?} configured"))
}

/// A tier move: copy the package from one station to another and verify it there. The source
/// copy is checked first, so a damaged copy is never propagated.
pub async fn move_copy(
    engine: &Engine,
    command_id: &str,
    package_id: &str,
    args: &pb::MoveArgs,
) -> Result<pb::MoveResult, String> {
    if uuid::Uuid::parse_str(package_id).is_err() {
        return Err("package_id: not a package id".into());
    }
    if args.owner_source_id.is_empty() {
        return Err("args.move.owner_source_id: required".into());
    }
    let (from, to) = (station(engine, &args.from_station_id)?, station(engine, &args.to_station_id)?);
    let scratch = engine.config.state_dir.join("moves");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // Both ids are checked to be plain names: the staged file stays inside the scratch dir.
    let command = uuid::Uuid::parse_str(command_id).map_or_else(|_| "move".to_owned(), |u| u.to_string());
    let staged = scratch.join(format!("{package_id}.{command}"));
    let result = async {
        let source_ref = from.locate(&args.owner_source_id, package_id).await.map_err(|e| e.to_string())?;
        from.fetch(&source_ref, &staged).await.map_err(|e| e.to_string())?;
        let path = staged.clone();
        let (sha, _) = tokio::task::spawn_blocking(move || std::fs::File::open(&path).and_then(sha256_of))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if !args.sha256.is_empty() && sha != args.sha256 {
            return Err(format!("the copy on {} has sha256 {sha}, expected {}; not moved", from.id(), args.sha256));
        }
        let tool_ref = to.put(&args.owner_source_id, package_id, &staged, &|_| {}).await.map_err(|e| e.to_string())?;
        let measured = to.measure(&tool_ref).await.map_err(|e| e.to_string())?;
        if measured != sha {
            return Err(format!("the new copy {} has sha256 {measured}, expected {sha}", to.describe(&tool_ref)));
        }
        tracing::info!(package = %package_id, from = from.id(), to = to.id(), "copy moved and verified");
        Ok(pb::MoveResult { verified_sha256: measured, tool_ref })
    }
    .await;
    let _ = std::fs::remove_file(&staged);
    result
}

/// Deletes a package's copy from a station (it moved on, or retention is over).
pub async fn delete_copy(engine: &Engine, package_id: &str, args: &pb::ExpireArgs) -> Result<(), String> {
    if uuid::Uuid::parse_str(package_id).is_err() {
        return Err("package_id: not a package id".into());
    }
    if args.owner_source_id.is_empty() {
        return Err("args.expire.owner_source_id: required".into());
    }
    let from = station(engine, &args.station_id)?;
    match from.locate(&args.owner_source_id, package_id).await {
        Ok(tool_ref) => from.delete(&tool_ref).await.map_err(|e| e.to_string()),
        // restic finds no snapshot: already gone.
        Err(_) if from.tool() == edgebackup_proto::v1::Tool::Restic => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
