//! The catalog's rows: conversions and reads ("this directory as of T", "versions of this
//! path", "present files without a verified copy").

use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use std::collections::HashMap;

use super::entity::{catalog_version, package, package_hold, package_manifest, placement};
use crate::domain::*;
use crate::error::{Error, Result};

pub fn version_from(m: catalog_version::Model) -> Result<(i64, FileVersion)> {
    let kind = EntryKind::parse(&m.kind).ok_or_else(|| Error::Corrupt(format!("stored entry kind {:?}", m.kind)))?;
    let entry = FileEntry {
        path: m.path,
        kind,
        size_bytes: u64::try_from(m.size_bytes).unwrap_or(0),
        sha256: m.sha256,
        mode: u32::try_from(m.mode).unwrap_or(0),
        uid: u32::try_from(m.uid).unwrap_or(0),
        gid: u32::try_from(m.gid).unwrap_or(0),
        modified_ns: m.modified_ns,
        target: m.target,
        package_id: m.package_id,
        range: (m.pack_length > 0).then(|| PackRange {
            offset: u64::try_from(m.pack_offset).unwrap_or(0),
            length: u64::try_from(m.pack_length).unwrap_or(0),
            skip: u64::try_from(m.pack_skip).unwrap_or(0),
        }),
    };
    let v = FileVersion {
        source_id: m.source_id,
        folder: m.folder,
        entry,
        since: m.since_at,
        until: m.until_at,
        deleted: m.deleted,
        kept_package_id: m.kept_package_id,
    };
    Ok((m.version_id, v))
}

pub fn version_active(v: &FileVersion) -> catalog_version::ActiveModel {
    let e = &v.entry;
    catalog_version::ActiveModel {
        version_id: NotSet,
        source_id: Set(v.source_id.clone()),
        folder: Set(v.folder.clone()),
        path: Set(e.path.clone()),
        directory: Set(e.directory().to_owned()),
        kind: Set(e.kind.as_str().to_owned()),
        size_bytes: Set(i64::try_from(e.size_bytes).unwrap_or(i64::MAX)),
        sha256: Set(e.sha256.clone()),
        mode: Set(i32::try_from(e.mode).unwrap_or(0)),
        uid: Set(i64::from(e.uid)),
        gid: Set(i64::from(e.gid)),
        modified_ns: Set(e.modified_ns),
        target: Set(e.target.clone()),
        package_id: Set(e.package_id.clone()),
        since_at: Set(v.since),
        until_at: Set(v.until),
        deleted: Set(v.deleted),
        kept_package_id: Set(v.kept_package_id.clone()),
        pack_offset: Set(e.range.map_or(0, |r| i64::try_from(r.offset).unwrap_or(i64::MAX))),
        pack_length: Set(e.range.map_or(0, |r| i64::try_from(r.length).unwrap_or(i64::MAX))),
        pack_skip: Set(e.range.map_or(0, |r| i64::try_from(r.skip).unwrap_or(i64::MAX))),
    }
}

pub fn hold_from(m: package_hold::Model) -> Hold {
    Hold {
        package_id: m.package_id,
        live_versions: u64::try_from(m.live_versions).unwrap_or(0),
        superseded_at: m.superseded_at,
    }
}

pub fn hold_active(h: &Hold) -> package_hold::ActiveModel {
    package_hold::ActiveModel {
        package_id: Set(h.package_id.clone()),
        live_versions: Set(i64::try_from(h.live_versions).unwrap_or(i64::MAX)),
        superseded_at: Set(h.superseded_at),
    }
}

/// A package kept only for a few current versions: their paths, and how much of it they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionCandidate {
    pub package_id: String,
    pub source_id: String,
    pub folder: String,
    /// The present files whose current version it holds.
    pub paths: Vec<String>,
    pub live_bytes: u64,
    /// Bytes of every file it holds (its manifest).
    pub total_bytes: u64,
}

/// Where a search page ends: the sort key of its last match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchKey {
    pub source_id: String,
    pub folder: String,
    pub path: String,
    pub version_id: i64,
}

