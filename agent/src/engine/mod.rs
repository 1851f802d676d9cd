//! The backup engine: passes over the watched folders, packaging, uploading, verifying.
//!
//! One pass at a time (a mutex), so a package is never built twice concurrently. Every step
//! that the catcher must hear about is written to the outbox in the same transaction as the
//! local record it describes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use edgebackup_proto::v1::{self as pb, agent_event::Kind};
use tokio::sync::Mutex;

use crate::archive;
use crate::catalog;
use crate::config::{Config, FolderConfig};
use crate::safety::{Detector, Observation, SafetyStatus, Trip, entropy_of, is_high_entropy};
use crate::scan::{self, Seen};
use crate::state::{FileState, LocalPackage, LocalStatus, ManifestFile, State, StationCopy, now_ms};
use crate::station::Station;

mod compaction;
mod progress;
use progress::Progress;

pub const SAFETY_KEY: &str = "safety";
pub const PAUSED_KEY: &str = "paused";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub packages_completed: u32,
    pub packages_failed: u32,
    pub files_backed_up: u32,
    /// Why uploads were skipped, if they were.
    pub held: Option<String>,
}

pub struct Engine {
    pub config: Arc<Config>,
    pub state: State,
    pub stations: Arc<Vec<Station>>,
    pass_lock: Mutex<()>,
    detector: std::sync::Mutex<Detector>,
    previous: std::sync::Mutex<HashMap<PathBuf, Seen>>,
}

fn package_type(name: &str) -> pb::PackageType {
    match name {
        "app_logs" => pb::PackageType::AppLogs,
        "audit_logs" => pb::PackageType::AuditLogs,
        "business_data" => pb::PackageType::BusinessData,
        "job_package" => pb::PackageType::JobPackage,
        "cache" => pb::PackageType::Cache,
        _ => pb::PackageType::UserData,
    }
}

