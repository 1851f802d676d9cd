//! Compactions: files of old packages packaged again from the device, so that those packages
//! can expire; only files still exactly as backed up are taken.

use std::path::Path;

use super::{Engine, EngineError, PassReport, Result};
use crate::archive::{self, mtime_ns};
use crate::catalog;
use crate::state::{State, now_ms};

impl Engine {
    /// A compaction: packages `paths` of `folder` again, from the device, so that the old
    /// packages holding their current versions can expire. Only files still as the last pass
    /// indexed them (size and mtime) are taken; a file changed or gone since is the next pass's.
    /// The catalog moves each version to the new package once it is stored and verified.
    pub async fn compact(&self, folder: &str, paths: &[String]) -> Result<(PassReport, usize)> {
        let _guard = self.pass_lock.lock().await;
        let mut report = PassReport::default();
        let Some(config) = self.config.folders.iter().find(|f| catalog::folder_name(&f.path) == folder) else {
            return Err(EngineError::Io(format!("folder: {folder} is not watched by this agent")));
        };
        if let Some(held) = self.held()? {
            report.held = Some(held);
            return Ok((report, 0));
        }
        let root = config.path.clone();
        let (state, check_root, wanted) = (self.state.clone(), root.clone(), paths.to_vec());
        let files = tokio::task::spawn_blocking(move || unchanged(&state, &check_root, &wanted))
            .await
            .map_err(|e| EngineError::Io(e.to_string()))??;
        let left = paths.len() - files.len();
        self.package_files(&root, config, &files, now_ms(), &mut report).await?;
        Ok((report, left))
    }
}

/// Of `paths` (relative to `root`), the files still exactly as last backed up: size and mtime
/// as indexed, and — read again — the indexed sha256. Bytes that changed under an unchanged
/// size and mtime (silent corruption, or tampering that restored the times) are never packaged
/// as the same version: they are logged and left alone, and the catalog keeps the good copy.
fn unchanged(state: &State, root: &Path, paths: &[String]) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for rel in paths {
        let relative = Path::new(rel);
        if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            continue;
        }
        let abs = root.join(relative);
        let Ok(meta) = std::fs::symlink_metadata(&abs) else { continue };
        let Some(indexed) = state.file(&abs.to_string_lossy())? else { continue };
        if !meta.is_file() || indexed.size != meta.len() || indexed.mtime_ns != mtime_ns(&meta) {
            continue; // changed or gone: the next pass's
        }
        let Ok((sha, _)) = std::fs::File::open(&abs).and_then(archive::sha256_of) else { continue };
        if sha != indexed.sha256 {
            tracing::warn!(
                file = %abs.display(),
                backed_up = %indexed.sha256,
                now = %sha,
                "contents differ from the backed-up version though size and mtime do not (silent corruption or tampering); not packaged again"
            );
            continue;
        }
        files.push((rel.clone(), meta.len()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FileState;

    /// A compaction packages again only files exactly as backed up: not one changed or gone,
    /// nor one whose bytes changed under the same size and mtime (rot, or tampering).
    #[test]
    fn compaction_takes_only_files_still_as_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let state = State::open(&dir.path().join("state")).unwrap();
        for name in ["same.txt", "rotted.txt", "grown.txt", "gone.txt"] {
            let path = root.join(name);
            std::fs::write(&path, b"backed up").unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            let (sha256, _) = archive::sha256_of(std::fs::File::open(&path).unwrap()).unwrap();
            let f = FileState {
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                sha256,
                package_id: "p".into(),
                high_entropy: false,
            };
            state.write(|tx| tx.put_file(&path.to_string_lossy(), &f)).unwrap();
        }
        // The same size, the old mtime put back: only the contents differ.
        let rotted = root.join("rotted.txt");
        let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&rotted).unwrap());
        std::fs::write(&rotted, b"backed uP").unwrap();
        filetime::set_file_mtime(&rotted, mtime).unwrap();
        std::fs::write(root.join("grown.txt"), b"backed up, and more").unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        let asked: Vec<String> =
            ["same.txt", "rotted.txt", "grown.txt", "gone.txt", "../escape", "/abs"].map(String::from).to_vec();
        let taken = unchanged(&state, &root, &asked).unwrap();
        assert_eq!(taken, [("same.txt".to_owned(), 9)]);
    }
}
