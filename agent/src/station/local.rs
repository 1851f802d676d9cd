//! A local (or mounted) directory station, written by the agent itself.

use std::path::{Path, PathBuf};

use super::{Result, StationError, failed, object_name};
use crate::archive::sha256_of;
use crate::config::StationConfig;

pub struct Local {
    pub id: String,
    root: PathBuf,
}

impl Local {
    pub fn new(c: &StationConfig) -> Self {
        Self { id: c.id.clone(), root: PathBuf::from(&c.uri) }
    }

    pub fn path_of(&self, tool_ref: &str) -> PathBuf {
        self.root.join(tool_ref)
    }

    pub async fn preflight(&self, init: bool) -> Result<String> {
        let root = self.root.display();
        if !self.root.is_dir() {
            if !init {
                return Err(failed(&self.id, format!("{root} does not exist: {}", super::INIT_HINT)));
            }
            tokio::fs::create_dir_all(&self.root)
                .await
                .map_err(|e| failed(&self.id, format!("creating {root}: {e}")))?;
        }
        self.check().await?;
        Ok(format!("{root} is writable"))
    }

    pub async fn check(&self) -> Result<()> {
        let probe = self.root.join(format!(".edgebackup-probe-{}", std::process::id()));
        let result = tokio::fs::create_dir_all(&self.root).await.and(tokio::fs::write(&probe, b"ok").await);
        let _ = tokio::fs::remove_file(&probe).await;
        result.map_err(|e| failed(&self.id, format!("{} is not writable: {e}", self.root.display())))
    }

    /// Starts writing package `package_id` as a `.partial` file (see `Feed::finish`).
    pub fn feed(&self, owner: &str, package_id: &str) -> Result<(Feed, std::fs::File)> {
        let rel = object_name(owner, package_id);
        let dest = self.root.join(&rel);
        let partial = dest.with_extension("zst.partial");
        let file = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&partial))
            .map_err(|e| failed(&self.id, format!("creating {}: {e}", partial.display())))?;
        Ok((Feed { station: self.id.clone(), rel, dest, partial }, file))
    }

    pub async fn measure(&self, tool_ref: &str) -> Result<String> {
        let path = self.path_of(tool_ref);
        let shown = path.display().to_string();
        let sha = tokio::task::spawn_blocking(move || std::fs::File::open(&path).and_then(sha256_of))
            .await
            .map_err(|e| failed(&self.id, e))?
            .map_err(|e| failed(&self.id, format!("reading {shown}: {e}")))?;
        Ok(sha.0)
    }

    pub async fn delete(&self, tool_ref: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path_of(tool_ref)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(failed(&self.id, format!("deleting {}: {e}", self.path_of(tool_ref).display())))
            }
            _ => Ok(()),
        }
    }

    pub fn open_range(&self, tool_ref: &str, offset: u64, length: u64) -> Result<super::RangeReader> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path_of(tool_ref);
        let file = std::fs::File::open(&path)
            .and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f))
            .map_err(|e| failed(&self.id, format!("reading {}: {e}", path.display())))?;
        Ok(Box::new(file.take(length)))
    }

    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        tokio::fs::copy(self.path_of(tool_ref), dest)
            .await
            .map(|_| ())
            .map_err(|e| failed(&self.id, format!("reading {}: {e}", self.path_of(tool_ref).display())))
    }
}

/// A copy being written while the archive is built (see `Local::feed`).
pub struct Feed {
    station: String,
    rel: PathBuf,
    dest: PathBuf,
    partial: PathBuf,
}

impl Feed {
    /// Checks the size, syncs, then renames: a crash never leaves a truncated copy under the
    /// final name.
    pub async fn finish(self, sent: u64) -> Result<String> {
        let Self { station, rel, dest, partial } = self;
        let done = tokio::task::spawn_blocking(move || -> std::io::Result<Option<u64>> {
            let file = std::fs::File::open(&partial)?;
            let written = file.metadata()?.len();
            if written != sent {
                return Ok(Some(written));
            }
            file.sync_all()?;
            std::fs::rename(&partial, &dest)?;
            if let Some(parent) = dest.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(None)
        })
        .await
        .map_err(|e| failed(&station, e))?
        .map_err(|e| failed(&station, format!("writing: {e}")))?;
        match done {
            Some(written) => Err(failed(&station, format!("{written} bytes written of the {sent} sent"))),
            None => Ok(rel.to_string_lossy().into_owned()),
        }
    }

    pub async fn abort(self, why: &str) -> StationError {
        let _ = tokio::fs::remove_file(&self.partial).await;
        failed(&self.station, why)
    }
}