impl Engine {
    pub fn new(config: Arc<Config>, state: State, stations: Arc<Vec<Station>>) -> Self {
        let detector = Detector::new(config.safety.clone());
        Self {
            config,
            state,
            stations,
            pass_lock: Mutex::new(()),
            detector: std::sync::Mutex::new(detector),
            previous: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn safety(&self) -> Result<SafetyStatus> {
        Ok(self.state.meta(SAFETY_KEY)?.unwrap_or_default())
    }

    pub fn paused(&self) -> Result<bool> {
        Ok(self.state.meta(PAUSED_KEY)?.unwrap_or(false))
    }

    /// Trips the panic brake (once) and tells the catcher.
    pub fn trip(&self, trip: Trip) -> Result<()> {
        if self.safety()?.stopped {
            return Ok(());
        }
        tracing::error!(reason = %trip.reason, "panic brake tripped: uploads stop until an operator resumes this source");
        let status = SafetyStatus { stopped: true, reason: trip.reason.clone(), details: trip.details() };
        self.state.write(|tx| {
            tx.set_meta(SAFETY_KEY, &status)?;
            tx.push(Kind::SafetyAlert(trip.alert()))?;
            Ok(())
        })?;
        Ok(())
    }

    /// Clears the brake (an operator's resume) and accepts the folders as they are now: a
    /// canary that was changed or removed is written again (else the next pass would trip on
    /// it at once). Returns the canaries recreated.
    pub fn resume(&self) -> Result<Vec<PathBuf>> {
        let mut recreated = Vec::new();
        if self.config.safety.enabled && self.config.safety.canary {
            for folder in self.config.folders.iter().filter(|f| f.path.is_dir()) {
                if scan::check_canary(&folder.path, true).is_some() {
                    let path = scan::plant_canary(&folder.path).map_err(|e| {
                        EngineError::Io(format!("recreating the canary in {}: {e}", folder.path.display()))
                    })?;
                    recreated.push(path);
                }
            }
        }
        self.state.write(|tx| {
            tx.set_meta(SAFETY_KEY, &SafetyStatus::default())?;
            tx.set_meta(PAUSED_KEY, &false)
        })?;
        self.detector.lock().expect("detector").reset();
        Ok(recreated)
    }

    pub fn pause(&self) -> Result<()> {
        Ok(self.state.set_meta(PAUSED_KEY, &true)?)
    }

    /// Redoes packages a crash interrupted (status Uploading), as a new attempt.
    pub async fn recover(&self) -> Result<u32> {
        let _guard = self.pass_lock.lock().await;
        let mut redone = 0;
        for mut p in self.state.packages()?.into_iter().filter(|p| p.status == LocalStatus::Uploading) {
            if self.safety()?.stopped || self.paused()? {
                break;
            }
            p.attempt += 1;
            tracing::info!(package = %p.package_id, attempt = p.attempt, "resuming an interrupted package");
            self.state.write(|tx| tx.put_package(&p))?;
            self.run_package(p).await?;
            redone += 1;
        }
        Ok(redone)
    }

    /// One pass over every folder (a `backup_pass` span, one `folder_pass` per folder).
    #[tracing::instrument(name = "backup_pass", skip_all)]
    pub async fn pass(&self) -> Result<PassReport> {
        let _guard = self.pass_lock.lock().await;
        let mut report = PassReport::default();
        for folder in &self.config.folders {
            self.pass_folder(folder, &mut report).await?;
        }
        Ok(report)
    }

    #[tracing::instrument(name = "folder_pass", skip_all, fields(folder = %folder.path.display()))]
    async fn pass_folder(&self, folder: &FolderConfig, report: &mut PassReport) -> Result<()> {
        let root = folder.path.clone();
        if !root.is_dir() {
            tracing::warn!(folder = %root.display(), "watched folder does not exist; skipped");
            return Ok(());
        }
        let safety = &self.config.safety;
        if safety.enabled && safety.canary {
            let planted_key = format!("canary:{}", root.display());
            let planted: bool = self.state.meta(&planted_key)?.unwrap_or(false);
            if let Some(reason) = scan::check_canary(&root, planted) {
                self.trip(Trip::canary(reason, &root))?;
            } else if !planted {
                self.state.set_meta(&planted_key, &true)?;
            }
        }
        let started = Instant::now();
        // The moment this pass's changes take effect in the catalog (the agent's clock).
        let taken_at = now_ms();
        let excludes = scan::excludes(&folder.excludes);
        let state = self.state.clone();
        let skip = self.config.state_dir.clone();
        let walk_root = root.clone();
        let walk = tokio::task::spawn_blocking(move || scan::walk(&walk_root, &excludes, &skip, &state))
            .await
            .map_err(|e| EngineError::Io(e.to_string()))??;
        tracing::debug!(folder = %root.display(), files = walk.seen.len(), changed = walk.to_back_up.len(), elapsed_ms = started.elapsed().as_millis() as u64, "scanned");
        for e in &walk.errors {
            tracing::warn!(folder = %root.display(), error = %e, "unreadable entry");
        }
        self.observe(&root, &walk.seen)?;
        self.state.write(|tx| walk.vanished.iter().try_for_each(|abs| tx.remove_file(abs)))?;

        if let Some(held) = self.held()? {
            if !walk.to_back_up.is_empty() {
                report.held = Some(held);
            }
            return Ok(());
        }
        if !self.package_files(&root, folder, &walk.to_back_up, taken_at, report).await? {
            // Not recorded while held: a brake's trip must not start the retention clock of
            // the versions the suspicious changes would supersede.
            return Ok(());
        }
        Ok(catalog::report_pass(&self.state, &root, &walk, taken_at, package_type(&folder.package_type))?)
    }

    /// Packages `files` (relative path, size) of a folder, as many packages as the limits
    /// make; returns false when uploads became held on the way (`report.held` says why).
    async fn package_files(
        &self,
        root: &Path,
        folder: &FolderConfig,
        files: &[(String, u64)],
        taken_at: i64,
        report: &mut PassReport,
    ) -> Result<bool> {
        for chunk in chunks(files, self.config.max_package_bytes, self.config.max_package_files) {
            let mut p = LocalPackage::planned(
                root.to_string_lossy().into_owned(),
                folder.package_type.clone(),
                chunk.iter().map(|(rel, _)| rel.clone()).collect(),
            );
            p.created_at_ms = taken_at;
            let input: u64 = chunk.iter().map(|(_, size)| size).sum();
            let tool = self.backup_targets().first().map(|s| s.tool()).unwrap_or(pb::Tool::Native);
            self.state.write(|tx| {
                tx.put_package(&p)?;
                tx.push(Kind::Ingest(pb::Ingest {
                    package_id: p.package_id.clone(),
                    path: p.folder.clone(),
                    package_type: package_type(&p.package_type) as i32,
                    size_bytes: input,
                    sha256: String::new(),
                    tool: tool as i32,
                }))?;
                Ok(())
            })?;
            let count = p.files.len() as u32;
            if self.run_package(p).await? {
                report.packages_completed += 1;
                report.files_backed_up += count;
            } else {
                report.packages_failed += 1;
            }
            if let Some(held) = self.held()? {
                report.held = Some(held);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The stations new packages go to.
    pub fn backup_targets(&self) -> Vec<&Station> {
        let only = &self.config.backup_stations;
        self.stations.iter().filter(|s| only.is_empty() || only.iter().any(|id| id == s.id())).collect()
    }

    /// Why uploads are held, if they are.
    fn held(&self) -> Result<Option<String>> {
        let safety = self.safety()?;
        if safety.stopped {
            return Ok(Some(format!("stopped for safety: {}", safety.reason)));
        }
        if self.paused()? {
            return Ok(Some("paused by the catcher".into()));
        }
        Ok(None)
    }

    /// Feeds the changes since the previous walk to the panic brake.
    fn observe(&self, root: &Path, seen: &Seen) -> Result<()> {
        let previous = self.previous.lock().expect("previous").insert(root.to_owned(), seen.clone());
        let Some(previous) = previous else { return Ok(()) };
        let changed = scan::changed_since(&previous, seen);
        let removed = scan::vanished(&previous, seen);
        let mut o = Observation { changed: changed.len() as u32, removed: removed.len() as u32, ..Default::default() };
        // A removed file whose size and mtime reappear on a new file was renamed.
        let mut new_by_meta: HashMap<(u64, i128), u32> = HashMap::new();
        for rel in changed.iter().filter(|rel| !previous.contains_key(*rel)) {
            *new_by_meta.entry(seen[rel]).or_default() += 1;
        }
        let mut siblings = None;
        // Each pairing check reads 64 KiB; past the change-rate limit the brake trips anyway.
        let mut checks = self.config.safety.max_changes_per_minute;
        for rel in &removed {
            if let Some(n) = new_by_meta.get_mut(&previous[rel]).filter(|n| **n > 0) {
                *n -= 1;
                o.renamed += 1;
                continue;
            }
            if checks == 0 {
                continue;
            }
            checks -= 1;
            let was_high = self.state.file(&root.join(rel).to_string_lossy())?.is_some_and(|f| f.high_entropy);
            let siblings = siblings.get_or_insert_with(|| scan::Siblings::of(seen));
            if !was_high && siblings.named_after(rel).any(|c| entropy_of(&root.join(c)).is_some_and(is_high_entropy)) {
                o.replaced_by_encrypted += 1;
            }
        }
        for rel in changed.iter().filter(|rel| previous.contains_key(*rel)) {
            o.rewritten += 1;
            let abs = root.join(rel);
            let was_high = self.state.file(&abs.to_string_lossy())?.is_some_and(|f| f.high_entropy);
            if !was_high && entropy_of(&abs).is_some_and(is_high_entropy) {
                o.turned_high_entropy += 1;
            }
        }
        let verdict = self.detector.lock().expect("detector").observe(Instant::now(), o);
        if let Some(trip) = verdict {
            self.trip(trip)?;
        }
        Ok(())
    }

    /// Builds, uploads and verifies one package. Returns whether it completed.
    pub async fn run_package(&self, mut p: LocalPackage) -> Result<bool> {
        let staging = self.config.state_dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| EngineError::Io(format!("{}: {e}", staging.display())))?;
        let archive_path = staging.join(format!("{}.tar.zst", p.package_id));
        let result = self.build_and_upload(&mut p, &archive_path).await;
        let _ = std::fs::remove_file(&archive_path);
        match result {
            Ok(()) => Ok(true),
            Err(error) => {
                tracing::warn!(package = %p.package_id, %error, "package failed");
                p.status = LocalStatus::Failed;
                p.error = error.clone();
                p.finished_at_ms = Some(now_ms());
                self.state.write(|tx| {
                    tx.put_package(&p)?;
                    tx.push(Kind::Fail(pb::Fail { package_id: p.package_id.clone(), error, retryable: true }))?;
                    Ok(())
                })?;
                Ok(false)
            }
        }
    }

    async fn build_and_upload(&self, p: &mut LocalPackage, archive_path: &Path) -> Result<(), String> {
        let progress = Progress::new(self.state.clone(), p.package_id.clone(), p.attempt);
        let input: u64 = p
            .files
            .iter()
            .filter_map(|rel| std::fs::metadata(Path::new(&p.folder).join(rel)).ok())
            .map(|m| m.len())
            .sum();
        let targets = self.backup_targets();
        // A first station that can take the archive while it is being built gets it that way
        // (packaging and storing overlap, nothing is read twice); the staging file is then
        // written only for the others.
        let feed = match targets.first().and_then(|s| s.feed(&self.config.source_id, &p.package_id)) {
            Some(Ok(feed)) => Some(feed),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot stream the archive; storing it from the file");
                None
            }
            None => None,
        };
        let (feed, writer) = feed.unzip();
        // Packaging is the first 70% of the bar, the uploads share the rest.
        let task = {
            let root = PathBuf::from(&p.folder);
            let files = p.files.clone();
            let file = (feed.is_none() || targets.len() > 1).then(|| archive_path.to_owned());
            let level = self.config.compression_level;
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = Tee { file: None, feed: writer };
                let built = (|| {
                    // Scratch space, rebuilt after a crash: no sync needed.
                    out.file = file.map(|f| std::fs::File::create(f).map(std::io::BufWriter::new)).transpose()?;
                    let mut read = 0u64;
                    let built = archive::build(&root, &files, &mut out, level, &mut |n| {
                        read += n;
                        progress.report(read, input, 0, 70);
                    })?;
                    out.flush()?;
                    Ok::<_, std::io::Error>(built)
                })();
                // `out` comes back still open, so a failed build can stop the upload before it
                // sees an end and stores a truncated archive.
                (built, out)
            })
        };
        let (built, out) = task.await.map_err(|e| e.to_string())?;
        let built = match built {
            Ok(built) => {
                tracing::debug!(package = %p.package_id, bytes = built.size, "archive built");
                built
            }
            Err(e) => {
                let why = format!("packaging: {e}");
                // `out` is dropped only after the upload was stopped.
                return Err(match feed {
                    Some(feed) => feed.abort(&why).await.to_string(),
                    None => why,
                });
            }
        };
        drop(out); // the feed sees the end of the archive
        let mut streamed = match feed {
            Some(feed) => Some(feed.finish(built.size).await),
            None => None,
        };
        if built.manifest.is_empty() {
            return Err("every planned file vanished before it could be packaged".into());
        }
        p.sha256 = built.sha256.clone();
        p.size = built.size;
        p.manifest = built.manifest;
        p.tool = targets.first().map(|s| s.tool().as_str_name().to_owned()).unwrap_or_default();

        let mut reports = Vec::new();
        let n = targets.len().max(1) as u64;
        for (i, station) in targets.into_iter().enumerate() {
            if self.held().map_err(|e| e.to_string())?.is_some() {
                return Err("uploads were stopped (panic brake or pause) before every station had a copy".into());
            }
            let (lo, hi) = (70 + 30 * i as u64 / n, 70 + 30 * (i as u64 + 1) / n);
            let size = built.size;
            let report = |done: u64| progress.report(done, size, lo, hi);
            let outcome = async {
                let tool_ref = match streamed.take() {
                    Some(stored) => stored?,
                    None => station.put(&self.config.source_id, &p.package_id, archive_path, &report).await?,
                };
                let measured =
                    if station.reads_back() { station.measure(&tool_ref).await? } else { built.sha256.clone() };
                Ok::<_, crate::station::StationError>((tool_ref, measured))
            }
            .await;
            match outcome {
                Ok((tool_ref, measured)) if measured == built.sha256 => {
                    p.copies.push(StationCopy {
                        station_id: station.id().to_owned(),
                        tool_ref,
                        verified_sha256: measured.clone(),
                    });
                    reports.push(placement(station.id(), pb::PlacementStatus::Verified, &measured, ""));
                }
                Ok((tool_ref, measured)) => {
                    let error = format!(
                        "stored copy {} has sha256 {measured}, expected {}",
                        station.describe(&tool_ref),
                        built.sha256
                    );
                    tracing::warn!(station = station.id(), %error, "verification failed");
                    reports.push(placement(station.id(), pb::PlacementStatus::Failed, &measured, &error));
                }
                Err(e) => {
                    tracing::warn!(station = station.id(), error = %e, "upload failed");
                    reports.push(placement(station.id(), pb::PlacementStatus::Failed, "", &e.to_string()));
                }
            }
        }
        if p.copies.is_empty() {
            let errors: Vec<&str> = reports.iter().map(|r| r.error.as_str()).collect();
            return Err(format!("no station holds a verified copy: {}", errors.join("; ")));
        }
        p.status = LocalStatus::Completed;
        p.finished_at_ms = Some(now_ms());
        p.error.clear();
        let complete = pb::Complete {
            package_id: p.package_id.clone(),
            sha256: built.sha256.clone(),
            size_bytes: built.size,
            tool_ref: p.copies[0].tool_ref.clone(),
            placements: reports,
            manifest: p.manifest.iter().map(manifest_entry).collect(),
        };
        let folder = PathBuf::from(&p.folder);
        // The catalog hears of these files' new versions right after the package itself, so
        // retention knows what the package holds before it could ever come due.
        let (entries, parts) = catalog::packaged(p);
        self.state
            .write(|tx| {
                tx.put_package(p)?;
                for (abs, e) in &entries {
                    tx.put_reported(abs, e)?;
                }
                for f in &p.manifest {
                    let abs = folder.join(&f.path);
                    let state = FileState {
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                        sha256: f.sha256.clone(),
                        package_id: p.package_id.clone(),
                        high_entropy: built.high_entropy.contains(&f.path),
                    };
                    tx.put_file(&abs.to_string_lossy(), &state)?;
                }
                tx.push(Kind::Complete(complete))?;
                for part in parts {
                    tx.push(Kind::FolderSnapshot(part))?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        crate::metrics::count_uploaded(p.size.saturating_mul(p.copies.len() as u64));
        tracing::info!(package = %p.package_id, files = p.manifest.len(), bytes = p.size, sha256 = %p.sha256, "package stored and verified");
        Ok(())
    }
}

/// Where a build's archive goes: the staging file, the first station's feed, or both.
struct Tee {
    file: Option<std::io::BufWriter<std::fs::File>>,
    feed: Option<crate::station::FeedWriter>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = &mut self.file {
            f.write_all(buf)?;
        }
        if let Some(f) = &mut self.feed {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

fn placement(station: &str, status: pb::PlacementStatus, sha: &str, error: &str) -> pb::PlacementReport {
    pb::PlacementReport {
        station_id: station.to_owned(),
        status: status as i32,
        verified_sha256: sha.to_owned(),
        error: error.to_owned(),
    }
}

pub fn manifest_entry(f: &ManifestFile) -> pb::ManifestEntry {
    pb::ManifestEntry {
        path: f.path.clone(),
        size_bytes: f.size,
        sha256: f.sha256.clone(),
        modified_at: Some(catalog::timestamp(f.mtime_ns)),
    }
}

/// Splits files into packages of at most `max_bytes` input bytes and `max_files` files; a file
/// bigger than `max_bytes` gets a package of its own.
pub fn chunks(files: &[(String, u64)], max_bytes: u64, max_files: usize) -> Vec<Vec<(String, u64)>> {
    let mut out: Vec<Vec<(String, u64)>> = Vec::new();
    let mut bytes = 0u64;
    for f in files {
        let start_new = match out.last() {
            None => true,
            Some(cur) => cur.len() >= max_files || (bytes + f.1 > max_bytes && !cur.is_empty()),
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += f.1;
        out.last_mut().expect("pushed").push(f.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_respects_both_limits() {
        let files: Vec<(String, u64)> =
            [5, 5, 5, 20, 1, 1].iter().enumerate().map(|(i, s)| (format!("f{i}"), *s)).collect();
        let sizes =
            |c: Vec<Vec<(String, u64)>>| c.iter().map(|c| c.iter().map(|f| f.1).collect()).collect::<Vec<Vec<u64>>>();
        assert_eq!(sizes(chunks(&files, 10, 100)), vec![vec![5, 5], vec![5], vec![20], vec![1, 1]]);
        assert_eq!(sizes(chunks(&files, 1000, 4)), vec![vec![5, 5, 5, 20], vec![1, 1]]);
        assert!(chunks(&[], 10, 10).is_empty());
    }
}
