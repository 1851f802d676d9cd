//! The catalog: versions of the entries of watched folders, as the agents' passes saw them.
//!
//! A package is the unit of transport; a version is the unit of retention and restore. Each
//! version is one entry's state during `[since, until)`; `until` is `None` while it is current.

use super::{Millis, Spelling};

spelled! {
    /// What a catalog entry is.
    EntryKind { File, Directory, Symlink, Hardlink }
}

/// One entry of a folder as one pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the watched folder, `/` separators.
    pub path: String,
    pub kind: EntryKind,
    pub size_bytes: u64,
    /// Empty while no copy was made (or for entries that have no contents).
    pub sha256: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Nanoseconds since the epoch: restores give back the exact time.
    pub modified_ns: i64,
    /// Symlink target, or a hardlink's other path.
    pub target: String,
    /// The package holding a file's bytes; empty when none does (yet).
    pub package_id: String,
    /// Where in that package the bytes are, when the package says (seekable packages).
    pub range: Option<PackRange>,
}

/// Where one file's bytes are in a seekable package: decoding starts at `offset` (a frame
/// boundary of the compressed archive), needs at most `length` compressed bytes from there, and
/// skips `skip` decompressed bytes to reach the file's tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackRange {
    pub offset: u64,
    pub length: u64,
    pub skip: u64,
}

impl FileEntry {
    /// The directory an entry is listed in ("" for the folder's top).
    pub fn directory(&self) -> &str {
        directory_of(&self.path)
    }

    /// Whether this version's bytes live in a package (so retention must keep that package).
    pub fn holds_bytes(&self) -> bool {
        self.kind == EntryKind::File && !self.package_id.is_empty()
    }
}

/// The directory part of a relative path ("" at the top).
pub fn directory_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// One version of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    pub source_id: String,
    pub folder: String,
    pub entry: FileEntry,
    pub since: Millis,
    pub until: Option<Millis>,
    /// The entry disappeared at `until` (rather than changing).
    pub deleted: bool,
    /// A file version without a copy yet (its package failed or is still being made) keeps
    /// the package of its path's last stored version: retention holds that one until a stored
    /// version follows. Empty otherwise.
    pub kept_package_id: String,
}

impl FileVersion {
    /// The package retention must keep for this version while it is current, if any.
    pub fn held_package(&self) -> Option<&str> {
        if self.entry.holds_bytes() {
            Some(&self.entry.package_id)
        } else if !self.kept_package_id.is_empty() {
            Some(&self.kept_package_id)
        } else {
            None
        }
    }
}

/// One pass's changes to one folder (one part of them: see `FolderSnapshot` in agent.proto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderChanges {
    pub folder: String,
    pub taken_at: Millis,
    pub changed: Vec<FileEntry>,
    pub deleted: Vec<String>,
    /// `(path, reason)` of entries the agent does not back up.
    pub skipped: Vec<(String, String)>,
    pub last: bool,
    /// On the last part of a pass that named its package type: where the folder stands.
    pub pass_end: Option<PassEnd>,
}

/// How a pass left a folder (its recovery point when nothing is unprotected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassEnd {
    pub package_type: super::PackageType,
    /// Files whose contents no package holds yet.
    pub unprotected: u64,
}

/// What retention must know of the versions one package holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    pub package_id: String,
    /// Current versions (of entries still present) whose bytes are in this package.
    pub live_versions: u64,
    /// When the latest of its other versions was superseded or deleted.
    pub superseded_at: Option<Millis>,
}

/// How much of what is present has a verified copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub present_files: u64,
    pub unprotected_files: u64,
    pub unprotected: Vec<FileVersion>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_paths() {
        assert_eq!(directory_of("a.txt"), "");
        assert_eq!(directory_of("a/b/c.txt"), "a/b");
        assert_eq!(EntryKind::Hardlink.as_str(), "hardlink");
    }
}
