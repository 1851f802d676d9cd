//! Walks a watched folder and compares it with the file index and with the previous walk.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::archive::mtime_ns;
use crate::catalog::{Entry, Kind};
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
    /// Every entry the catalog records (files, directories, symlinks, hardlinks), by relative
    /// path; unchanged files with the contents the index has for them, changed ones without.
    pub entries: BTreeMap<String, Entry>,
    /// Files new or changed since they were last backed up.
    pub to_back_up: Vec<(String, u64)>,
    /// Absolute paths present in the index but gone from disk.
    pub vanished: Vec<String>,
    /// Entries not backed up, with why (special files).
    pub skipped: Vec<(String, String)>,
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

/// The longest relative path (and link target) the catalog records, in bytes.
pub const MAX_PATH: usize = 4096;

/// `rel` as the catalog records it, or why it cannot.
fn unrecordable(rel: &Path) -> Result<&str, &'static str> {
    match rel.to_str() {
        None => Err("the name is not valid UTF-8"),
        Some(r) if r.len() > MAX_PATH => Err("the path is longer than 4096 bytes"),
        Some(r) => Ok(r),
    }
}

/// Why a special file is not backed up, if `t` is one.
fn special(t: &std::fs::FileType) -> Option<&'static str> {
    if t.is_fifo() {
        Some("a named pipe (fifo) has no contents to back up")
    } else if t.is_socket() {
        Some("a socket has no contents to back up")
    } else if t.is_block_device() || t.is_char_device() {
        Some("device nodes are not backed up")
    } else {
        None
    }
}

/// Walks `root`, skipping excluded paths, the canary and anything under `skip` (the state dir).
pub fn walk(root: &Path, excludes: &GlobSet, skip: &Path, state: &State) -> Result<Walk, StateError> {
    let mut out = Walk::default();
    // (device, inode) → paths of files with more than one name.
    let mut links: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut entries =
        walkdir::WalkDir::new(root).follow_links(false).into_iter().filter_entry(|e| !e.path().starts_with(skip));
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(e.to_string());
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        // The catalog names entries in UTF-8: a name it cannot carry exactly is skipped with
        // the reason (and everything under it), never recorded under a different name.
        let rel = match unrecordable(rel) {
            Ok(rel) => rel.to_owned(),
            Err(why) => {
                let shown = rel.to_string_lossy().into_owned();
                tracing::warn!(path = %entry.path().display(), reason = why, "skipped");
                out.skipped.push((shown, why.to_owned()));
                if entry.file_type().is_dir() {
                    entries.skip_current_dir();
                }
                continue;
            }
        };
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
        let t = entry.file_type();
        if let Some(why) = special(&t) {
            tracing::warn!(path = %entry.path().display(), reason = why, "skipped");
            out.skipped.push((rel, why.to_owned()));
            continue;
        }
        if t.is_dir() {
            out.entries.insert(rel, Entry::from_meta(Kind::Directory, &meta));
            continue;
        }
        if t.is_symlink() {
            let mut e = Entry::from_meta(Kind::Symlink, &meta);
            match std::fs::read_link(entry.path()) {
                Ok(target) => match target.to_str() {
                    Some(t) if !t.is_empty() && t.len() <= MAX_PATH => e.target = t.to_owned(),
                    _ => {
                        let why = "the link's target is not UTF-8 or longer than 4096 bytes";
                        tracing::warn!(path = %entry.path().display(), reason = why, "skipped");
                        out.skipped.push((rel, why.to_owned()));
                        continue;
                    }
                },
                Err(err) => {
                    out.errors.push(format!("{rel}: {err}"));
                    continue;
                }
            }
            out.entries.insert(rel, e);
            continue;
        }
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        if meta.nlink() > 1 {
            links.entry((meta.dev(), meta.ino())).or_default().push(rel.clone());
        }
        let mut file = Entry::from_meta(Kind::File, &meta);
        out.seen.insert(rel.clone(), (size, mtime));
        let abs = entry.path().to_string_lossy().into_owned();
        match state.file(&abs)? {
            // Unchanged: its bytes are where the index says (the catalog entry needs no second look).
            Some(f) if f.size == size && f.mtime_ns == mtime => {
                file.sha256 = f.sha256;
                file.package_id = f.package_id;
            }
            _ => out.to_back_up.push((rel.clone(), size)),
        }
        out.entries.insert(rel, file);
    }
    // Of the names of one file, the first (by path) holds the bytes; the others are hardlinks.
    for mut names in links.into_values().filter(|n| n.len() > 1) {
        names.sort();
        for other in &names[1..] {
            if let Some(e) = out.entries.get_mut(other) {
                e.kind = Kind::Hardlink;
                e.size = 0;
                e.target.clone_from(&names[0]);
                // The bytes are the first name's: a link refers to no package of its own.
                e.sha256.clear();
                e.package_id.clear();
            }
            out.seen.remove(other);
        }
        out.to_back_up.retain(|(rel, _)| !names[1..].contains(rel));
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

/// A walk's files grouped by directory and stem, to find the files named after another one.
pub struct Siblings<'a> {
    by_stem: HashMap<(&'a str, &'a str), Vec<&'a str>>,
}

