//! Reads of packages: one, a page by filters (with their manifests' entry counts), their copies,
//! what is due to move and the due groups of projections, the kept counters.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::convert::*;
use super::entity::*;
use super::{Store, catalog, contains_pattern, lower_like};
use crate::domain::*;
use crate::error::{Error, Result};

/// Filters of a package listing; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub status: Option<PackageStatus>,
    pub source_id: Option<String>,
    pub package_type: Option<PackageType>,
    /// `Some(None)` selects packages without a tier (still on the edge).
    pub tier: Option<Option<Tier>>,
    pub path_prefix: Option<String>,
    /// Id or sha256 prefix, source id, or path substring (see `ListPackagesRequest.query`).
    pub query: Option<String>,
}

/// Packages of one (type, tier) due within a window.
#[derive(Debug, Clone)]
pub struct DueGroup {
    pub package_type: PackageType,
    pub tier: Tier,
    pub count: u64,
    pub bytes: u64,
    pub earliest: Millis,
    /// (id, due at), soonest first.
    pub ids: Vec<(String, Millis)>,
}

/// A package whose time in its tier is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub package_id: String,
    pub tier: Tier,
    pub due_at: Millis,
}

impl Store {
    pub async fn package(&self, id: &str) -> Result<Option<Package>> {
        package::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(package_from).transpose()
    }

    /// The files inside a package (empty when its agent reported none).
    pub async fn manifest(&self, id: &str) -> Result<Vec<ManifestEntry>> {
        match package_manifest::Entity::find_by_id(id.to_owned()).one(&self.db).await? {
            Some(row) => {
                serde_json::from_str(&row.manifest_json).map_err(|e| Error::Corrupt(format!("manifest of {id}: {e}")))
            }
            None => Ok(Vec::new()),
        }
    }

    /// A page of packages, newest first; `after` is the last id of the previous page.
    pub async fn list_packages(&self, f: &PackageFilter, after: Option<&str>, limit: u64) -> Result<Vec<Package>> {
        let rows = listing(f, after, limit).all(&self.db).await?;
        rows.into_iter().map(package_from).collect()
    }

