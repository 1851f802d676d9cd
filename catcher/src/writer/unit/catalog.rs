//! The catalog inside a unit of work: current versions (loaded on demand, a few queries per
//! snapshot part), the versions a batch opens and closes, and per package the hold retention
//! keeps. Staged like everything else; `flush` writes them.

use std::collections::HashMap;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::undo::{Undo, put};
use super::{CHUNK, Tracked, Unit, missing};
use crate::domain::*;
use crate::error::Result;
use crate::store::catalog::{hold_active, hold_from, version_active, version_from};
use crate::store::entity::{catalog_version, package_hold};

/// (source, folder, path).
pub(super) type VersionKey = (String, String, String);

/// Where a current version is: stored (by row id) or opened by this batch (by index).
#[derive(Debug, Clone)]
pub(super) enum Current {
    Stored { id: i64, version: Box<FileVersion> },
    New(usize),
}

#[derive(Debug, Default)]
pub(super) struct CatalogStage {
    /// Per key, its current version (`None`: the entry is not present), once looked up.
    pub(super) current: HashMap<VersionKey, Option<Current>>,
    /// Versions this batch opens, in order.
    pub(super) opened: Vec<FileVersion>,
    /// Stored versions this batch ends: (row id, until, deleted).
    pub(super) closed: Vec<(i64, Millis, bool)>,
    /// Stored versions whose bytes this batch finds in another package: (row id, the version
    /// as it now is).
    pub(super) relocated: Vec<(i64, FileVersion)>,
    pub(super) holds: HashMap<String, Tracked<Hold>>,
}

impl Unit<'_> {
    /// Loads the current versions of `paths` of one folder in a few `IN (..)` queries.
    pub async fn prefetch_current(&mut self, source_id: &str, folder: &str, paths: &[String]) -> Result<()> {
        let key = |p: &str| (source_id.to_owned(), folder.to_owned(), p.to_owned());
        let mut wanted: Vec<&String> = paths.iter().filter(|p| !self.catalog.current.contains_key(&key(p))).collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(CHUNK) {
            use catalog_version::Column as C;
            let rows = catalog_version::Entity::find()
                .filter(C::SourceId.eq(source_id))
                .filter(C::Folder.eq(folder))
                .filter(C::Path.is_in(chunk.iter().map(|p| p.as_str())))
                .filter(C::UntilAt.is_null())
                .all(self.txn)
                .await?;
            let mut found: HashMap<String, Current> = HashMap::with_capacity(rows.len());
            for row in rows {
                let (id, version) = version_from(row)?;
                found.insert(version.entry.path.clone(), Current::Stored { id, version: Box::new(version) });
            }
            for p in chunk {
                self.catalog.current.insert(key(p), found.remove(*p));
            }
        }
        Ok(())
    }

    /// The current version of one path, as this batch sees it.
    pub async fn current_version(&mut self, source_id: &str, folder: &str, path: &str) -> Result<Option<FileVersion>> {
        let key = (source_id.to_owned(), folder.to_owned(), path.to_owned());
        if !self.catalog.current.contains_key(&key) {
            self.prefetch_current(source_id, folder, &[path.to_owned()]).await?;
        }
        Ok(match self.catalog.current.get(&key).cloned().flatten() {
            Some(Current::Stored { version, .. }) => Some(*version),
            Some(Current::New(i)) => Some(self.catalog.opened[i].clone()),
            None => None,
        })
    }

    /// Ends the current version of a path at `until` (the caller looked it up first).
    pub fn close_version(&mut self, source_id: &str, folder: &str, path: &str, until: Millis, deleted: bool) {
        let key = (source_id.to_owned(), folder.to_owned(), path.to_owned());
        let prev = self.catalog.current.insert(key.clone(), None);
        match prev.clone().flatten() {
            Some(Current::Stored { id, .. }) => {
                self.catalog.closed.push((id, until, deleted));
                self.log(Undo::CatalogClosed);
            }
            Some(Current::New(i)) => {
                let v = &mut self.catalog.opened[i];
                let before = (v.until, v.deleted);
                (v.until, v.deleted) = (Some(until), deleted);
                self.log(Undo::CatalogOpenedEnd(i, before.0, before.1));
            }
            None => {}
        }
        self.log(Undo::CatalogCurrent(key, prev));
    }

    /// The current version of a path now has its bytes in `package_id` (at `range`): the same
    /// version, not a new one (the caller checked that the contents are the same).
    pub fn relocate_version(
        &mut self,
        source_id: &str,
        folder: &str,
        path: &str,
        package_id: &str,
        range: Option<PackRange>,
    ) {
        let key = (source_id.to_owned(), folder.to_owned(), path.to_owned());
        let prev = self.catalog.current.get(&key).cloned();
        match prev.clone().flatten() {
            Some(Current::Stored { id, mut version }) => {
                version.entry.package_id = package_id.to_owned();
                version.entry.range = range;
                self.catalog.relocated.push((id, (*version).clone()));
                self.log(Undo::CatalogRelocated);
                self.catalog.current.insert(key.clone(), Some(Current::Stored { id, version }));
                self.log(Undo::CatalogCurrent(key, prev));
            }
            Some(Current::New(i)) => {
                let before = self.catalog.opened[i].entry.clone();
                self.catalog.opened[i].entry.package_id = package_id.to_owned();
                self.catalog.opened[i].entry.range = range;
                self.log(Undo::CatalogOpenedEntry(i, Box::new(before)));
            }
            None => {}
        }
    }

    /// Opens a new current version.
    pub fn open_version(&mut self, v: FileVersion) {
        let key = (v.source_id.clone(), v.folder.clone(), v.entry.path.clone());
        self.catalog.opened.push(v);
        self.log(Undo::CatalogOpened);
        let prev = self.catalog.current.insert(key.clone(), Some(Current::New(self.catalog.opened.len() - 1)));
        self.log(Undo::CatalogCurrent(key, prev));
    }

    /// Loads the holds of many packages in a few queries.
    pub async fn prefetch_holds(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let wanted = missing(ids, &self.catalog.holds);
        for chunk in wanted.chunks(CHUNK) {
            let rows = package_hold::Entity::find()
                .filter(package_hold::Column::PackageId.is_in(chunk.to_vec()))
                .all(self.txn)
                .await?;
            let mut found: HashMap<String, Hold> =
                rows.into_iter().map(hold_from).map(|h| (h.package_id.clone(), h)).collect();
            for id in chunk {
                self.catalog.holds.insert(id.clone(), Tracked::loaded(found.remove(id)));
            }
        }
        Ok(())
    }

    /// What retention knows of a package's versions; `None` when no catalog entry ever
    /// referred to it.
    pub async fn hold(&mut self, package_id: &str) -> Result<Option<Hold>> {
        if !self.catalog.holds.contains_key(package_id) {
            self.prefetch_holds([package_id.to_owned()]).await?;
        }
        Ok(self.catalog.holds[package_id].value.clone())
    }

    pub fn put_hold(&mut self, h: Hold) {
        let id = h.package_id.clone();
        let prev = put(&mut self.catalog.holds, id.clone(), h);
        self.log(Undo::Hold(id, prev));
    }
}

