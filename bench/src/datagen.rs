//! Fills a catcher database with realistic packages, fast: the catcher's own migrations, then
//! batched multi-row INSERTs of packages, placements and sources in large transactions, then the
//! counters table rebuilt from the rows with the same statement the catcher's migration uses, so
//! `GetStatus` and the tier summary agree with what is stored. Deterministic for a given seed.
//!
//! Not written: journal events (the chain is not needed by the read paths measured here) and
//! manifests (only GetPackage returns them).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use catcher::domain::{PackageStatus, PackageType, PlacementStatus, Spelling, Tier, Tool};
use catcher::store::Store;
use catcher::store::entity::{package, placement, source};
use sea_orm::{
    ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, EntityTrait, PaginatorTrait, TransactionTrait,
};

const DAY_MS: i64 = 86_400_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub database_url: String,
    pub packages: u64,
    pub sources: u32,
    /// Rows per INSERT statement.
    pub batch: usize,
    /// INSERT statements per transaction.
    pub batches_per_txn: usize,
    /// Packages are spread over this many days before now.
    pub days: u32,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            packages: 1_000_000,
            sources: 1000,
            batch: 800,
            batches_per_txn: 50,
            days: 180,
            seed: 7,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub packages: u64,
    pub placements: u64,
    pub sources: u32,
    pub packages_in_database: u64,
    pub seconds: f64,
    pub packages_per_sec: f64,
}

