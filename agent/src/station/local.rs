//! A local (or mounted) directory station, written by the agent itself.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{OnBytes, Result, failed, object_name};
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

    pub async fn check(&self) -> Result<()> {
        let probe = self.root.join(format!(".edgebackup-probe-{}", std::process::id()));
        let result = tokio::fs::create_dir_all(&self.root).await.and(tokio::fs::write(&probe, b"ok").await);
        let _ = tokio::fs::remove_file(&probe).await;
        result.map_err(|e| failed(&self.id, format!("{} is not writable: {e}", self.root.display())))
    }

    /// Copies to a `.partial` file, syncs it, then renames: a crash never leaves a truncated
    /// copy under the final name.
    pub async fn put(&self, owner: &str, package_id: &str, archive: &Path, on_bytes: OnBytes<'_>) -> Result<String> {
        let rel = object_name(owner, package_id);
        let dest = self.root.join(&rel);
        let partial = dest.with_extension("zst.partial");
        let archive = archive.to_owned();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let copy = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut src = std::fs::File::open(&archive)?;
            let mut out = std::fs::File::create(&partial)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                done += n as u64;
                let _ = tx.send(done);
            }
            out.sync_all()?;
            std::fs::rename(&partial, &dest)?;
            if let Some(parent) = dest.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        });
        while let Some(done) = rx.recv().await {
            on_bytes(done);
        }
        copy.await.map_err(|e| failed(&self.id, e))?.map_err(|e| failed(&self.id, format!("writing: {e}")))?;
        Ok(rel.to_string_lossy().into_owned())
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

    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        tokio::fs::copy(self.path_of(tool_ref), dest)
            .await
            .map(|_| ())
            .map_err(|e| failed(&self.id, format!("reading {}: {e}", self.path_of(tool_ref).display())))
    }
}
