//! Storage stations: where package archives are written, measured and read back.
//!
//! Every tool stores the same bytes (the package archive), so a copy is verified the same way
//! everywhere: the sha256 of what the station holds, measured at the station — right after the
//! upload (`readback`, the default) or, for restic, which hashes every blob it stores, when the
//! catcher asks (verify commands, restore drills).

mod ahead;
mod local;
mod rclone;
mod restic;

use std::path::{Path, PathBuf};

use edgebackup_proto::v1 as pb;

use crate::config::StationConfig;

#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("station {station}: {message}")]
    Failed { station: String, message: String },
    #[error("station {station} needs `{tool}`, which is not installed or not on PATH")]
    ToolMissing { station: String, tool: String },
}

pub type Result<T, E = StationError> = std::result::Result<T, E>;

/// Reports bytes moved so far.
pub type OnBytes<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// A range of a stored copy being read (see `Station::open_range`).
pub type RangeReader = Box<dyn std::io::Read + Send>;

/// Where a feed's archive bytes are written.
pub type FeedWriter = Box<dyn std::io::Write + Send>;

/// An upload that takes the archive while it is being built (see `Station::feed`).
pub enum Feed {
    Local(local::Feed),
    Restic(restic::Feed),
}

impl Feed {
    /// Completes the upload once its writer was dropped, checking that all `sent` bytes
    /// arrived. Returns the tool reference.
    pub async fn finish(self, sent: u64) -> Result<String> {
        match self {
            Self::Local(f) => f.finish(sent).await,
            Self::Restic(f) => f.finish(sent).await,
        }
    }

    /// Abandons the upload before the end of a broken archive can be stored; returns `why`
    /// with what the tool said, if anything.
    pub async fn abort(self, why: &str) -> StationError {
        match self {
            Self::Local(f) => f.abort(why).await,
            Self::Restic(f) => f.abort(why).await,
        }
    }
}

/// One configured station.
pub struct Station {
    tool: Tool,
    readback: bool,
}

enum Tool {
    Local(local::Local),
    Rclone(rclone::Rclone),
    Restic(restic::Restic),
}

impl Station {
    pub fn from_config(c: &StationConfig) -> Self {
        let tool = match c.tool() {
            "rclone" => Tool::Rclone(rclone::Rclone::new(c)),
            "restic" => Tool::Restic(restic::Restic::new(c)),
            _ => Tool::Local(local::Local::new(c)),
        };
        Self { tool, readback: c.readback() }
    }

    /// Whether a new copy is read back and hashed here before it counts as verified.
    pub fn reads_back(&self) -> bool {
        self.readback
    }

    /// For tools that can store an archive while it is still being built (local directories,
    /// restic): the running upload and where to write the archive.
    pub fn feed(&self, owner: &str, package_id: &str) -> Option<Result<(Feed, FeedWriter)>> {
        match &self.tool {
            Tool::Local(s) => Some(s.feed(owner, package_id).map(|(f, w)| (Feed::Local(f), Box::new(w) as FeedWriter))),
            Tool::Restic(s) => {
                Some(s.feed(owner, package_id).map(|(f, w)| (Feed::Restic(f), Box::new(w) as FeedWriter)))
            }
            Tool::Rclone(_) => None,
        }
    }

    pub fn id(&self) -> &str {
        match &self.tool {
            Tool::Local(s) => &s.id,
            Tool::Rclone(s) => &s.id,
            Tool::Restic(s) => &s.id,
        }
    }

    pub fn tool(&self) -> pb::Tool {
        match &self.tool {
            Tool::Local(_) => pb::Tool::Native,
            Tool::Rclone(_) => pb::Tool::Rclone,
            Tool::Restic(_) => pb::Tool::Restic,
        }
    }

    /// Checks at startup that the station's tool exists and the station is usable; `thorough`
    /// also opens a restic repository with its password (slow: restic's key derivation).
    pub async fn check(&self, thorough: bool) -> Result<()> {
        match &self.tool {
            Tool::Local(s) => s.check().await,
            Tool::Rclone(s) => s.check().await,
            Tool::Restic(s) => s.check(thorough).await,
        }
    }

    /// `agent check-config`: is the station usable as configured? Changes nothing unless
    /// `init` (then a missing directory, remote path or restic repository is created). Says
    /// what it found.
    pub async fn preflight(&self, init: bool) -> Result<String> {
        match &self.tool {
            Tool::Local(s) => s.preflight(init).await,
            Tool::Rclone(s) => s.preflight(init).await,
            Tool::Restic(s) => s.preflight(init).await,
        }
    }

    /// Stores the archive at `archive` as package `package_id` of source `owner`; returns the
    /// tool reference.
    pub async fn put(&self, owner: &str, package_id: &str, archive: &Path, on_bytes: OnBytes<'_>) -> Result<String> {
        match (&self.tool, self.feed(owner, package_id)) {
            (Tool::Rclone(s), _) => s.put(owner, package_id, archive, on_bytes).await,
            (_, Some(feed)) => put_through(feed?, archive, on_bytes).await,
            (_, None) => unreachable!("every tool but rclone takes a feed"),
        }
    }

