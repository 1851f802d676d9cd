//! Read-path load: ListPackages with each filter, GetStatus, GetTierSummary and GetProjections,
//! called back to back by a few clients; latency per kind of request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use edgebackup_common::client::PersonChannel as Channel;
use edgebackup_proto::v1 as pb;
use pb::{package_service_client::PackageServiceClient, status_service_client::StatusServiceClient};

use crate::hist::Hist;

/// One request the query load makes.
#[derive(Debug, Clone)]
pub enum Query {
    List(&'static str, pb::ListPackagesRequest),
    /// Five pages deep, following next_page_token (each page timed).
    ListDeep(pb::ListPackagesRequest),
    Status,
    TierSummary,
    Projections,
    /// A directory of the catalog as of a moment (`edge-datagen --catalog-sources`).
    CatalogFolder(pb::ListFolderRequest),
    /// The versions of one path.
    CatalogVersions(pb::ListVersionsRequest),
}

impl Query {
    pub fn name(&self) -> &'static str {
        match self {
            Query::List(name, _) => name,
            Query::ListDeep(_) => "list_page_1_to_5",
            Query::Status => "get_status",
            Query::TierSummary => "get_tier_summary",
            Query::Projections => "get_projections_30d",
            Query::CatalogFolder(_) => "catalog_list_directory_as_of",
            Query::CatalogVersions(_) => "catalog_versions_of_a_path",
        }
    }
}

/// The request mix, using a source and a path prefix found in the data.
pub async fn plan(ch: Channel, page_size: u32) -> anyhow::Result<Vec<Query>> {
    let ch_catalog = ch.clone();
    let first = PackageServiceClient::new(ch)
        .list_packages(pb::ListPackagesRequest { page_size: 1, ..Default::default() })
        .await
        .context("ListPackages to find a source and a path")?
        .into_inner();
    let sample = first.packages.into_iter().next().context("the catcher has no packages; fill it with edge-datagen")?;
    let prefix = match sample.path.match_indices('/').nth(2) {
        Some((i, _)) => sample.path[..=i].to_owned(),
        None => sample.path.clone(),
    };
    let base = pb::ListPackagesRequest { page_size, ..Default::default() };
    let with = |f: &dyn Fn(&mut pb::ListPackagesRequest)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    use pb::{PackageStatus as S, PackageType as T, Tier};
    let mut mix = vec![
        Query::List("list_all", base.clone()),
        Query::List("list_status_completed", with(&|r| r.status = S::Completed as i32)),
        Query::List("list_status_failed", with(&|r| r.status = S::Failed as i32)),
        Query::List("list_source", with(&|r| r.source_id = sample.source_id.clone())),
        Query::List("list_type_audit_logs", with(&|r| r.package_type = T::AuditLogs as i32)),
        Query::List("list_tier_cold", with(&|r| r.tier = Tier::Cold as i32)),
        Query::List("list_path_prefix", with(&|r| r.path_prefix = prefix.clone())),
        Query::List(
            "list_status_failed_type_cache",
            with(&|r| {
                r.status = S::Failed as i32;
                r.package_type = T::Cache as i32;
            }),
        ),
        Query::List(
            "list_source_tier_hot",
            with(&|r| {
                r.source_id = sample.source_id.clone();
                r.tier = Tier::Hot as i32;
            }),
        ),
        Query::ListDeep(with(&|r| r.status = S::Completed as i32)),
        Query::Status,
        Query::TierSummary,
        Query::Projections,
    ];
    mix.extend(catalog_plan(ch_catalog).await?);
    Ok(mix)
}

/// Catalog queries when the catalog was filled (by `edge-datagen --catalog-sources`): folder
/// listings of whole directories at several moments, and versions of paths, over several sources.
async fn catalog_plan(ch: Channel) -> anyhow::Result<Vec<Query>> {
    use crate::catalog::{DAY_MS, FOLDER, START_MS, dir, file, source_id};
    let mut catalog = pb::catalog_service_client::CatalogServiceClient::new(ch);
    let folders = catalog.list_folders(pb::ListFoldersRequest { source_id: source_id(0) }).await?.into_inner();
    if folders.folders.is_empty() {
        return Ok(Vec::new());
    }
    let ts = |ms: i64| Some(prost_types::Timestamp { seconds: ms / 1000, nanos: 0 });
    let mut out = Vec::new();
    for (k, (s, d)) in [(0u32, 3u32), (37, 7), (73, 1)].into_iter().enumerate() {
        for as_of in [ts(START_MS + DAY_MS * 5 / 2), ts(START_MS + DAY_MS * (6 + k as i64)), None] {
            out.push(Query::CatalogFolder(pb::ListFolderRequest {
                source_id: source_id(s),
                folder: FOLDER.into(),
                directory: dir(d),
                as_of,
                page_size: 1000,
                page_token: String::new(),
            }));
        }
        out.push(Query::CatalogVersions(pb::ListVersionsRequest {
            source_id: source_id(s),
            folder: FOLDER.into(),
            path: file(d, 500 + k as u32),
            page_size: 100,
        }));
    }
    Ok(out)
}

/// Latency per query name, plus "list_any" over every list request.
pub type Results = BTreeMap<String, Hist>;

/// Runs the mix round-robin on one client until `until`.
pub async fn run_client(ch: Channel, mix: &[Query], until: Instant) -> anyhow::Result<(Results, u64)> {
    let mut packages = PackageServiceClient::new(ch.clone());
    let mut catalog = pb::catalog_service_client::CatalogServiceClient::new(ch.clone());
    let mut status = StatusServiceClient::new(ch);
    let mut out = Results::new();
    let mut errors = 0;
    let record = |out: &mut Results, name: &str, d: Duration, list: bool| {
        out.entry(name.to_owned()).or_default().record(d);
        if list {
            out.entry("list_any".to_owned()).or_default().record(d);
        }
    };
    while Instant::now() < until {
        for q in mix {
            let t = Instant::now();
            let ok = match q {
                Query::List(_, r) => packages.list_packages(r.clone()).await.map(|_| ()),
                Query::ListDeep(r) => {
                    let mut r = r.clone();
                    let mut result = Ok(());
                    for _ in 0..5 {
                        let t = Instant::now();
                        match packages.list_packages(r.clone()).await {
                            Ok(page) => {
                                record(&mut out, q.name(), t.elapsed(), true);
                                r.page_token = page.into_inner().next_page_token;
                                if r.page_token.is_empty() {
                                    break;
                                }
                            }
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    if result.is_err() {
                        errors += 1;
                    }
                    continue;
                }
                Query::Status => status.get_status(pb::GetStatusRequest {}).await.map(|_| ()),
                Query::TierSummary => {
                    status.get_tier_summary(pb::GetTierSummaryRequest { samples: 5 }).await.map(|_| ())
                }
                Query::Projections => status
                    .get_projections(pb::GetProjectionsRequest { days: 30, ..Default::default() })
                    .await
                    .map(|_| ()),
                Query::CatalogFolder(r) => catalog.list_folder(r.clone()).await.map(|_| ()),
                Query::CatalogVersions(r) => catalog.list_versions(r.clone()).await.map(|_| ()),
            };
            match ok {
                Ok(()) => record(&mut out, q.name(), t.elapsed(), matches!(q, Query::List(..))),
                Err(_) => errors += 1,
            }
        }
    }
    Ok((out, errors))
}
