//! Catalog rows for the catalog query benchmark: `sources` sources × one folder × `dirs`
//! directories × `files` files × `versions` versions each (a day apart, the last one current),
//! written with multi-row INSERTs in large transactions. Deterministic.

use std::time::Duration;

use anyhow::Context;
use catcher::store::entity::catalog_version;
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ConnectOptions, Database, EntityTrait, TransactionTrait};

use crate::datagen::splitmix;

/// The folder every generated source has.
pub const FOLDER: &str = "/data";
/// The first version's time: 2026-01-01.
pub const START_MS: i64 = 1_767_225_600_000;
pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone)]
pub struct Shape {
    pub sources: u32,
    pub dirs: u32,
    pub files: u32,
    pub versions: u32,
}

impl Shape {
    pub fn rows(&self) -> u64 {
        u64::from(self.sources) * u64::from(self.dirs) * u64::from(self.files) * u64::from(self.versions)
    }
}

pub fn source_id(s: u32) -> String {
    format!("edge-{s:04}")
}

pub fn dir(d: u32) -> String {
    format!("d{d:04}")
}

pub fn file(d: u32, f: u32) -> String {
    format!("{}/f{f:05}.bin", dir(d))
}

/// Writes the rows (the catcher's migrations must have run); `progress` gets the rows done.
pub async fn fill(database_url: &str, shape: &Shape, seed: u64, mut progress: impl FnMut(u64)) -> anyhow::Result<u64> {
    let mut opts = ConnectOptions::new(database_url.to_owned());
    opts.max_connections(1).sqlx_logging(false).connect_timeout(Duration::from_secs(10)).map_sqlx_sqlite_opts(|s| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        s.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
    });
    let db = Database::connect(opts).await.context("connect to the database")?;
    let mut rng = seed;
    let mut done = 0u64;
    for s in 0..shape.sources {
        let source = source_id(s);
        let txn = db.begin().await?;
        let mut rows = Vec::with_capacity(500);
        for d in 0..shape.dirs {
            for f in 0..shape.files {
                let path = file(d, f);
                for v in 0..shape.versions {
                    let since = START_MS + i64::from(v) * DAY_MS + (splitmix(&mut rng) % 3_600_000) as i64;
                    let until = (v + 1 < shape.versions).then(|| START_MS + i64::from(v + 1) * DAY_MS);
                    rows.push(catalog_version::ActiveModel {
                        version_id: NotSet,
                        source_id: Set(source.clone()),
                        folder: Set(FOLDER.to_owned()),
                        path: Set(path.clone()),
                        directory: Set(dir(d)),
                        kind: Set("file".to_owned()),
                        size_bytes: Set((splitmix(&mut rng) % 1_000_000) as i64),
                        sha256: Set(format!("{:016x}{:048x}", splitmix(&mut rng), done)),
                        mode: Set(0o644),
                        uid: Set(1000),
                        gid: Set(1000),
                        modified_ns: Set(since * 1_000_000),
                        target: Set(String::new()),
                        package_id: Set(format!("0190{:028x}", splitmix(&mut rng) >> 16)),
                        since_at: Set(since),
                        until_at: Set(until),
                        deleted: Set(false),
                        kept_package_id: Set(String::new()),
                        pack_offset: Set((splitmix(&mut rng) % (1 << 30)) as i64),
                        pack_length: Set(1 << 19),
                        pack_skip: Set((splitmix(&mut rng) % (1 << 19)) as i64),
                    });
                    done += 1;
                    if rows.len() == 500 {
                        catalog_version::Entity::insert_many(std::mem::take(&mut rows))
                            .exec_without_returning(&txn)
                            .await?;
                    }
                }
            }
        }
        if !rows.is_empty() {
            catalog_version::Entity::insert_many(rows).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        progress(done);
    }
    Ok(done)
}