/// `text` with LIKE's wildcards and the escape character itself escaped (escape `\`).
pub(super) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Versions in effect at `t`: begun at or before it, not ended by then (a version superseded
/// in the same instant it began never was the state).
fn in_effect_at(t: Millis) -> Condition {
    use catalog_version::Column as C;
    Condition::all().add(C::SinceAt.lte(t)).add(Condition::any().add(C::UntilAt.is_null()).add(C::UntilAt.gt(t)))
}

impl Store {
    /// The entries in effect at `as_of` of a whole folder, or of one `directory` in it (its
    /// direct children), sorted by path, after `after` (exclusive), at most `limit`.
    pub async fn list_entries(
        &self,
        source_id: &str,
        folder: &str,
        directory: Option<&str>,
        as_of: Millis,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<FileVersion>> {
        use catalog_version::Column as C;
        let mut q = catalog_version::Entity::find()
            .filter(C::SourceId.eq(source_id))
            .filter(C::Folder.eq(folder))
            .filter(in_effect_at(as_of));
        if let Some(d) = directory {
            q = q.filter(C::Directory.eq(d));
        }
        if let Some(after) = after {
            q = q.filter(C::Path.gt(after));
        }
        let rows = q.order_by_asc(C::Path).limit(limit).all(&self.db).await?;
        rows.into_iter().map(|r| version_from(r).map(|(_, v)| v)).collect()
    }

    /// Entries whose path contains `needle` (taken literally; case-insensitively as the
    /// database's LOWER folds: ASCII on SQLite, every letter on PostgreSQL), present ones (and
    /// with `deleted` every version that ended by deletion), sorted by source, folder, path and
    /// version, after the key `after`, at most `limit`. A scan of the source's (or the fleet's)
    /// present rows: no index serves a substring.
    pub async fn search_entries(
        &self,
        source_id: Option<&str>,
        needle: &str,
        deleted: bool,
        after: Option<&SearchKey>,
        limit: u64,
    ) -> Result<Vec<(SearchKey, FileVersion)>> {
        use catalog_version::Column as C;
        let pattern = format!("%{}%", like_escape(&needle.to_lowercase()));
        let mut current = Condition::any().add(C::UntilAt.is_null());
        if deleted {
            current = current.add(C::Deleted.eq(true));
        }
        let mut q = catalog_version::Entity::find()
            .filter(current)
            .filter(Func::lower(Expr::col(C::Path)).like(LikeExpr::new(pattern).escape('\\')));
        if let Some(s) = source_id {
            q = q.filter(C::SourceId.eq(s));
        }
        if let Some(k) = after {
            let key = |k: &SearchKey| {
                vec![
                    Expr::val(k.source_id.clone()),
                    Expr::val(k.folder.clone()),
                    Expr::val(k.path.clone()),
                    Expr::val(k.version_id),
                ]
            };
            let cols = [C::SourceId, C::Folder, C::Path, C::VersionId].map(Expr::col);
            q = q.filter(Expr::tuple(cols).gt(Expr::tuple(key(k))));
        }
        let rows = q
            .order_by_asc(C::SourceId)
            .order_by_asc(C::Folder)
            .order_by_asc(C::Path)
            .order_by_asc(C::VersionId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                let (id, v) = version_from(r)?;
                let key = SearchKey {
                    source_id: v.source_id.clone(),
                    folder: v.folder.clone(),
                    path: v.entry.path.clone(),
                    version_id: id,
                };
                Ok((key, v))
            })
            .collect()
    }

    /// Completed packages after `after` (by id, at most `scan` of them looked at) that made at
    /// or before `made_before`, still hold current versions, and whose current files are at
    /// most `max_live_percent` of their bytes. A package some current version only keeps (its
    /// own bytes never stored) is left alone: its files cannot be packaged again from here.
    /// Returns the candidates and the last id looked at (the next round starts after it).
    pub async fn compaction_candidates(
        &self,
        after: &str,
        scan: u64,
        made_before: Millis,
        max_live_percent: u32,
    ) -> Result<(Vec<CompactionCandidate>, Option<String>)> {
        use catalog_version::Column as C;
        let holds = package_hold::Entity::find()
            .filter(package_hold::Column::LiveVersions.gt(0))
            .filter(package_hold::Column::PackageId.gt(after))
            .order_by_asc(package_hold::Column::PackageId)
            .limit(scan)
            .all(&self.db)
            .await?;
        // The next round starts after the last one looked at, or from the start when this
        // round reached the end.
        let last = if holds.len() as u64 == scan { holds.last().map(|h| h.package_id.clone()) } else { None };
        let live: HashMap<String, i64> = holds.into_iter().map(|h| (h.package_id, h.live_versions)).collect();
        let ids: Vec<String> = live.keys().cloned().collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(400) {
            let made: Vec<(String, String, i64)> = package::Entity::find()
                .select_only()
                .columns([package::Column::PackageId, package::Column::SourceId, package::Column::SizeBytes])
                .filter(package::Column::PackageId.is_in(chunk.iter().cloned()))
                .filter(package::Column::Status.eq(PackageStatus::Completed.as_str()))
                .filter(package::Column::CreatedAt.lte(made_before))
                .into_tuple()
                .all(&self.db)
                .await?;
            if made.is_empty() {
                continue;
            }
            let wanted: Vec<String> = made.iter().map(|(id, _, _)| id.clone()).collect();
            // Current files per package, counted and summed by the database.
            let bytes = Expr::expr(Func::cast_as(Func::sum(Expr::col(C::SizeBytes)), Alias::new("BIGINT")));
            let current: HashMap<String, (i64, i64)> = catalog_version::Entity::find()
                .select_only()
                .column(C::PackageId)
                .column_as(Expr::col(C::VersionId).count(), "files")
                .column_as(bytes, "bytes")
                .filter(C::PackageId.is_in(wanted.iter().cloned()))
                .filter(C::UntilAt.is_null())
                .filter(C::Kind.eq(EntryKind::File.as_str()))
                .group_by(C::PackageId)
                .into_tuple::<(String, i64, Option<i64>)>()
                .all(&self.db)
                .await?
                .into_iter()
                .map(|(id, n, b)| (id, (n, b.unwrap_or(0))))
                .collect();
            let listed: HashMap<String, i64> = package_manifest::Entity::find()
                .select_only()
                .columns([package_manifest::Column::PackageId, package_manifest::Column::FileCount])
                .filter(package_manifest::Column::PackageId.is_in(wanted.iter().cloned()))
                .into_tuple::<(String, i64)>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect();
            for (package_id, source_id, size) in made {
                let Some(&(files, live_bytes)) = current.get(&package_id) else { continue };
                if files != live[&package_id] {
                    continue; // some current version only keeps it
                }
                let manifest_files = listed.get(&package_id).copied().filter(|&n| n > 0);
                if manifest_files.is_some_and(|n| n <= files) {
                    continue; // every file it holds is still current
                }
                // Its manifest's bytes; without one (a package from before manifests), its size.
                let total_bytes = match manifest_files {
                    Some(_) => self.manifest_bytes(&package_id).await?,
                    None => u64::try_from(size).unwrap_or(0),
                };
                let live_bytes = u64::try_from(live_bytes).unwrap_or(0);
                if total_bytes == 0
                    || live_bytes.saturating_mul(100) > total_bytes.saturating_mul(u64::from(max_live_percent))
                {
                    continue;
                }
                let rows: Vec<(String, String)> = catalog_version::Entity::find()
                    .select_only()
                    .columns([C::Folder, C::Path])
                    .filter(C::PackageId.eq(&package_id))
                    .filter(C::UntilAt.is_null())
                    .filter(C::Kind.eq(EntryKind::File.as_str()))
                    .filter(C::SourceId.eq(&source_id))
                    .into_tuple()
                    .all(&self.db)
                    .await?;
                let Some(folder) = rows.first().map(|(f, _)| f.clone()) else { continue };
                if rows.len() as i64 != files || rows.iter().any(|(f, _)| *f != folder) {
                    continue; // one package, one folder of its own source; anything else is not ours to move
                }
                out.push(CompactionCandidate {
                    package_id,
                    source_id,
                    folder,
                    paths: rows.into_iter().map(|(_, p)| p).collect(),
                    live_bytes,
                    total_bytes,
                });
            }
        }
        out.sort_by(|a, b| a.package_id.cmp(&b.package_id));
        Ok((out, last))
    }

    /// The bytes of every file a package's manifest lists.
    async fn manifest_bytes(&self, package_id: &str) -> Result<u64> {
        let m = package_manifest::Entity::find_by_id(package_id.to_owned()).one(&self.db).await?;
        let files: Vec<ManifestEntry> = m.and_then(|m| serde_json::from_str(&m.manifest_json).ok()).unwrap_or_default();
        Ok(files.iter().map(|f| f.size_bytes).sum())
    }

    /// What retention knows of these packages' versions (packages no entry referred to are
    /// left out).
    pub async fn holds_of(&self, ids: &[String]) -> Result<HashMap<String, Hold>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(400) {
            let rows = package_hold::Entity::find()
                .filter(package_hold::Column::PackageId.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?;
            out.extend(rows.into_iter().map(hold_from).map(|h| (h.package_id.clone(), h)));
        }
        Ok(out)
    }

    /// The folders a source has catalog entries for, sorted.
    pub async fn catalog_folders(&self, source_id: &str) -> Result<Vec<String>> {
        use catalog_version::Column as C;
        let folders: Vec<String> = catalog_version::Entity::find()
            .select_only()
            .column(C::Folder)
            .distinct()
            .filter(C::SourceId.eq(source_id))
            .order_by_asc(C::Folder)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(folders)
    }

    /// The versions of one path, newest first (zero-length ones left out).
    pub async fn versions(&self, source_id: &str, folder: &str, path: &str, limit: u64) -> Result<Vec<FileVersion>> {
        use catalog_version::Column as C;
        let rows = catalog_version::Entity::find()
            .filter(C::SourceId.eq(source_id))
            .filter(C::Folder.eq(folder))
            .filter(C::Path.eq(path))
            .filter(Condition::any().add(C::UntilAt.is_null()).add(Expr::col(C::UntilAt).gt(Expr::col(C::SinceAt))))
            .order_by_desc(C::SinceAt)
            .order_by_desc(C::VersionId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(|r| version_from(r).map(|(_, v)| v)).collect()
    }

    /// Present files, and those whose current version has no verified copy of a completed
    /// package (or no package at all), oldest first.
    pub async fn coverage(&self, source_id: Option<&str>, sample: u64) -> Result<Coverage> {
        use catalog_version::Column as C;
        let present = || {
            let mut q = catalog_version::Entity::find()
                .filter(C::UntilAt.is_null())
                .filter(C::Kind.eq(EntryKind::File.as_str()));
            if let Some(s) = source_id {
                q = q.filter(C::SourceId.eq(s));
            }
            q
        };
        let verified = Query::select()
            .expr(Expr::val(1))
            .from(placement::Entity)
            .inner_join(
                package::Entity,
                Expr::col((package::Entity, package::Column::PackageId))
                    .equals((placement::Entity, placement::Column::PackageId)),
            )
            .and_where(
                Expr::col((placement::Entity, placement::Column::PackageId))
                    .equals((catalog_version::Entity, C::PackageId)),
            )
            .and_where(Expr::col((placement::Entity, placement::Column::Status)).eq(PlacementStatus::Verified.as_str()))
            .and_where(Expr::col((package::Entity, package::Column::Status)).eq(PackageStatus::Completed.as_str()))
            .to_owned();
        let unprotected = || present().filter(Expr::exists(verified.clone()).not());
        let present_files = present().count(&self.db).await?;
        let unprotected_files = unprotected().count(&self.db).await?;
        let rows = unprotected().order_by_asc(C::SinceAt).limit(sample).all(&self.db).await?;
        let unprotected = rows.into_iter().map(|r| version_from(r).map(|(_, v)| v)).collect::<Result<_>>()?;
        Ok(Coverage { present_files, unprotected_files, unprotected })
    }
}