/// SplitMix64: a tiny, fast, deterministic generator (no dependency needed for test data).
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(r: u64, weighted: &[(T, u64)]) -> T {
    let total: u64 = weighted.iter().map(|(_, w)| w).sum();
    let mut x = r % total;
    for (v, w) in weighted {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    weighted[weighted.len() - 1].0
}

/// One generated package and its placement (if stored somewhere).
pub fn make_package(
    i: u64,
    o: &Options,
    now: i64,
    rng: &mut u64,
) -> (package::ActiveModel, Option<placement::ActiveModel>) {
    let span = i64::from(o.days.max(1)) * DAY_MS;
    // Oldest first, so package ids (UUIDv7, time-ordered) ascend with i.
    let created = now - span + (span as f64 * i as f64 / o.packages.max(1) as f64) as i64;
    let mut rand_bytes = [0u8; 10];
    rand_bytes[..8].copy_from_slice(&splitmix(rng).to_le_bytes());
    rand_bytes[8..].copy_from_slice(&(i as u16).to_le_bytes());
    let id = uuid::Builder::from_unix_timestamp_millis(created.max(0) as u64, &rand_bytes).into_uuid().to_string();
    let ptype = pick(
        splitmix(rng),
        &[
            (PackageType::UserData, 30),
            (PackageType::AppLogs, 25),
            (PackageType::AuditLogs, 10),
            (PackageType::BusinessData, 15),
            (PackageType::JobPackage, 15),
            (PackageType::Cache, 5),
        ],
    );
    let age_days = (now - created) / DAY_MS;
    // Recent packages are more often still on their way.
    let status = if age_days < 1 {
        pick(
            splitmix(rng),
            &[
                (PackageStatus::Completed, 70),
                (PackageStatus::Pending, 12),
                (PackageStatus::InProgress, 12),
                (PackageStatus::Failed, 6),
            ],
        )
    } else {
        pick(
            splitmix(rng),
            &[
                (PackageStatus::Completed, 92),
                (PackageStatus::Expired, 5),
                (PackageStatus::Failed, 2),
                (PackageStatus::Pending, 1),
            ],
        )
    };
    let tool = pick(splitmix(rng), &[(Tool::Native, 80), (Tool::Restic, 15), (Tool::Rclone, 5)]);
    let size = (1i64 << (10 + splitmix(rng) % 21)) + (splitmix(rng) % 4096) as i64;
    let sha = format!("{:016x}{:016x}{:016x}{:016x}", splitmix(rng), splitmix(rng), splitmix(rng), i);
    let source = format!("edge-{:04}", splitmix(rng) % u64::from(o.sources.max(1)));
    let path = format!("/data/{}/{source}/d{:04}/pkg-{i}.tar.zst", ptype.as_str(), (created / DAY_MS) % 10_000);
    let completed = matches!(status, PackageStatus::Completed | PackageStatus::Expired);
    let completed_at = completed.then(|| created + (splitmix(rng) % 600_000) as i64);
    let tier = (status == PackageStatus::Completed).then_some(match age_days {
        0..7 => Tier::Hot,
        7..30 => Tier::Warm,
        30..120 => Tier::Cold,
        _ => Tier::Offsite,
    });
    let next_transition_at = match tier {
        // Offsite is kept forever for half of them (never_delete).
        Some(Tier::Offsite) if splitmix(rng).is_multiple_of(2) => None,
        Some(_) => Some(now + (splitmix(rng) % (60 * DAY_MS as u64)) as i64),
        None => None,
    };
    let (bytes_done, percent) = match status {
        PackageStatus::InProgress => {
            let p = splitmix(rng) % 100;
            (size * p as i64 / 100, p as i32)
        }
        PackageStatus::Completed | PackageStatus::Expired => (size, 100),
        _ => (0, 0),
    };
    let failed = status == PackageStatus::Failed;
    let row = package::ActiveModel {
        package_id: Set(id.clone()),
        source_id: Set(source),
        path: Set(path),
        package_type: Set(ptype.as_str().to_owned()),
        size_bytes: Set(size),
        sha256: Set(sha.clone()),
        status: Set(status.as_str().to_owned()),
        bytes_done: Set(bytes_done),
        progress_percent: Set(percent),
        tool: Set(tool.as_str().to_owned()),
        tool_ref: Set(if completed && tool == Tool::Restic {
            format!("{:08x}", splitmix(rng) as u32)
        } else {
            String::new()
        }),
        tier: Set(tier.map_or(String::new(), |t| t.as_str().to_owned())),
        tier_entered_at: Set(tier.and(completed_at)),
        next_transition_at: Set(next_transition_at),
        retry_count: Set(if failed { 1 + (splitmix(rng) % 3) as i32 } else { 0 }),
        last_error: Set(if failed { "upload failed: connection reset by peer".into() } else { String::new() }),
        created_at: Set(created),
        updated_at: Set(completed_at.unwrap_or(created)),
        completed_at: Set(completed_at),
        expired_at: Set((status == PackageStatus::Expired).then(|| created + 90 * DAY_MS)),
    };
    let place = completed.then(|| {
        let station = match tier {
            Some(t) => format!("{}-1", t.as_str()),
            None => "hot-1".to_owned(),
        };
        let expired = status == PackageStatus::Expired;
        placement::ActiveModel {
            package_id: Set(id),
            station_id: Set(station),
            status: Set(if expired { PlacementStatus::Deleted } else { PlacementStatus::Verified }.as_str().to_owned()),
            verified_sha256: Set(sha),
            verified_at: Set(completed_at),
            error: Set(String::new()),
            updated_at: Set(completed_at.unwrap_or(created)),
        }
    });
    (row, place)
}

/// The statement the catcher's counters migration uses to rebuild them from the packages.
pub const REBUILD_COUNTERS: &str = "INSERT INTO package_counters (package_type, tier, status, count, bytes) \
     SELECT package_type, tier, status, COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) \
     FROM packages GROUP BY package_type, tier, status";

/// Migrates (with the catcher's migrations) and fills the database; `progress` gets the rows done.
pub async fn fill(o: &Options, mut progress: impl FnMut(u64)) -> anyhow::Result<Report> {
    if o.batch == 0 || o.batch > 2000 {
        bail!("--batch must be 1..=2000 rows per INSERT (21 parameters a row must stay under the drivers' limits)");
    }
    let started = Instant::now();
    let store = Store::connect(&o.database_url, 2).await.context("connect to the database")?;
    store.migrate().await.context("apply the catcher's migrations")?;
    store.close().await?;
    // Our own connection: generated data needs no fsync per commit.
    let mut opts = ConnectOptions::new(o.database_url.clone());
    opts.max_connections(1).sqlx_logging(false).connect_timeout(Duration::from_secs(10)).map_sqlx_sqlite_opts(|s| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        s.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
    });
    let db = Database::connect(opts).await.context("connect to the database")?;
    let now = catcher::domain::now_ms();
    let mut rng = o.seed;
    let existing = package::Entity::find().count(&db).await?;
    let mut placements = 0u64;
    let mut done = 0u64;
    while done < o.packages {
        let txn = db.begin().await?;
        for _ in 0..o.batches_per_txn.max(1) {
            if done >= o.packages {
                break;
            }
            let n = (o.packages - done).min(o.batch as u64);
            let mut rows = Vec::with_capacity(n as usize);
            let mut places = Vec::with_capacity(n as usize);
            for i in done..done + n {
                let (row, place) = make_package(existing + i, o, now, &mut rng);
                rows.push(row);
                places.extend(place);
            }
            package::Entity::insert_many(rows).exec_without_returning(&txn).await.context("insert packages")?;
            placements += places.len() as u64;
            if !places.is_empty() {
                placement::Entity::insert_many(places)
                    .exec_without_returning(&txn)
                    .await
                    .context("insert placements")?;
            }
            done += n;
        }
        txn.commit().await?;
        progress(done);
    }
    let txn = db.begin().await?;
    let sources = (0..o.sources).map(|s| source::ActiveModel {
        source_id: Set(format!("edge-{s:04}")),
        label: Set(format!("Edge device {s}")),
        hostname: Set(format!("edge-{s:04}.plant.local")),
        os: Set("linux".into()),
        agent_version: Set("0.1.0".into()),
        capabilities: Set("backup".into()),
        mover: Set(false),
        first_seen_at: Set(now - i64::from(o.days) * DAY_MS),
        last_seen_at: Set(now - DAY_MS),
        connected: Set(false),
        safety_state: Set("ok".into()),
        safety_reason: Set(String::new()),
        last_completed_at: Set(Some(now - DAY_MS)),
        replica: Set(None),
    });
    let sources: Vec<_> = sources.collect();
    for chunk in sources.chunks(500) {
        source::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([source::Column::SourceId])
            .exec_without_returning(&txn)
            .await
            .context("insert sources")?;
    }
    txn.execute_unprepared("DELETE FROM package_counters").await?;
    txn.execute_unprepared(REBUILD_COUNTERS).await.context("rebuild package_counters")?;
    txn.execute_unprepared("DELETE FROM transition_days").await.context("clear transition_days")?;
    txn.execute_unprepared(&catcher::store::migration::rebuild_transition_days_sql(None))
        .await
        .context("rebuild transition_days")?;
    txn.commit().await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    } else {
        db.execute_unprepared("ANALYZE").await?;
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    }
    let in_db = package::Entity::find().count(&db).await?;
    db.close().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        packages: o.packages,
        placements,
        sources: o.sources,
        packages_in_database: in_db,
        seconds,
        packages_per_sec: o.packages as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ActiveValue;

    fn value<T: Clone + Into<sea_orm::Value>>(v: &ActiveValue<T>) -> T {
        match v {
            ActiveValue::Set(x) | ActiveValue::Unchanged(x) => x.clone(),
            ActiveValue::NotSet => panic!("every column is set"),
        }
    }

    #[test]
    fn generated_rows_are_consistent_and_deterministic() {
        let o = Options { packages: 5000, ..Options::default() };
        let now = 1_800_000_000_000;
        let (mut a, mut b) = (7u64, 7u64);
        let mut last_id = String::new();
        for i in 0..o.packages {
            let (row, place) = make_package(i, &o, now, &mut a);
            let (again, _) = make_package(i, &o, now, &mut b);
            assert_eq!(row, again);
            let id = value(&row.package_id);
            assert!(uuid::Uuid::parse_str(&id).is_ok_and(|u| u.get_version_num() == 7), "{id}");
            assert!(id > last_id, "ids ascend with time");
            last_id = id;
            let status = PackageStatus::parse(&value(&row.status)).expect("status spelling");
            let tier = value(&row.tier);
            assert_eq!(status == PackageStatus::Completed, !tier.is_empty(), "{status} in tier {tier:?}");
            assert!(tier.is_empty() || Tier::parse(&tier).is_some());
            assert!(PackageType::parse(&value(&row.package_type)).is_some());
            assert_eq!(value(&row.sha256).len(), 64);
            assert_eq!(place.is_some(), matches!(status, PackageStatus::Completed | PackageStatus::Expired));
        }
    }
}