    /// As `list_packages`, each with its manifest's entry count, in the same statement (a
    /// correlated lookup per row, instead of a second statement per page).
    pub async fn list_packages_counted(
        &self,
        f: &PackageFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<(Package, u64)>> {
        #[derive(sea_orm::FromQueryResult)]
        struct Counted {
            #[sea_orm(nested)]
            package: package::Model,
            file_count: Option<i64>,
        }
        let count = sea_orm::sea_query::Query::select()
            .column(package_manifest::Column::FileCount)
            .from(package_manifest::Entity)
            .and_where(
                Expr::col((package_manifest::Entity, package_manifest::Column::PackageId))
                    .equals((package::Entity, package::Column::PackageId)),
            )
            .to_owned();
        let rows = listing(f, after, limit)
            .column_as(
                SimpleExpr::SubQuery(None, Box::new(sea_orm::sea_query::SubQueryStatement::SelectStatement(count))),
                "file_count",
            )
            .into_model::<Counted>()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| Ok((package_from(r.package)?, r.file_count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))))
            .collect()
    }

    /// Manifest entry counts of the given packages (those with a manifest).
    pub async fn file_counts_of(&self, ids: &[String]) -> Result<HashMap<String, u64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, i64)> = package_manifest::Entity::find()
                .select_only()
                .column(package_manifest::Column::PackageId)
                .column(package_manifest::Column::FileCount)
                .filter(package_manifest::Column::PackageId.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(rows.into_iter().map(|(id, n)| (id, u64::try_from(n).unwrap_or(0))));
        }
        Ok(out)
    }

    /// Placements of the given packages, grouped by package id.
    pub async fn placements_of(&self, ids: &[String]) -> Result<HashMap<String, Vec<Placement>>> {
        let mut out: HashMap<String, Vec<Placement>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(500) {
            let rows = placement::Entity::find()
                .filter(placement::Column::PackageId.is_in(chunk.iter().cloned()))
                .order_by_asc(placement::Column::StationId)
                .all(&self.db)
                .await?;
            for row in rows {
                let p = placement_from(row)?;
                out.entry(p.package_id.clone()).or_default().push(p);
            }
        }
        Ok(out)
    }

    /// Unfinished packages of a source, oldest first.
    pub async fn resume_list(&self, source_id: &str) -> Result<Vec<Package>> {
        let unfinished = [PackageStatus::Pending, PackageStatus::InProgress, PackageStatus::Failed].map(|s| s.as_str());
        let rows = package::Entity::find()
            .filter(package::Column::SourceId.eq(source_id))
            .filter(package::Column::Status.is_in(unfinished))
            .order_by_asc(package::Column::PackageId)
            .limit(10_000)
            .all(&self.db)
            .await?;
        rows.into_iter().map(package_from).collect()
    }

    /// Packages whose time in their tier is up, soonest first.
    pub async fn due_packages(&self, now: Millis, limit: u64) -> Result<Vec<Due>> {
        let rows: Vec<(String, String, Option<i64>)> = package::Entity::find()
            .select_only()
            .columns([package::Column::PackageId, package::Column::Tier, package::Column::NextTransitionAt])
            .filter(package::Column::NextTransitionAt.lte(now))
            .order_by_asc(package::Column::NextTransitionAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .filter(|(_, tier, _)| !tier.is_empty())
            .map(|(package_id, tier, due)| {
                Ok(Due { package_id, tier: parse_stored(&tier, Tier::parse, "tier")?, due_at: due.unwrap_or(now) })
            })
            .collect()
    }

    /// Packages due to leave their tier in `[from, until]`, per (type, tier), with each group's
    /// `ids_per_group` soonest. Whole UTC days inside the window come from the `transition_days`
    /// buckets; only the partial first and last days are summed from the (covering) index, so a
    /// 30-day projection over a million packages reads a few thousand index entries, not half
    /// the table.
    pub async fn due_groups(&self, from: Millis, until: Millis, ids_per_group: u64) -> Result<Vec<DueGroup>> {
        // (count, bytes, earliest if an exact part saw the group)
        let mut sums: HashMap<(String, String), (i64, i64, Option<Millis>)> = HashMap::new();
        let mut add = |rows: Vec<(String, String, i64, i64, Option<Millis>)>| {
            for (ptype, tier, n, bytes, earliest) in rows {
                let e = sums.entry((ptype, tier)).or_default();
                e.0 += n;
                e.1 += bytes;
                e.2 = match (e.2, earliest) {
                    (Some(a), Some(b)) => Some(Ord::min(a, b)),
                    (a, b) => a.or(b),
                };
            }
        };
        // Days [first_full, last_partial) are whole; the rest of the window is counted exactly.
        let first_full = from.div_euclid(DAY_MS) + 1;
        let last_partial = until.div_euclid(DAY_MS);
        if last_partial - first_full >= 1 {
            add(self.window_sums(from, first_full * DAY_MS - 1).await?);
            add(self.window_sums(last_partial * DAY_MS, until).await?);
            let days: Vec<(String, String, i64, i64)> = transition_day::Entity::find()
                .select_only()
                .column(transition_day::Column::PackageType)
                .column(transition_day::Column::Tier)
                .column_as(transition_day::Column::Count.sum().cast_as(Alias::new("BIGINT")), "n")
                .column_as(transition_day::Column::Bytes.sum().cast_as(Alias::new("BIGINT")), "bytes")
                .filter(transition_day::Column::Day.gte(first_full))
                .filter(transition_day::Column::Day.lt(last_partial))
                .group_by(transition_day::Column::PackageType)
                .group_by(transition_day::Column::Tier)
                .into_tuple()
                .all(&self.db)
                .await?;
            add(days.into_iter().map(|(t, tier, n, bytes)| (t, tier, n, bytes, None)).collect());
        } else {
            add(self.window_sums(from, until).await?);
        }
        let mut keys: Vec<_> = sums.into_iter().filter(|((_, tier), (n, ..))| !tier.is_empty() && *n > 0).collect();
        keys.sort();
        let mut groups = Vec::with_capacity(keys.len());
        for ((ptype, tier), (n, bytes, earliest)) in keys {
            let (ids, earliest) = match (ids_per_group, earliest) {
                (0, Some(at)) => (Vec::new(), at),
                _ => {
                    // The soonest ids (at least one, for `earliest`) from the (type, tier, due) index.
                    let mut ids = self.soonest(&ptype, &tier, from, until, Ord::max(ids_per_group, 1)).await?;
                    let at = ids.first().map_or(from, |(_, at)| *at);
                    ids.truncate(usize::try_from(ids_per_group).unwrap_or(usize::MAX));
                    (ids, at)
                }
            };
            groups.push(DueGroup {
                package_type: parse_stored(&ptype, PackageType::parse, "package type")?,
                tier: parse_stored(&tier, Tier::parse, "tier")?,
                count: u64::try_from(n).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
                earliest,
                ids,
            });
        }
        Ok(groups)
    }

    /// Count, bytes and earliest due time per (type, tier) of packages due in `[from, until]`,
    /// from the covering index. SQLite is told which index: with statistics it prefers a skip
    /// scan of the (type, tier, due) index, several times slower for this.
    async fn window_sums(
        &self,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<(String, String, i64, i64, Option<Millis>)>> {
        let backend = self.db.get_database_backend();
        let (hint, a, b) = match backend {
            DatabaseBackend::Sqlite => ("INDEXED BY idx_packages_next_transition_cover", "?", "?"),
            _ => ("", "$1", "$2"),
        };
        let sql = format!(
            "SELECT package_type, tier, COUNT(next_transition_at), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT), \
             MIN(next_transition_at) FROM packages {hint} \
             WHERE next_transition_at >= {a} AND next_transition_at <= {b} GROUP BY package_type, tier"
        );
        let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [from.into(), until.into()]);
        let mut out = Vec::new();
        for row in self.db.query_all_raw(stmt).await? {
            out.push((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
                row.try_get_by_index(3)?,
                row.try_get_by_index(4)?,
            ));
        }
        Ok(out)
    }

    /// A group's `limit` soonest packages due in `[from, until]`: (id, due at).
    async fn soonest(
        &self,
        ptype: &str,
        tier: &str,
        from: Millis,
        until: Millis,
        limit: u64,
    ) -> Result<Vec<(String, Millis)>> {
        let rows: Vec<(String, Option<Millis>)> = package::Entity::find()
            .select_only()
            .columns([package::Column::PackageId, package::Column::NextTransitionAt])
            .filter(package::Column::PackageType.eq(ptype))
            .filter(package::Column::Tier.eq(tier))
            .filter(package::Column::NextTransitionAt.gte(from))
            .filter(package::Column::NextTransitionAt.lte(until))
            .order_by_asc(package::Column::NextTransitionAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(id, at)| (id, at.unwrap_or(from))).collect())
    }

    /// The incrementally kept (type, tier, status) counters.
    pub async fn counters(&self) -> Result<HashMap<CounterKey, Counter>> {
        let mut out = HashMap::new();
        for row in package_counter::Entity::find().all(&self.db).await? {
            let package_type = parse_stored(&row.package_type, PackageType::parse, "package type")?;
            let tier = if row.tier.is_empty() { None } else { Some(parse_stored(&row.tier, Tier::parse, "tier")?) };
            let status = parse_stored(&row.status, PackageStatus::parse, "package status")?;
            out.insert((package_type, tier, status), Counter { count: row.count, bytes: row.bytes });
        }
        Ok(out)
    }

    /// Newest packages of a tier.
    pub async fn tier_samples(&self, tier: Option<Tier>, limit: u64) -> Result<Vec<Package>> {
        self.list_packages(&PackageFilter { tier: Some(tier), ..Default::default() }, None, limit).await
    }
}