/// Writes the batch's catalog changes: ends first, then new versions, then holds.
pub(super) async fn flush(txn: &DatabaseTransaction, stage: CatalogStage) -> Result<()> {
    let mut ends: HashMap<(Millis, bool), Vec<i64>> = HashMap::new();
    for (id, until, deleted) in stage.closed {
        ends.entry((until, deleted)).or_default().push(id);
    }
    for ((until, deleted), ids) in ends {
        for chunk in ids.chunks(CHUNK) {
            catalog_version::Entity::update_many()
                .col_expr(catalog_version::Column::UntilAt, Expr::value(until))
                .col_expr(catalog_version::Column::Deleted, Expr::value(deleted))
                .filter(catalog_version::Column::VersionId.is_in(chunk.iter().copied()))
                .exec(txn)
                .await?;
        }
    }
    // Relocations rewrite where the bytes are, a chunk of rows per statement (an upsert on the
    // row id: a compaction moves thousands at once, inside the writer's transaction).
    for chunk in stage.relocated.chunks(CHUNK / 2) {
        use catalog_version::Column as C;
        let rows =
            chunk.iter().map(|(id, v)| catalog_version::ActiveModel { version_id: Set(*id), ..version_active(v) });
        catalog_version::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(C::VersionId)
                    .update_columns([C::PackageId, C::PackOffset, C::PackLength, C::PackSkip])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in stage.opened.chunks(CHUNK / 2) {
        catalog_version::Entity::insert_many(chunk.iter().map(version_active)).exec_without_returning(txn).await?;
    }
    let holds: Vec<Hold> = stage.holds.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    for chunk in holds.chunks(CHUNK) {
        package_hold::Entity::insert_many(chunk.iter().map(hold_active))
            .on_conflict(
                OnConflict::column(package_hold::Column::PackageId)
                    .update_columns([package_hold::Column::LiveVersions, package_hold::Column::SupersededAt])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
