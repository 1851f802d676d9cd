//! What the agent tells the catcher's catalog: every entry of a watched folder with its metadata
//! and, for files, the package holding its bytes. The catcher keeps every version; the agent
//! keeps what it last reported (`state::REPORTED`) and sends only the differences.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use edgebackup_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::scan::Walk;
use crate::state::{LocalPackage, State, StateError};

/// Entries per `FolderSnapshot` part: keeps an event well under the stream's message limit.
pub const PART_ENTRIES: usize = 1000;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Directory,
    Symlink,
    /// Another name of a file of the same pass (`target` is that file's path).
    Hardlink,
}

/// One entry as reported (or to be reported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i128,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub target: String,
    /// Files: contents; empty while no package holds them.
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub package_id: String,
}

impl Entry {
    /// An entry's metadata from `lstat` (contents unknown yet).
    pub fn from_meta(kind: Kind, meta: &std::fs::Metadata) -> Self {
        Self {
            kind,
            size: if kind == Kind::File { meta.len() } else { 0 },
            // The index's clock, so that a file's entry and its index record compare equal.
            mtime_ns: crate::archive::mtime_ns(meta),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            target: String::new(),
            sha256: String::new(),
            package_id: String::new(),
        }
    }

    pub fn to_pb(&self, path: &str) -> pb::FileEntry {
        let kind = match self.kind {
            Kind::File => pb::EntryKind::File,
            Kind::Directory => pb::EntryKind::Directory,
            Kind::Symlink => pb::EntryKind::Symlink,
            Kind::Hardlink => pb::EntryKind::Hardlink,
        };
        pb::FileEntry {
            path: path.to_owned(),
            kind: kind as i32,
            size_bytes: self.size,
            sha256: self.sha256.clone(),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            modified_at: Some(timestamp(self.mtime_ns)),
            target: self.target.clone(),
            package_id: self.package_id.clone(),
            range: None,
        }
    }
}

pub fn timestamp(ns: i128) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ns.div_euclid(1_000_000_000) as i64, nanos: ns.rem_euclid(1_000_000_000) as i32 }
}

/// Splits one pass's changes into `FolderSnapshot` parts; the final one is marked `last` and
/// carries the skipped entries and the entry count. Nothing to say gives no part at all.
pub fn parts(
    folder: &str,
    taken_at_ms: i64,
    changed: Vec<pb::FileEntry>,
    deleted: Vec<String>,
    skipped: Vec<pb::SkippedEntry>,
    entries: u64,
) -> Vec<pb::FolderSnapshot> {
    if changed.is_empty() && deleted.is_empty() && skipped.is_empty() {
        return Vec::new();
    }
    let taken_at = Some(prost_types::Timestamp {
        seconds: taken_at_ms.div_euclid(1000),
        nanos: (taken_at_ms.rem_euclid(1000) * 1_000_000) as i32,
    });
    let part = |changed, deleted| pb::FolderSnapshot {
        folder: folder.to_owned(),
        taken_at,
        changed,
        deleted,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut changed = changed.into_iter().peekable();
    while changed.peek().is_some() {
        out.push(part(changed.by_ref().take(PART_ENTRIES).collect(), Vec::new()));
    }
    let mut deleted = deleted.into_iter().peekable();
    while deleted.peek().is_some() {
        out.push(part(Vec::new(), deleted.by_ref().take(PART_ENTRIES).collect()));
    }
    let mut last = out.pop().unwrap_or_else(|| part(Vec::new(), Vec::new()));
    last.skipped = skipped.into_iter().take(PART_ENTRIES).collect();
    last.last = true;
    last.entries = entries;
    out.push(last);
    out
}

/// A watched folder as the catalog names it: its path without a trailing `/`.
pub fn folder_name(root: &Path) -> String {
    let s = root.to_string_lossy();
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() }
}

/// A package's files as catalog entries (absolute path, entry) and the parts that report them
/// (not the pass's last).
pub fn packaged(p: &LocalPackage) -> (Vec<(String, Entry)>, Vec<pb::FolderSnapshot>) {
    let folder = Path::new(&p.folder);
    let entries: Vec<(String, Entry)> = p
        .manifest
        .iter()
        .map(|f| {
            let entry = Entry {
                kind: Kind::File,
                size: f.size,
                mtime_ns: f.mtime_ns,
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
                target: String::new(),
                sha256: f.sha256.clone(),
                package_id: p.package_id.clone(),
            };
            (folder.join(&f.path).to_string_lossy().into_owned(), entry)
        })
        .collect();
    let changed = p
        .manifest
        .iter()
        .zip(&entries)
        .map(|(f, (_, e))| pb::FileEntry {
            range: f.range.map(|r| pb::PackRange { offset: r.offset, length: r.length, skip: r.skip }),
            ..e.to_pb(&f.path)
        })
        .collect();
    let mut parts = parts(&folder_name(folder), p.created_at_ms, changed, Vec::new(), Vec::new(), 0);
    if let Some(last) = parts.last_mut() {
        last.last = false;
    }
    (entries, parts)
}

