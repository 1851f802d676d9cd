//! A pass's changes to one folder, applied to the catalog: each changed entry ends its current
//! version and opens a new one, each deleted entry ends its own; the packages holding those
//! versions' bytes are kept by retention while they hold a current one (see `RuleSet::held`).

use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::rules::{Held, Next};

pub(super) async fn apply_snapshot(u: &mut Unit<'_>, source_id: &str, mut c: FolderChanges, actor: &str) -> Result<()> {
    // The agent's clock, but never ahead of ours: a version from the future would hide the
    // state before it from every as-of query until then.
    c.taken_at = c.taken_at.min(u.now);
    let mut referenced: Vec<String> =
        c.changed.iter().filter(|e| e.holds_bytes()).map(|e| e.package_id.clone()).collect();
    referenced.sort_unstable();
    referenced.dedup();
    u.prefetch_packages(referenced.iter().cloned()).await?;
    u.prefetch_holds(referenced).await?;
    for (i, e) in c.changed.iter().enumerate() {
        if e.holds_bytes()
            && let Some(p) = u.package(&e.package_id).await?
            && p.source_id != source_id
        {
            return Err(Error::invalid(
                format!("folder_snapshot.changed[{i}].package_id"),
                "the package belongs to another source",
            ));
        }
    }
    let paths: Vec<String> = c.changed.iter().map(|e| e.path.clone()).chain(c.deleted.iter().cloned()).collect();
    u.prefetch_current(source_id, &c.folder, &paths).await?;
    // Per package a compaction emptied: the package its versions moved to, and how many.
    let mut moved: std::collections::BTreeMap<String, (String, u64)> = Default::default();
    for mut e in c.changed {
        let current = u.current_version(source_id, &c.folder, &e.path).await?;
        let mut since = c.taken_at;
        let mut kept_package_id = String::new();
        if let Some(cur) = current {
            // A metadata change reported without the range: the bytes are where they were.
            if e.range.is_none() && e.holds_bytes() && e.package_id == cur.entry.package_id {
                e.range = cur.entry.range;
            }
            if cur.entry == e {
                continue; // a part sent again, or a pass that saw the same state
            }
            if same_contents_elsewhere(&cur.entry, &e) {
                // Moved only onto a package with a verified copy; otherwise nothing changed.
                if stored(u, &e.package_id).await? {
                    relocate(u, source_id, &c.folder, &cur, &e).await?;
                    moved.entry(cur.entry.package_id.clone()).or_insert((e.package_id.clone(), 0)).1 += 1;
                }
                continue;
            }
            // A file whose new contents have no copy yet keeps the last stored ones.
            if e.kind == EntryKind::File && !e.holds_bytes() {
                kept_package_id = cur.held_package().unwrap_or_default().to_owned();
            }
            // Taken before the current version lets go of it, so the package is never free.
            if !kept_package_id.is_empty() {
                hold_one_more(u, &kept_package_id).await?;
            }
            // Never an interval that ends before it begins (an agent clock stepping back).
            since = since.max(cur.since);
            end(u, source_id, &c.folder, &cur, since, false).await?;
        }
        if e.holds_bytes() {
            hold_one_more(u, &e.package_id).await?;
        }
        u.open_version(FileVersion {
            source_id: source_id.to_owned(),
            folder: c.folder.clone(),
            entry: e,
            since,
            until: None,
            deleted: false,
            kept_package_id,
        });
    }
    for path in &c.deleted {
        if let Some(cur) = u.current_version(source_id, &c.folder, path).await? {
            let at = c.taken_at.max(cur.since);
            end(u, source_id, &c.folder, &cur, at, true).await?;
        }
    }
    for (from, (into, files)) in moved {
        u.journal(JournalEntry {
            source_id: source_id.to_owned(),
            package_id: from,
            details_json: serde_json::json!({ "folder": c.folder, "into": into, "files": files }).to_string(),
            ..JournalEntry::new(EventType::PackageCompacted, actor)
        });
    }
    if let Some(end) = c.pass_end {
        pass_ended(u, source_id, &c.folder, c.taken_at, end).await?;
    }
    if !c.skipped.is_empty() {
        let first: Vec<serde_json::Value> = c
            .skipped
            .iter()
            .take(20)
            .map(|(path, reason)| serde_json::json!({ "path": path, "reason": reason }))
            .collect();
        u.journal(JournalEntry {
            source_id: source_id.to_owned(),
            details_json: serde_json::json!({ "folder": c.folder, "count": c.skipped.len(), "first": first })
                .to_string(),
            ..JournalEntry::new(EventType::FolderEntriesSkipped, actor)
        });
    }
    Ok(())
}

