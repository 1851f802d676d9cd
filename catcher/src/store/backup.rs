//! The catcher's own database: an online backup (SQLite: a consistent copy with `VACUUM INTO`,
//! taken while the catcher runs; PostgreSQL: `pg_dump`, outside the catcher), and the check of a
//! backup or a restored database before a catcher is started on it.

use std::path::Path;

use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, Statement};

use super::Store;
use super::entity::*;
use crate::domain::Millis;
use crate::error::{Error, Result};
use crate::journal::Verifier;

/// What a database holds, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// SQLite's integrity check ("ok"); "ok" on PostgreSQL (it checks pages itself).
    pub integrity: String,
    pub journal_events: u64,
    /// The first journal event that does not fit the chain, and why.
    pub journal_broken: Option<(u64, String)>,
    pub sources: u64,
    pub packages: u64,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.integrity == "ok" && self.journal_broken.is_none()
    }
}

impl Store {
    /// Opens a SQLite file for reading only: nothing about it changes (no migration, no
    /// journal-mode switch), so a backup can be checked as it is.
    pub async fn open_read_only(path: &Path) -> Result<Store> {
        let mut opts = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=ro", path.display()));
        opts.max_connections(1).min_connections(1).sqlx_logging(false).map_sqlx_sqlite_opts(|o| o.read_only(true));
        Ok(Store { db: sea_orm::Database::connect(opts).await? })
    }

    /// Writes a consistent copy of the database to `to` while the catcher may be running
    /// (SQLite). `to` must not exist yet.
    pub async fn backup_to(&self, to: &Path) -> Result<()> {
        if self.backend() != DatabaseBackend::Sqlite {
            return Err(Error::FailedPrecondition(
                "on PostgreSQL, back up with pg_dump --format=custom (see deploy/README.md)".into(),
            ));
        }
        if to.exists() {
            return Err(Error::AlreadyExists(format!("{} exists; choose a new file", to.display())));
        }
        let target = to.to_str().ok_or_else(|| Error::invalid("to", "the path must be UTF-8"))?;
        // VACUUM INTO reads one snapshot: the copy is consistent even while the writer commits.
        let sql = Statement::from_sql_and_values(DatabaseBackend::Sqlite, "VACUUM INTO ?", [target.into()]);
        self.db.execute_raw(sql).await?;
        Ok(())
    }

    /// Checks the database: storage integrity, the journal's whole chain, what it holds.
    pub async fn check(&self) -> Result<Check> {
        let integrity = if self.backend() == DatabaseBackend::Sqlite {
            let rows = self
                .db
                .query_all_raw(Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA integrity_check"))
                .await?;
            let found: Vec<String> = rows.iter().filter_map(|r| r.try_get_by_index::<String>(0).ok()).collect();
            found.join("; ")
        } else {
            "ok".to_owned()
        };
        let mut verifier = Verifier::default();
        let journal_broken = self.verify_journal_from(&mut verifier).await?;
        Ok(Check {
            integrity,
            journal_events: verifier.checked,
            journal_broken,
            sources: source::Entity::find().count(&self.db).await?,
            packages: package::Entity::find().count(&self.db).await?,
        })
    }

    /// The newest replica heartbeat on record: a catcher running on the database beats every
    /// few seconds. None for databases from before replicas (no such table) or with none.
    pub async fn last_heartbeat(&self) -> Option<Millis> {
        self.replicas().await.ok()?.iter().map(|r| r.heartbeat_at).max()
    }
}