/// Tells the catalog what a pass saw that it was not told before: entries new or different
/// (metadata included; a file's contents as the index has them, or none while no package holds
/// them), entries gone, and special files skipped — in one state transaction with the parts.
/// Every pass ends with a last part, also when nothing changed: it carries how many files have
/// no package yet (none: the pass is the folder's recovery point) and the package type.
pub fn report_pass(
    state: &State,
    root: &Path,
    walk: &Walk,
    taken_at: i64,
    package_type: pb::PackageType,
) -> Result<(), StateError> {
    let folder = folder_name(root);
    let prefix = format!("{}/", folder.trim_end_matches('/'));
    let reported: HashMap<String, Entry> = state.reported_under(&prefix)?.into_iter().collect();
    let mut changed = Vec::new();
    let mut updates = Vec::new();
    let mut unprotected = 0u64;
    for (rel, entry) in &walk.entries {
        let abs = format!("{prefix}{rel}");
        let mut want = entry.clone();
        // A file that changed was packaged (or not) after the walk: the index says which.
        let indexed = if want.kind == Kind::File && want.package_id.is_empty() { state.file(&abs)? } else { None };
        if let Some(f) = &indexed
            && f.size == want.size
            && f.mtime_ns == want.mtime_ns
        {
            want.sha256 = f.sha256.clone();
            want.package_id = f.package_id.clone();
        }
        // Protected when its contents as walked are stored, or a version written since (a file
        // appended while it was packaged is stored as it was then, not as the walk saw it).
        let stored_since = indexed.is_some_and(|f| !f.package_id.is_empty() && f.mtime_ns >= entry.mtime_ns);
        if want.kind == Kind::File && want.package_id.is_empty() && !stored_since {
            unprotected += 1;
        }
        if reported.get(&abs) != Some(&want) {
            changed.push(want.to_pb(rel));
            updates.push((abs, want));
        }
    }
    let gone: Vec<&String> = reported.keys().filter(|abs| !walk.entries.contains_key(&abs[prefix.len()..])).collect();
    let deleted: Vec<String> = gone.iter().map(|abs| abs[prefix.len()..].to_owned()).collect();
    let skipped_key = format!("skipped:{folder}");
    let skipped_before: Vec<(String, String)> = state.meta(&skipped_key)?.unwrap_or_default();
    let skipped: Vec<pb::SkippedEntry> = if skipped_before == walk.skipped {
        Vec::new()
    } else {
        walk.skipped
            .iter()
            .map(|(path, reason)| pb::SkippedEntry { path: path.clone(), reason: reason.clone() })
            .collect()
    };
    let mut parts = parts(&folder, taken_at, changed, deleted, skipped, walk.entries.len() as u64);
    if parts.is_empty() {
        // Nothing changed, but the pass still happened: the catcher's recovery point moves.
        parts.push(pb::FolderSnapshot {
            folder: folder.clone(),
            taken_at: Some(timestamp(i128::from(taken_at) * 1_000_000)),
            last: true,
            entries: walk.entries.len() as u64,
            ..Default::default()
        });
    }
    if let Some(last) = parts.last_mut() {
        last.unprotected = unprotected;
        last.package_type = package_type as i32;
    }
    state.write(|tx| {
        for (abs, e) in &updates {
            tx.put_reported(abs, e)?;
        }
        for abs in &gone {
            tx.remove_reported(abs)?;
        }
        tx.set_meta(&skipped_key, &walk.skipped)?;
        for part in parts {
            tx.push(pb::agent_event::Kind::FolderSnapshot(part))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> pb::FileEntry {
        pb::FileEntry { path: format!("f{i}"), ..Default::default() }
    }

    #[test]
    fn parts_are_bounded_and_only_the_final_one_is_last() {
        assert!(parts("/d", 0, Vec::new(), Vec::new(), Vec::new(), 0).is_empty());
        let p = parts("/d", 1_500, (0..2500).map(entry).collect(), vec!["gone".into()], Vec::new(), 2500);
        assert_eq!(p.iter().map(|p| p.changed.len()).collect::<Vec<_>>(), [1000, 1000, 500, 0]);
        assert_eq!(p.iter().filter(|p| p.last).count(), 1);
        assert!(p[3].last && p[3].deleted == ["gone"] && p[3].entries == 2500);
        assert_eq!(p[0].taken_at, Some(prost_types::Timestamp { seconds: 1, nanos: 500_000_000 }));
        let mut p = LocalPackage::planned("/d".into(), "user_data".into(), vec!["a".into()]);
        p.manifest.push(crate::state::ManifestFile {
            path: "a".into(),
            size: 1,
            sha256: "00".repeat(32),
            mtime_ns: 0,
            mode: 0o600,
            uid: 0,
            gid: 0,
            range: Some(crate::state::FileRange { offset: 0, length: 40, skip: 0 }),
        });
        let (entries, q) = packaged(&p);
        assert!(q.len() == 1 && !q[0].last && q[0].changed[0].mode == 0o600);
        assert_eq!(q[0].changed[0].range, Some(pb::PackRange { offset: 0, length: 40, skip: 0 }));
        assert_eq!(entries[0].0, "/d/a");
    }
}
