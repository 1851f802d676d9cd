//! Projections come from per-day buckets the writer keeps; they must agree with a scan of the
//! packages through start-up, rule re-plans, deletes and live traffic.

use catcher::domain::{Millis, PackageType, Spelling, Tier, now_ms};
use catcher::store::Store;
use catcher::store::entity::package;
use edgebackup_proto::v1 as pb;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Statement};

use crate::both_databases;
use crate::harness::{Catcher, TestDb};

const DAY: Millis = 86_400_000;

/// Packages in every tier, due from an hour to 95 days ahead, as an older catcher left them.
async fn seed(db: &TestDb, n: usize) {
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await.unwrap();
    let conn = db.connect().await;
    let now = now_ms();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let rows: Vec<package::ActiveModel> = (0..n)
        .map(|i| {
            let ptype = PackageType::ALL[(next() % 5) as usize]; // every type but cache
            let tier = if i % 10 == 0 { "" } else { Tier::ALL[(next() % 4) as usize].as_str() };
            // All in the future: the running scheduler must not move packages while we compare.
            let due = (i % 17 != 0).then(|| now + DAY / 24 + (next() % (95 * DAY as u64)) as i64);
            package::ActiveModel {
                package_id: Set(seed_id(i)),
                source_id: Set("edge-seed".into()),
                path: Set(format!("/data/{i}")),
                package_type: Set(ptype.as_str().into()),
                size_bytes: Set((next() % 1_000_000) as i64),
                sha256: Set("ab".repeat(32)),
                status: Set("completed".into()),
                bytes_done: Set(0),
                progress_percent: Set(100),
                tool: Set("native".into()),
                tool_ref: Set(String::new()),
                tier: Set(tier.into()),
                tier_entered_at: Set((!tier.is_empty()).then_some(now - DAY)),
                next_transition_at: Set(if tier.is_empty() { None } else { due }),
                retry_count: Set(0),
                last_error: Set(String::new()),
                created_at: Set(now - 2 * DAY),
                updated_at: Set(now - DAY),
                completed_at: Set(Some(now - DAY)),
                expired_at: Set(None),
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        package::Entity::insert_many(chunk.to_vec()).exec_without_returning(&conn).await.unwrap();
    }
}

/// The buckets as stored (empty ones dropped) and as a scan of the packages computes them.
pub async fn assert_buckets_match(db: &TestDb) -> usize {
    let conn = db.connect().await;
    let backend = conn.get_database_backend();
    let query = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let read = |rows: Vec<sea_orm::QueryResult>| {
        let mut out: Vec<(String, String, i64, i64, i64)> = rows
            .into_iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                    r.try_get_by_index(2).unwrap(),
                    r.try_get_by_index(3).unwrap(),
                    r.try_get_by_index(4).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let stored = read(
        conn.query_all_raw(query(
            "SELECT package_type, tier, day, count, bytes FROM transition_days WHERE count <> 0 OR bytes <> 0",
        ))
        .await
        .unwrap(),
    );
    let scanned = read(
        conn.query_all_raw(query(
            "SELECT package_type, tier, next_transition_at / 86400000, COUNT(*), \
             CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM packages \
             WHERE next_transition_at IS NOT NULL AND tier <> '' GROUP BY 1, 2, 3",
        ))
        .await
        .unwrap(),
    );
    assert_eq!(stored, scanned, "transition_days drifted from the packages");
    scanned.len()
}

/// `Store::due_groups` against a plain scan of the window.
async fn assert_windows_match(db: &TestDb) {
    let store = Store::connect(&db.url, 2).await.unwrap();
    let conn = db.connect().await;
    let now = now_ms();
    for (from, until) in [
        (now, now + 30 * DAY),
        (now - 3 * DAY, now + 2 * DAY),
        (now + DAY / 2, now + DAY + DAY / 3 * 2),
        (now, now + 3650 * DAY),
    ] {
        let mut got: Vec<(String, String, u64, u64, Millis, usize)> = store
            .due_groups(from, until, 3)
            .await
            .unwrap()
            .into_iter()
            .map(|g| {
                assert!(g.ids.windows(2).all(|w| w[0].1 <= w[1].1), "ids soonest first");
                assert_eq!(g.ids.first().map(|(_, at)| *at), Some(g.earliest));
                (g.package_type.as_str().into(), g.tier.as_str().into(), g.count, g.bytes, g.earliest, g.ids.len())
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String, u64, u64, Millis, usize)> = package::Entity::find()
            .select_only()
            .column(package::Column::PackageType)
            .column(package::Column::Tier)
            .column_as(Expr::col(package::Column::PackageId).count(), "n")
            .column_as(Expr::col(package::Column::SizeBytes).sum().cast_as(Alias::new("BIGINT")), "bytes")
            .column_as(Expr::col(package::Column::NextTransitionAt).min(), "earliest")
            .filter(package::Column::NextTransitionAt.between(from, until))
            .filter(package::Column::Tier.ne(""))
            .group_by(package::Column::PackageType)
            .group_by(package::Column::Tier)
            .into_tuple::<(String, String, i64, i64, i64)>()
            .all(&conn)
            .await
            .unwrap()
            .into_iter()
            .map(|(t, tier, n, bytes, earliest)| (t, tier, n as u64, bytes as u64, earliest, (n as usize).min(3)))
            .collect();
        want.sort();
        assert!(!want.is_empty(), "window {from}..{until} ({} groups from the store)", got.len());
        assert_eq!(got, want, "window {from}..{until}");
    }
    store.close().await.unwrap();
}

async fn day_buckets_match_a_scan(db: TestDb) {
    seed(&db, 3000).await;
    // First start rebuilds counters and buckets from what it finds.
    let catcher = Catcher::start(&db).await;
    assert!(assert_buckets_match(&db).await > 100);
    assert_windows_match(&db).await;

    let mut c = catcher.clients().await;
    // A rule change re-plans stored packages in bulk: their buckets are recomputed.
    let request = pb::GetRuleSetRequest { package_type: pb::PackageType::AppLogs as i32 };
    let mut rules = c.policy.get_rule_set(request).await.unwrap().into_inner();
    let warm = rules.warm.as_mut().unwrap();
    warm.enabled = true;
    warm.wait = Some(prost_types::Duration { seconds: 9 * 86_400, nanos: 0 });
    c.update_rules(rules).await.unwrap();
    // Deletes take their packages out of their days.
    for i in (1..3000).step_by(97) {
        let request = pb::DeletePackageRequest { package_id: seed_id(i), reason: "test".into() };
        c.packages.delete_package(request).await.unwrap();
    }
    assert_buckets_match(&db).await;
    assert_windows_match(&db).await;

    // Projections through the API agree in total with the groups.
    let p = c
        .status
        .get_projections(pb::GetProjectionsRequest { days: 30, ids_per_group: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(!p.groups.is_empty());
    assert!(p.groups.iter().all(|g| g.count > 0 && g.package_ids.len() <= 2));
}

both_databases!(day_buckets_match_a_scan);

/// A UUIDv7-shaped id (what agents mint) numbered `i`.
fn seed_id(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}
