//! Walks a watched folder and compares it with the file index and with the previous walk.

use std::collections::HashMap;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::archive::mtime_ns;
use crate::state::{State, StateError};

/// Name of the canary file planted in every watched folder.
pub const CANARY_NAME: &str = ".edgebackup-canary";
/// Its contents; any change to them means something rewrote files it had no business touching.
pub const CANARY_TEXT: &str = "Edge Backup canary. Do not edit or delete: changes to this file stop uploads.\n";

/// (size, mtime) of a file as seen by a walk.
pub type Seen = HashMap<String, (u64, i128)>;

/// What one walk of one folder found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every file (relative path → size, mtime).
    pub seen: Seen,
    /// Files new or changed since they were last backed up.
    pub to_back_up: Vec<(String, u64)>,
    /// Absolute paths present in the index but gone from disk.
    pub vanished: Vec<String>,
    /// Unreadable entries, reported but not fatal.
    pub errors: Vec<String>,
}

pub fn excludes(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = Glob::new(p) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Walks `root`, skipping excluded paths, the canary and anything under `skip` (the state dir).
pub fn walk(root: &Path, excludes: &GlobSet, skip: &Path, state: &State) -> Result<Walk, StateError> {
    let mut out = Walk::default();
    for entry in
        walkdir::WalkDir::new(root).follow_links(false).into_iter().filter_entry(|e| !e.path().starts_with(skip))
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(e.to_string());
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel == CANARY_NAME || excludes.is_match(&rel) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                out.errors.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        out.seen.insert(rel.clone(), (size, mtime));
        let abs = entry.path().to_string_lossy().into_owned();
        match state.file(&abs)? {
            Some(f) if f.size == size && f.mtime_ns == mtime => {}
            _ => out.to_back_up.push((rel, size)),
        }
    }
    out.to_back_up.sort();
    let prefix = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
    out.vanished =
        state.files_under(&prefix)?.into_iter().filter(|abs| !out.seen.contains_key(&abs[prefix.len()..])).collect();
    Ok(out)
}

/// Files of the previous walk that are gone now.
pub fn vanished(previous: &Seen, now: &Seen) -> Vec<String> {
    previous.keys().filter(|k| !now.contains_key(*k)).cloned().collect()
}

/// Files new or different since the previous walk.
pub fn changed_since(previous: &Seen, now: &Seen) -> Vec<String> {
    now.iter().filter(|(k, v)| previous.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect()
}

/// Ensures the canary exists; returns why it is compromised, if it is.
pub fn check_canary(root: &Path, planted: bool) -> Option<String> {
    let path = root.join(CANARY_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) if text == CANARY_TEXT => None,
        Ok(_) => Some(format!("canary {} was modified", path.display())),
        Err(_) if planted => Some(format!("canary {} was deleted or is unreadable", path.display())),
        Err(_) => {
            let _ = std::fs::write(&path, CANARY_TEXT);
            None
        }
    }
}
