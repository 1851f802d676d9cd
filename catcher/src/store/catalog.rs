//! The catalog's rows: conversions and reads ("this directory as of T", "versions of this
//! path", "present files without a verified copy").

use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use super::entity::{catalog_version, package, package_hold, placement};
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

/// Where a search page ends: the sort key of its last match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchKey {
    pub source_id: String,
    pub folder: String,
    pub path: String,
    pub version_id: i64,
}

/// `text` with LIKE's wildcards and the escape character itself escaped (escape `\`).
fn like_escape(text: &str) -> String {
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

    /// Entries whose path contains `needle` (ASCII case-insensitively, taken literally), present
    /// ones (and with `deleted` the last version of deleted ones), sorted by source, folder, path
    /// and version, after the key `after`, at most `limit`. A scan of the source's (or the
    /// fleet's) present rows: no index serves a substring.
    pub async fn search_entries(
        &self,
        source_id: Option<&str>,
        needle: &str,
        deleted: bool,
        after: Option<&SearchKey>,
        limit: u64,
    ) -> Result<Vec<(SearchKey, FileVersion)>> {
        use catalog_version::Column as C;
        let pattern = format!("%{}%", like_escape(&needle.to_ascii_lowercase()));
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