/// The statement of a package listing: `f`, newest id first, ids below `after`, `limit` rows.
fn listing(f: &PackageFilter, after: Option<&str>, limit: u64) -> sea_orm::Select<package::Entity> {
    let mut q = package::Entity::find();
    if let Some(s) = f.status {
        q = q.filter(package::Column::Status.eq(s.as_str()));
    }
    if let Some(s) = &f.source_id {
        q = q.filter(package::Column::SourceId.eq(s.as_str()));
    }
    if let Some(t) = f.package_type {
        q = q.filter(package::Column::PackageType.eq(t.as_str()));
    }
    if let Some(t) = f.tier {
        q = q.filter(package::Column::Tier.eq(tier_str(t)));
    }
    if let Some(p) = &f.path_prefix {
        // LIKE finds candidates by index, its wildcards escaped (`/x_y` is not `/xzy`); the
        // exact comparison keeps it case-sensitive on SQLite too.
        let pattern = sea_orm::sea_query::LikeExpr::new(format!("{}%", catalog::like_escape(p))).escape('\\');
        // An INTEGER argument: PostgreSQL has no SUBSTR(text, int, bigint).
        let n = i32::try_from(p.chars().count()).unwrap_or(i32::MAX);
        let head = sea_orm::sea_query::Func::cust("SUBSTR").arg(Expr::col(package::Column::Path)).arg(1).arg(n);
        q = q.filter(package::Column::Path.like(pattern)).filter(Expr::expr(head).eq(p.as_str()));
    }
    if let Some(text) = &f.query {
        let lower = text.to_lowercase();
        let prefix = sea_orm::sea_query::LikeExpr::new(format!("{}%", catalog::like_escape(&lower))).escape('\\');
        q = q.filter(
            Condition::any()
                .add(lower_like(package::Column::PackageId, prefix.clone()))
                .add(lower_like(package::Column::Sha256, prefix))
                .add(package::Column::SourceId.eq(text.as_str()))
                .add(lower_like(package::Column::Path, contains_pattern(text))),
        );
    }
    if let Some(a) = after {
        q = q.filter(package::Column::PackageId.lt(a));
    }
    q.order_by_desc(package::Column::PackageId).limit(limit)
}