    /// Deletes a stored copy (after it moved on, or at expiry). A copy already gone is fine.
    pub async fn delete(&self, tool_ref: &str) -> Result<()> {
        match &self.tool {
            Tool::Local(s) => s.delete(tool_ref).await,
            Tool::Rclone(s) => s.delete(tool_ref).await,
            Tool::Restic(s) => s.delete(tool_ref).await,
        }
    }

    /// sha256 of the stored copy, measured at the station.
    pub async fn measure(&self, tool_ref: &str) -> Result<String> {
        match &self.tool {
            Tool::Local(s) => s.measure(tool_ref).await,
            Tool::Rclone(s) => s.measure(tool_ref).await,
            Tool::Restic(s) => s.measure(tool_ref).await,
        }
    }

    /// The station's own integrity check, beyond the package's bytes: `restic check` on the
    /// repository's structure (the package's data is read back by `measure`). Nothing for others.
    pub async fn integrity(&self) -> Result<()> {
        match &self.tool {
            Tool::Restic(s) => s.integrity().await,
            Tool::Local(_) | Tool::Rclone(_) => Ok(()),
        }
    }

    /// Copies the stored archive to the local file `dest`.
    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        match &self.tool {
            Tool::Local(s) => s.fetch(tool_ref, dest).await,
            Tool::Rclone(s) => s.fetch(tool_ref, dest).await,
            Tool::Restic(s) => s.fetch(tool_ref, dest).await,
        }
    }

    /// Whether `open_range` can read part of a copy: local files and rclone remotes; not
    /// restic, whose `dump` streams a whole file.
    pub fn serves_ranges(&self) -> bool {
        !matches!(self.tool, Tool::Restic(_))
    }

    /// Reads `length` bytes of the stored copy from `offset` (blocking; for a worker thread):
    /// a local file read in place, `rclone cat --offset --count`.
    pub fn open_range(&self, tool_ref: &str, offset: u64, length: u64) -> Result<RangeReader> {
        match &self.tool {
            Tool::Local(s) => s.open_range(tool_ref, offset, length),
            Tool::Rclone(s) => s.open_range(tool_ref, offset, length),
            Tool::Restic(_) => Err(failed(self.id(), "restic stations read whole copies, not ranges")),
        }
    }

    /// Where a copy can be read in place, without fetching it first (local stations).
    pub fn local_path(&self, tool_ref: &str) -> Option<PathBuf> {
        match &self.tool {
            Tool::Local(s) => Some(s.path_of(tool_ref)),
            Tool::Rclone(_) | Tool::Restic(_) => None,
        }
    }

    /// The tool reference of a package's copy, found from the package id alone (so a replaced
    /// device with an empty state dir can still restore).
    pub async fn locate(&self, owner: &str, package_id: &str) -> Result<String> {
        match &self.tool {
            Tool::Local(_) | Tool::Rclone(_) => Ok(object_name(owner, package_id).to_string_lossy().into_owned()),
            Tool::Restic(s) => s.locate(package_id).await,
        }
    }

    /// Where a human finds the copy (for messages).
    pub fn describe(&self, tool_ref: &str) -> String {
        match &self.tool {
            Tool::Local(s) => s.path_of(tool_ref).display().to_string(),
            Tool::Rclone(s) => s.target(tool_ref),
            Tool::Restic(s) => format!("restic snapshot {tool_ref} in {}", s.repo),
        }
    }
}

/// Copies the archive file at `archive` into a feed, reporting progress.
async fn put_through((feed, mut out): (Feed, FeedWriter), archive: &Path, on_bytes: OnBytes<'_>) -> Result<String> {
    let source = archive.to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // `out` is dropped when this returns: the tool sees the end of the archive.
    let copy = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut src = std::fs::File::open(&source)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = std::io::Read::read(&mut src, &mut buf)?;
            if n == 0 {
                return Ok(done);
            }
            out.write_all(&buf[..n])?;
            done += n as u64;
            let _ = tx.send(done);
        }
    });
    while let Some(done) = rx.recv().await {
        on_bytes(done);
    }
    match copy.await {
        Ok(Ok(sent)) => feed.finish(sent).await,
        Ok(Err(e)) => Err(feed.abort(&format!("copying {}: {e}", archive.display())).await),
        Err(e) => Err(feed.abort(&e.to_string()).await),
    }
}

/// The archive's name on every station.
pub fn object_name(source_id: &str, package_id: &str) -> PathBuf {
    PathBuf::from(sanitize(source_id)).join(format!("{package_id}.tar.zst"))
}

/// Keeps a source id usable as one path component.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn failed(station: &str, message: impl std::fmt::Display) -> StationError {
    StationError::Failed { station: station.to_owned(), message: message.to_string() }
}

/// Runs an external tool to completion, mapping "not found" to a clear error.
/// What `--init-stations` would do, as the refusal says it.
const INIT_HINT: &str = "`agent check-config --init-stations` creates it";

async fn run_tool(station: &str, cmd: &mut tokio::process::Command, tool: &str) -> Result<std::process::Output> {
    let out = cmd.kill_on_drop(true).output().await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StationError::ToolMissing { station: station.into(), tool: tool.into() },
        _ => failed(station, format!("cannot run {tool}: {e}")),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(failed(station, format!("{tool} failed ({}): {}", out.status, stderr.trim())));
    }
    Ok(out)
}