impl<'a> Siblings<'a> {
    pub fn of(seen: &'a Seen) -> Self {
        let mut by_stem: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for rel in seen.keys() {
            by_stem.entry(dir_and_stem(rel)).or_default().push(rel);
        }
        Self { by_stem }
    }

    /// Other files in `rel`'s directory with its stem: `a.doc.locked`, `a.enc` for `a.doc`.
    pub fn named_after(&self, rel: &'a str) -> impl Iterator<Item = &'a str> + '_ {
        self.by_stem.get(&dir_and_stem(rel)).into_iter().flatten().copied().filter(move |c| *c != rel)
    }
}

/// `dir/a.b.c` → (`dir`, `a`); a leading dot belongs to the stem (`.profile.bak` → `.profile`).
fn dir_and_stem(rel: &str) -> (&str, &str) {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let skip = usize::from(name.starts_with('.'));
    let stem = name[skip..].find('.').map_or(name, |i| &name[..skip + i]);
    (dir, stem)
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
            let _ = plant_canary(root);
            None
        }
    }
}

/// Writes the canary into `root` (replacing what is there); returns its path.
pub fn plant_canary(root: &Path) -> std::io::Result<PathBuf> {
    let path = root.join(CANARY_NAME);
    std::fs::write(&path, CANARY_TEXT)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn siblings_are_the_files_named_after_one() {
        let seen: Seen =
            ["d/a.doc", "d/a.doc.locked", "d/a.enc", "d/ab.doc", "e/a.doc.locked", ".profile", ".profile.x", "top"]
                .into_iter()
                .map(|p| (p.to_owned(), (1, 1)))
                .collect();
        let s = Siblings::of(&seen);
        let mut found: Vec<_> = s.named_after("d/a.doc").collect();
        found.sort_unstable();
        assert_eq!(found, ["d/a.doc.locked", "d/a.enc"]);
        assert_eq!(s.named_after(".profile").collect::<Vec<_>>(), [".profile.x"]);
        assert_eq!(s.named_after("top").count(), 0);
        // A removed file is not in the walk; its siblings still are.
        assert_eq!(s.named_after("e/a.doc").collect::<Vec<_>>(), ["e/a.doc.locked"]);
    }

    #[test]
    fn names_are_recorded_exactly_or_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state")).unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        // A backslash is an ordinary character of a Linux name, not a separator.
        std::fs::write(root.join("a\\b.txt"), b"x").unwrap();
        let bad = root.join(OsStr::from_bytes(b"latin1-\xe9"));
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("inside.txt"), b"y").unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"target-\xff"), root.join("odd-link")).unwrap();
        let walk = walk(&root, &excludes(&[]), &dir.path().join("state"), &state).unwrap();
        assert_eq!(walk.entries.keys().collect::<Vec<_>>(), ["a\\b.txt"]);
        assert_eq!(walk.to_back_up, [("a\\b.txt".to_owned(), 1)]);
        let mut skipped: Vec<(&str, &str)> = walk.skipped.iter().map(|(p, r)| (p.as_str(), r.as_str())).collect();
        skipped.sort();
        assert_eq!(
            skipped,
            [
                ("latin1-\u{fffd}", "the name is not valid UTF-8"),
                ("odd-link", "the link's target is not UTF-8 or longer than 4096 bytes"),
            ],
        );
    }
}