/// Moves the folder's recovery point: the pass is its last one, and when it left nothing
/// unprotected, its last complete backup. A pass reported late never moves either back.
async fn pass_ended(u: &mut Unit<'_>, source_id: &str, folder: &str, taken_at: Millis, end: PassEnd) -> Result<()> {
    let mut p = u.recovery_point(source_id, folder).await?.unwrap_or(RecoveryPoint {
        source_id: source_id.to_owned(),
        folder: folder.to_owned(),
        package_type: end.package_type,
        first_pass_at: taken_at,
        last_backup_at: None,
        last_pass_at: taken_at,
        unprotected: end.unprotected,
    });
    if taken_at >= p.last_pass_at {
        p.last_pass_at = taken_at;
        p.unprotected = end.unprotected;
        p.package_type = end.package_type;
    }
    if end.unprotected == 0 && p.last_backup_at.is_none_or(|b| b < taken_at) {
        p.last_backup_at = Some(taken_at);
    }
    u.put_recovery_point(p);
    Ok(())
}

/// The same entry (contents, metadata) whose bytes another package holds: a compaction (or a
/// device packaging an unchanged file again), not a change.
fn same_contents_elsewhere(cur: &FileEntry, e: &FileEntry) -> bool {
    e.kind == EntryKind::File
        && cur.holds_bytes()
        && e.holds_bytes()
        && cur.package_id != e.package_id
        && FileEntry { package_id: cur.package_id.clone(), range: cur.range, ..e.clone() } == *cur
}

/// Whether a package is completed and has a verified copy: only then may a version's bytes be
/// taken to live there (its expiry cannot have begun: a package holding a current version is
/// never expired, and it is counted before this batch ends).
async fn stored(u: &mut Unit<'_>, package_id: &str) -> Result<bool> {
    let Some(p) = u.package(package_id).await? else { return Ok(false) };
    if p.status != PackageStatus::Completed {
        return Ok(false);
    }
    let placements = u.placements_of(package_id).await?;
    Ok(placements.iter().any(|pl| pl.status == PlacementStatus::Verified))
}

/// The current version keeps its interval and metadata; its bytes are now in `e.package_id`.
/// The new package holds it before the old one lets go, so it is never without a copy. The old
/// package lets go as if the version had been superseded now: it keeps its copies for the
/// route's waits, the time the new package takes to follow the same route, so no tier loses its
/// copy of the version in between (a compaction never trades an offsite copy for a hot one).
async fn relocate(u: &mut Unit<'_>, source_id: &str, folder: &str, cur: &FileVersion, e: &FileEntry) -> Result<()> {
    hold_one_more(u, &e.package_id).await?;
    u.relocate_version(source_id, folder, &e.path, &e.package_id, e.range);
    if let Some(mut h) = u.hold(&cur.entry.package_id).await? {
        h.live_versions = h.live_versions.saturating_sub(1);
        h.superseded_at = Some(h.superseded_at.map_or(u.now, |s| s.max(u.now)));
        let free = h.live_versions == 0;
        u.put_hold(h.clone());
        if free {
            wake(u, &h).await?;
        }
    }
    Ok(())
}

/// One more current version needs `package_id`. A package already at the end of its route
/// (a snapshot heard after its completion, a one-stop route) is no longer planned to expire.
async fn hold_one_more(u: &mut Unit<'_>, package_id: &str) -> Result<()> {
    let mut h =
        u.hold(package_id).await?.unwrap_or_else(|| Hold { package_id: package_id.to_owned(), ..Hold::default() });
    h.live_versions += 1;
    let first = h.live_versions == 1;
    u.put_hold(h);
    if first
        && let Some(mut p) = u.package(package_id).await?
        && let (PackageStatus::Completed, Some(tier), Some(_)) = (p.status, p.tier, p.next_transition_at)
        && u.rule(p.package_type).await?.ends_route(tier)
    {
        super::lifecycle::keep_for_good(u, &mut p, 1);
        u.put_package(p);
    }
    Ok(())
}

/// Ends a current version at `at`; the package it held (its own or the one it kept) no longer
/// holds that current version.
async fn end(
    u: &mut Unit<'_>,
    source_id: &str,
    folder: &str,
    cur: &FileVersion,
    at: Millis,
    deleted: bool,
) -> Result<()> {
    u.close_version(source_id, folder, &cur.entry.path, at, deleted);
    let Some(package_id) = cur.held_package() else { return Ok(()) };
    let Some(mut h) = u.hold(package_id).await? else { return Ok(()) };
    h.live_versions = h.live_versions.saturating_sub(1);
    h.superseded_at = Some(h.superseded_at.map_or(at, |s| s.max(at)));
    let free = h.live_versions == 0;
    u.put_hold(h.clone());
    if free {
        wake(u, &h).await?;
    }
    Ok(())
}

/// A package whose expiry was held for good (it held a current version) and holds none any
/// more comes due again: at once, or when its superseded versions' retention ends.
async fn wake(u: &mut Unit<'_>, h: &Hold) -> Result<()> {
    let Some(mut p) = u.package(&h.package_id).await? else { return Ok(()) };
    let (PackageStatus::Completed, Some(tier), None) = (p.status, p.tier, p.next_transition_at) else {
        return Ok(());
    };
    let rules = u.rule(p.package_type).await?;
    if rules.after(tier) != Next::Expire {
        return Ok(());
    }
    p.next_transition_at = Some(match rules.held(Some(h), u.now) {
        Held::Until(t) => t,
        Held::No | Held::Forever => u.now,
    });
    u.put_package(p);
    Ok(())
}
