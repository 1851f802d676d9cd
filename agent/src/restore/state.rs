//! Restoring a state: the folders of a source as they were at a moment (default: now), from the
//! catcher's catalog, with only the files a selection needs fetched, from the first intact
//! verified copy (the next one when a copy is damaged, which is named). Every file is checked
//! against the catalog's sha256 and gets its mode, owner (where the restorer may set it) and
//! mtime back; directories (empty ones too), symlinks and hardlinks come back as they were.
//!
//! Files are written to a temporary name (mode 0600) beside their target and renamed into place
//! once intact, so an interrupted restore leaves no partial file under a final name, and running
//! it again skips every file already there with the right contents.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use edgebackup_proto::v1::{
    self as pb, catalog_service_client::CatalogServiceClient, package_service_client::PackageServiceClient,
};
use globset::{Glob, GlobSet, GlobSetBuilder};
use tonic::transport::Channel;

use crate::archive::{self, sha256_of};
use crate::config::Config;
use crate::station::Station;

use super::progress::Tracker;
pub use super::progress::{OnProgress, Phase, Progress, Summary};
use super::ranges::{Group, extract_group, ranged};

/// What to restore.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The source whose data it is (a replacement device names its predecessor).
    pub source: String,
    /// Watched folders (absolute, as recorded); empty means every folder of the source.
    pub folders: Vec<String>,
    /// The moment; `None` is the latest state.
    pub as_of: Option<prost_types::Timestamp>,
    /// Globs over paths relative to the folder; empty means everything.
    pub paths: Vec<String>,
    /// Replace existing files whose contents differ (otherwise they are left and reported).
    pub overwrite: bool,
    /// Fetch from this station only (e.g. the offsite copy); default: any with a verified copy.
    pub station: Option<String>,
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("--path {p}: {e}"))?);
        // `docs` selects the directory and everything under it.
        b.add(Glob::new(&format!("{}/**", p.trim_end_matches('/'))).map_err(|e| format!("--path {p}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

/// The whole state of one folder at `as_of`, paged.
pub async fn state(
    catalog: &mut CatalogServiceClient<Channel>,
    source: &str,
    folder: &str,
    as_of: Option<prost_types::Timestamp>,
) -> Result<Vec<pb::FileEntry>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListStateRequest {
            source_id: source.into(),
            folder: folder.into(),
            as_of,
            page_size: 10_000,
            page_token: token,
        };
        let page = catalog.list_state(request).await.map_err(|s| format!("the catalog: {}", s.message()))?.into_inner();
        out.extend(page.entries.into_iter().filter_map(|v| v.entry));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// The entries `paths` name, when they are plain paths (no glob characters) of files or
/// links: only their directories are listed (`ListFolder`), not the folder's whole state.
/// `None` when that does not answer: no paths, a pattern, or a path naming a directory
/// (everything under it is wanted).
async fn named(
    catalog: &mut CatalogServiceClient<Channel>,
    source: &str,
    folder: &str,
    as_of: Option<prost_types::Timestamp>,
    paths: &[String],
) -> Result<Option<Vec<pb::FileEntry>>, String> {
    let plain = |p: &String| !p.is_empty() && !p.contains(['*', '?', '[', ']', '{', '}', '\\']);
    if paths.is_empty() || !paths.iter().all(plain) {
        return Ok(None);
    }
    let wanted: std::collections::HashSet<&str> = paths.iter().map(|p| p.trim_matches('/')).collect();
    let mut directories: Vec<&str> = wanted.iter().map(|p| p.rfind('/').map_or("", |i| &p[..i])).collect();
    directories.sort_unstable();
    directories.dedup();
    let mut out = Vec::new();
    for directory in directories {
        let mut token = String::new();
        loop {
            let request = pb::ListFolderRequest {
                source_id: source.into(),
                folder: folder.into(),
                directory: directory.into(),
                as_of,
                page_size: 10_000,
                page_token: token,
            };
            let page =
                catalog.list_folder(request).await.map_err(|s| format!("the catalog: {}", s.message()))?.into_inner();
            for e in page.entries.into_iter().filter_map(|v| v.entry) {
                if wanted.contains(e.path.as_str()) {
                    if kind(&e) == pb::EntryKind::Directory {
                        return Ok(None);
                    }
                    out.push(e);
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    Ok(Some(out))
}

/// Restores `sel` under `to` (each folder at `to` + its absolute path, as restic does),
/// telling `on_progress` how far it is.
pub async fn restore(
    config: &Config,
    channel: Channel,
    sel: &Selection,
    to: &Path,
    on_progress: Option<OnProgress>,
) -> Result<Summary, String> {
    let tracker = Arc::new(Tracker::new(on_progress));
    let started = Instant::now();
    let mut catalog = CatalogServiceClient::new(channel.clone());
    let mut packages = PackageServiceClient::new(channel);
    let folders = if sel.folders.is_empty() {
        let request = pb::ListFoldersRequest { source_id: sel.source.clone() };
        catalog.list_folders(request).await.map_err(|s| format!("the catalog: {}", s.message()))?.into_inner().folders
    } else {
        sel.folders.clone()
    };
    if folders.is_empty() {
        return Err(format!("the catalog has no folders of source {}", sel.source));
    }
    let only = globs(&sel.paths)?;
    let stations: Vec<Station> = config
        .stations
        .iter()
        .filter(|s| sel.station.as_ref().is_none_or(|only| *only == s.id))
        .map(Station::from_config)
        .collect();
    if let Some(only) = &sel.station
        && stations.is_empty()
    {
        return Err(format!("--station {only}: no such station in this agent's configuration"));
    }
    let scratch = config.state_dir.join("restore-scratch");
    let mut summary = Summary::default();
    for folder in &folders {
        let selected = match named(&mut catalog, &sel.source, folder, sel.as_of, &sel.paths).await? {
            Some(entries) => entries,
            None => {
                let entries = state(&mut catalog, &sel.source, folder, sel.as_of).await?;
                entries.into_iter().filter(|e| only.as_ref().is_none_or(|g| g.is_match(&e.path))).collect()
            }
        };
        let root = to.join(folder.trim_start_matches('/'));
        let files: Vec<&pb::FileEntry> = selected.iter().filter(|e| kind(e) == pb::EntryKind::File).collect();
        tracker.selected(files.iter().map(|e| e.size_bytes).sum(), files.len() as u64);
        let mut r = Restorer { root, overwrite: sel.overwrite, summary: &mut summary, progress: tracker.clone() };
        r.folder(&selected, &sel.source, &stations, &mut packages, &scratch).await?;
    }
    tracker.phase(Phase::Finishing);
    let _ = std::fs::remove_dir_all(&scratch);
    // Durable before it is reported done: one sync of the target's filesystem (files were not
    // synced one by one).
    let root = std::fs::File::open(to).map_err(|e| format!("{}: {e}", to.display()))?;
    rustix::fs::syncfs(&root).map_err(|e| format!("syncing {}: {e}", to.display()))?;
    summary.seconds = started.elapsed().as_secs_f64();
    crate::metrics::count_restored(summary.bytes);
    Ok(summary)
}

/// Where a file is written until it is known intact: a hidden name beside its target.
fn partial_of(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.ebk-partial"))
}

struct Restorer<'a> {
    root: PathBuf,
    overwrite: bool,
    summary: &'a mut Summary,
    progress: Arc<Tracker>,
}

fn kind(e: &pb::FileEntry) -> pb::EntryKind {
    pb::EntryKind::try_from(e.kind).unwrap_or(pb::EntryKind::Unspecified)
}

fn mtime(e: &pb::FileEntry) -> filetime::FileTime {
    let t = e.modified_at.unwrap_or_default();
    filetime::FileTime::from_unix_time(t.seconds, t.nanos.max(0) as u32)
}

/// Sets an entry's owner where the restorer may (a non-root restore keeps its own).
fn own(path: &Path, e: &pb::FileEntry, link: bool) -> std::io::Result<()> {
    let result = if link {
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid))
    } else {
        std::os::unix::fs::chown(path, Some(e.uid), Some(e.gid))
    };
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

impl Restorer<'_> {
    fn skip(&mut self, path: &str, why: impl Into<String>) {
        self.summary.skipped.push((path.to_owned(), why.into()));
    }

    async fn folder(
        &mut self,
        entries: &[pb::FileEntry],
        source: &str,
        stations: &[Station],
        packages: &mut PackageServiceClient<Channel>,
        scratch: &Path,
    ) -> Result<(), String> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        std::fs::create_dir_all(&self.root).map_err(|e| io(&self.root, e))?;
        for e in entries.iter().filter(|e| kind(e) == pb::EntryKind::Directory) {
            let dir = self.root.join(&e.path);
            std::fs::create_dir_all(&dir).map_err(|err| io(&dir, err))?;
        }
        // Files, by the package that holds them.
        let mut by_package: BTreeMap<&str, HashMap<String, &pb::FileEntry>> = BTreeMap::new();
        for e in entries.iter().filter(|e| kind(e) == pb::EntryKind::File) {
            if e.package_id.is_empty() || e.sha256.is_empty() {
                self.skip(&e.path, "no copy was made of this version (its package failed or was never stored)");
                continue;
            }
            let target = self.root.join(&e.path);
            if let Ok(meta) = std::fs::symlink_metadata(&target) {
                let same = meta.is_file()
                    && std::fs::File::open(&target).and_then(sha256_of).is_ok_and(|(sha, _)| sha == e.sha256);
                if same {
                    self.summary.unchanged += 1;
                    self.progress.done(e.size_bytes);
                    self.finish_file(&target, e).map_err(|err| io(&target, err))?;
                    continue;
                }
                if !self.overwrite {
                    self.skip(&e.path, "exists with other contents (use --overwrite to replace it)");
                    continue;
                }
            }
            by_package.entry(e.package_id.as_str()).or_default().insert(e.path.clone(), e);
        }
        for (package_id, wanted) in by_package {
            self.restore_package(package_id, wanted, source, stations, packages, scratch).await?;
        }
        for e in entries {
            let path = self.root.join(&e.path);
            match kind(e) {
                pb::EntryKind::Symlink => {
                    if let Ok(existing) = std::fs::read_link(&path) {
                        if existing == Path::new(&e.target) {
                            continue;
                        }
                        if !self.overwrite {
                            self.skip(&e.path, "a different symlink exists (use --overwrite to replace it)");
                            continue;
                        }
                        std::fs::remove_file(&path).map_err(|err| io(&path, err))?;
                    } else if path.exists() && !self.overwrite {
                        self.skip(&e.path, "something else exists there (use --overwrite to replace it)");
                        continue;
                    } else if path.exists() {
                        std::fs::remove_file(&path).map_err(|err| io(&path, err))?;
                    }
                    std::os::unix::fs::symlink(&e.target, &path).map_err(|err| io(&path, err))?;
                    own(&path, e, true).map_err(|err| io(&path, err))?;
                    filetime::set_symlink_file_times(&path, mtime(e), mtime(e)).map_err(|err| io(&path, err))?;
                    self.summary.links += 1;
                }
                pb::EntryKind::Hardlink => {
                    let first = self.root.join(&e.target);
                    let same_inode = match (std::fs::metadata(&path), std::fs::metadata(&first)) {
                        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                        _ => false,
                    };
                    if same_inode {
                        continue;
                    }
                    if !first.is_file() {
                        self.skip(&e.path, format!("the file it shares ({}) was not restored", e.target));
                        continue;
                    }
                    if path.exists() {
                        if !self.overwrite {
                            self.skip(&e.path, "exists (use --overwrite to replace it)");
                            continue;
                        }
                        std::fs::remove_file(&path).map_err(|err| io(&path, err))?;
                    }
                    std::fs::hard_link(&first, &path).map_err(|err| io(&path, err))?;
                    self.summary.links += 1;
                }
                _ => {}
            }
        }
        // Directories last, deepest first: writing into them moved their mtimes.
        let mut dirs: Vec<&pb::FileEntry> = entries.iter().filter(|e| kind(e) == pb::EntryKind::Directory).collect();
        dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
        for e in dirs {
            let dir = self.root.join(&e.path);
            own(&dir, e, false).map_err(|err| io(&dir, err))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(e.mode)).map_err(|err| io(&dir, err))?;
            filetime::set_file_times(&dir, mtime(e), mtime(e)).map_err(|err| io(&dir, err))?;
            self.summary.directories += 1;
        }
        Ok(())
    }

    /// Restores `wanted` from the first intact verified copy of the package, trying the next
    /// copy for whatever a damaged one could not give.
    async fn restore_package(
        &mut self,
        package_id: &str,
        mut wanted: HashMap<String, &pb::FileEntry>,
        source: &str,
        stations: &[Station],
        packages: &mut PackageServiceClient<Channel>,
        scratch: &Path,
    ) -> Result<(), String> {
        let package = match packages
            .get_package(pb::GetPackageRequest { package_id: package_id.into(), without_manifest: true })
            .await
        {
            Ok(p) => p.into_inner(),
            Err(s) => {
                for path in wanted.keys() {
                    self.skip(path, format!("package {package_id}: {}", s.message()));
                }
                return Ok(());
            }
        };
        let verified: Vec<&str> = package
            .placements
            .iter()
            .filter(|pl| pl.status == pb::PlacementStatus::Verified as i32)
            .map(|pl| pl.station_id.as_str())
            .collect();
        let mut tried = Vec::new();
        for station in stations.iter().filter(|s| verified.contains(&s.id())) {
            if wanted.is_empty() {
                break;
            }
            let staging = scratch.join(package_id);
            let outcome = self.fetch_from(station, source, &package, &wanted, &staging).await;
            match outcome {
                Ok((written, bad)) => {
                    for rel in written {
                        if let Some(e) = wanted.remove(&rel) {
                            let target = self.root.join(&rel);
                            self.place(&partial_of(&target), &target, e)
                                .map_err(|err| format!("{}: {err}", target.display()))?;
                        }
                    }
                    if !bad.is_empty() {
                        let files: Vec<String> = bad.iter().map(|m| format!("{} ({})", m.path, m.reason)).collect();
                        self.summary.damaged.push(format!(
                            "package {package_id} on station {}: {}",
                            station.id(),
                            files.join(", ")
                        ));
                    }
                }
                Err(problem) => {
                    self.summary.damaged.push(format!("package {package_id} on station {}: {problem}", station.id()));
                }
            }
            tried.push(station.id().to_owned());
            let _ = std::fs::remove_dir_all(&staging);
        }
        for path in wanted.keys() {
            let why = if tried.is_empty() {
                format!("no station this agent can reach holds a verified copy of package {package_id}")
            } else {
                format!("no intact copy of package {package_id} (tried {})", tried.join(", "))
            };
            self.skip(path, why);
        }
        Ok(())
    }

    async fn fetch_from(
        &mut self,
        station: &Station,
        source: &str,
        package: &pb::Package,
        wanted: &HashMap<String, &pb::FileEntry>,
        staging: &Path,
    ) -> Result<(Vec<String>, Vec<archive::Mismatch>), String> {
        let tool_ref = station.locate(source, &package.package_id).await.map_err(|e| e.to_string())?;
        if station.serves_ranges()
            && let Some(groups) = ranged(wanted, package.size_bytes)
        {
            return self.fetch_ranges(station, &tool_ref, groups).await;
        }
        std::fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
        // A local copy is read in place; others are fetched into scratch first.
        let (archive_path, fetched) = match station.local_path(&tool_ref) {
            Some(path) => (path, None),
            None => {
                let fetched = staging.with_extension("fetch");
                station.fetch(&tool_ref, &fetched).await.map_err(|e| e.to_string())?;
                (fetched.clone(), Some(fetched))
            }
        };
        self.summary.fetched_bytes += package.size_bytes;
        let expected: HashMap<String, String> = wanted.iter().map(|(p, e)| (p.clone(), e.sha256.clone())).collect();
        let (root, progress) = (self.root.clone(), self.progress.clone());
        // One read: the copy is decompressed on a thread of its own while the wanted files are
        // unpacked under their partial names beside their targets, each checked against the
        // catalog's sha256 (a damaged one is removed again).
        let result = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&archive_path).map_err(|e| format!("{}: {e}", archive_path.display()))?;
            let (tar_stream, worker) = crate::unpack::ahead(std::io::BufReader::with_capacity(1 << 20, file));
            let dest_of = |rel: &str| partial_of(&root.join(rel));
            let unpacked = archive::extract_selected(tar_stream, &dest_of, &expected, &|e| progress.extracted(e));
            let decoded = worker.join().map_err(|_| "the unpacking thread panicked".to_owned())?;
            match (unpacked, decoded) {
                (Ok(files), decoded) => Ok((files, decoded.err())),
                (Err(_), Err(damage)) => Err(damage.to_string()),
                (Err(e), Ok(())) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        // Files checked against the catalog are right whatever else of the copy is damaged;
        // the damage is still named.
        let result = result.map(|(files, damage)| {
            if let Some(e) = damage {
                self.summary.damaged.push(format!("package {} on station {}: {e}", package.package_id, station.id()));
            }
            files
        });
        if let Some(f) = fetched {
            let _ = std::fs::remove_file(f);
        }
        result
    }

    /// Reads only the wanted files' ranges of a seekable package, one group at a time (one
    /// request open at once): each from the frame its first entry begins in. Each file is
    /// checked against the catalog's sha256, and every frame read against its own checksum.
    async fn fetch_ranges(
        &mut self,
        station: &Station,
        tool_ref: &str,
        groups: Vec<Group>,
    ) -> Result<(Vec<String>, Vec<archive::Mismatch>), String> {
        let (mut written, mut bad) = (Vec::new(), Vec::new());
        for g in groups {
            let reader = station.open_range(tool_ref, g.offset, g.length).map_err(|e| e.to_string())?;
            self.summary.fetched_bytes += g.length;
            let (root, progress) = (self.root.clone(), self.progress.clone());
            let (w, b) = tokio::task::spawn_blocking(move || {
                let dest_of = |rel: &str| partial_of(&root.join(rel));
                extract_group(reader, &g, &dest_of, &|e| progress.extracted(e))
            })
            .await
            .map_err(|e| e.to_string())??;
            written.extend(w);
            bad.extend(b);
        }
        Ok((written, bad))
    }

    /// Gives an intact file (unpacked under its partial name) its own name and its metadata.
    fn place(&mut self, partial: &Path, target: &Path, e: &pb::FileEntry) -> std::io::Result<()> {
        if target.is_dir() {
            std::fs::remove_dir_all(target)?;
        }
        std::fs::rename(partial, target)?;
        self.summary.files += 1;
        self.summary.bytes += e.size_bytes;
        self.finish_file(target, e)
    }

    fn finish_file(&self, target: &Path, e: &pb::FileEntry) -> std::io::Result<()> {
        own(target, e, false)?;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(e.mode))?;
        filetime::set_file_times(target, mtime(e), mtime(e))
    }
}
