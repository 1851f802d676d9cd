//! `FolderSnapshot` off the wire: what one pass saw, validated field by field.

use edgebackup_proto::v1 as pb;

use crate::domain::*;
use crate::error::{Error, Result};
use crate::service::validate as v;

/// Entries per part, as agent.proto promises (bounds one event's work in the writer).
const MAX_PART: usize = 1000;

pub fn folder_snapshot_in(s: pb::FolderSnapshot) -> Result<FolderChanges> {
    let folder = v::path("folder_snapshot.folder", &s.folder)?;
    if !folder.starts_with('/') {
        return Err(Error::invalid("folder_snapshot.folder", "must be an absolute path"));
    }
    let taken_at = v::timestamp_ms("folder_snapshot.taken_at", s.taken_at.as_ref())?
        .ok_or_else(|| Error::invalid("folder_snapshot.taken_at", "required"))?;
    for (name, n) in [("changed", s.changed.len()), ("deleted", s.deleted.len()), ("skipped", s.skipped.len())] {
        if n > MAX_PART {
            return Err(Error::invalid(format!("folder_snapshot.{name}"), format!("more than {MAX_PART} entries")));
        }
    }
    let mut changed = Vec::with_capacity(s.changed.len());
    for (i, e) in s.changed.into_iter().enumerate() {
        let f = |n: &str| format!("folder_snapshot.changed[{i}].{n}");
        let kind = v::entry_kind(&f("kind"), e.kind, true)?.expect("required");
        let package_id =
            if e.package_id.is_empty() { String::new() } else { v::package_id(&f("package_id"), &e.package_id)? };
        if kind != EntryKind::File && !package_id.is_empty() {
            return Err(Error::invalid(f("package_id"), "only files have contents in a package"));
        }
        let target = match kind {
            EntryKind::Symlink => {
                if e.target.is_empty() || e.target.len() > 4096 || e.target.contains('\0') {
                    return Err(Error::invalid(f("target"), "a symlink needs a target of 1..4096 bytes"));
                }
                e.target
            }
            EntryKind::Hardlink => v::relative_path(&f("target"), &e.target)?,
            _ if !e.target.is_empty() => return Err(Error::invalid(f("target"), "only links have a target")),
            _ => String::new(),
        };
        let range = match e.range {
            None => None,
            Some(_) if package_id.is_empty() => {
                return Err(Error::invalid(f("range"), "only a file in a package has a range"));
            }
            Some(r) if r.length == 0 || r.offset.checked_add(r.length).is_none_or(|end| end > i64::MAX as u64) => {
                return Err(Error::invalid(f("range"), "length must be at least 1 and offset + length in range"));
            }
            Some(r) if r.skip > i64::MAX as u64 => return Err(Error::invalid(f("range.skip"), "out of range")),
            Some(r) => Some(PackRange { offset: r.offset, length: r.length, skip: r.skip }),
        };
        if e.mode > 0o7777 {
            return Err(Error::invalid(f("mode"), "permission bits only (at most 07777)"));
        }
        let modified_ns = match &e.modified_at {
            Some(t) => t.seconds.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(t.nanos))),
            None => Some(0),
        }
        .ok_or_else(|| Error::invalid(f("modified_at"), "out of range"))?;
        changed.push(FileEntry {
            path: v::relative_path(&f("path"), &e.path)?,
            kind,
            size_bytes: v::size(&f("size_bytes"), e.size_bytes)?,
            sha256: v::sha256(&f("sha256"), &e.sha256)?,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            modified_ns,
            target,
            package_id,
            range,
        });
    }
    let mut deleted = Vec::with_capacity(s.deleted.len());
    for (i, path) in s.deleted.iter().enumerate() {
        deleted.push(v::relative_path(&format!("folder_snapshot.deleted[{i}]"), path)?);
    }
    let skipped = s
        .skipped
        .into_iter()
        .map(|k| (k.path.chars().take(4096).collect(), k.reason.chars().take(256).collect()))
        .collect();
    let pass_end = match v::package_type("folder_snapshot.package_type", s.package_type, false)? {
        Some(package_type) if s.last => Some(PassEnd { package_type, unprotected: s.unprotected }),
        _ => None,
    };
    Ok(FolderChanges { folder, taken_at, changed, deleted, skipped, last: s.last, pass_end })
}
