//! PackageService: script ingest/update, listing with cursor pagination, get, delete, resume list.

use edgebackup_proto::v1::{self as pb, package_service_server::PackageService};
use tonic::{Request, Response, Status};

use super::{Shared, Touching, caller, convert, respond, respond_as, scope, validate as v};
use crate::auth::Principal;
use crate::domain::{PackageType, Tool};
use crate::error::{Error, Result};
use crate::store::PackageFilter;
use crate::writer::{DeletePackage, Ingest, NewPackage, PackagePatch, Patch, ReportChecks};

pub struct Packages(pub Shared);

impl Packages {
    async fn with_placements(&self, ps: Vec<crate::domain::Package>) -> Result<Vec<pb::Package>> {
        let ids: Vec<String> = ps.iter().map(|p| p.package_id.clone()).collect();
        let counts = self.0.store.file_counts_of(&ids).await?;
        let counted = ps.into_iter().map(|p| {
            let n = counts.get(&p.package_id).copied().unwrap_or(0);
            (p, n)
        });
        self.with_counted_placements(counted.collect()).await
    }

    /// Packages whose manifest entry counts are known, with their copies.
    async fn with_counted_placements(&self, ps: Vec<(crate::domain::Package, u64)>) -> Result<Vec<pb::Package>> {
        let ids: Vec<String> = ps.iter().map(|(p, _)| p.package_id.clone()).collect();
        let mut placements = self.0.store.placements_of(&ids).await?;
        Ok(ps
            .into_iter()
            .map(|(p, file_count)| {
                let pl = placements.remove(&p.package_id).unwrap_or_default();
                pb::Package { file_count, ..convert::package(p, pl) }
            })
            .collect())
    }

    async fn get(&self, id: &str, manifest: bool) -> Result<pb::Package> {
        let p = self.0.store.package(id).await?.ok_or_else(|| Error::not_found("package", id))?;
        let mut p = self.with_placements(vec![p]).await?.remove(0);
        if manifest {
            p.manifest = self.0.store.manifest(id).await?.into_iter().map(convert::manifest_entry).collect();
        }
        Ok(p)
    }

    /// An agent touches only its own packages (or reads those of a restore it runs).
    async fn owned(&self, who: &Principal, package_id: &str, touching: Touching) -> Result<()> {
        if who.agent_source().is_none() {
            return Ok(());
        }
        let p = self.0.store.package(package_id).await?.ok_or_else(|| Error::not_found("package", package_id))?;
        scope(&self.0, who, &p.source_id, touching).await
    }

    async fn ingest(&self, who: &Principal, r: pb::IngestPackageRequest) -> Result<pb::IngestPackageResponse> {
        let source_id = v::id("source_id", &r.source_id)?;
        scope(&self.0, who, &source_id, Touching::Writing).await?;
        let package_id = if r.package_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            v::package_id("package_id", &r.package_id)?
        };
        let fields = pb::Ingest {
            package_id: String::new(),
            path: r.path,
            package_type: r.package_type,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            tool: r.tool,
        };
        let package = new_package(package_id, &fields, "", true)?;
        let (p, created) = self.0.writer.submit(Ingest { source_id, package, actor: who.actor() }).await?;
        let id = p.package_id.clone();
        Ok(pb::IngestPackageResponse { package_id: id, package: Some(convert::package(p, Vec::new())), created })
    }

    async fn update(&self, who: &Principal, r: pb::UpdatePackageRequest) -> Result<pb::Package> {
        let package_id = v::package_id("package_id", &r.package_id)?;
        self.owned(who, &package_id, Touching::Writing).await?;
        let patch = PackagePatch {
            package_id,
            progress_percent: r.progress_percent.map(|p| v::percent("progress_percent", p)).transpose()?,
            bytes_done: r.bytes_done.map(|b| v::size("bytes_done", b)).transpose()?,
            sha256: r.sha256.as_deref().map(|s| v::sha256("sha256", s)).transpose()?.filter(|s| !s.is_empty()),
            status: match r.status {
                Some(s) => v::package_status("status", s, true)?,
                None => None,
            },
            error: r.error.map(|e| e.chars().take(4096).collect()),
            attempt: r.attempt,
            placements: v::placement_reports("placements", r.placements)?,
        };
        let id = patch.package_id.clone();
        self.0.writer.submit(Patch { patch, actor: who.actor() }).await?;
        self.get(&id, true).await
    }

    async fn list(&self, r: pb::ListPackagesRequest) -> Result<pb::ListPackagesResponse> {
        let limit = v::limit("page_size", r.page_size, 100, 1000)?;
        let after = if r.page_token.is_empty() {
            None
        } else {
            Some(
                v::package_id("page_token", &r.page_token)
                    .map_err(|_| Error::invalid("page_token", "not a token from ListPackages"))?,
            )
        };
        let filter = PackageFilter {
            status: v::package_status("status", r.status, false)?,
            source_id: (!r.source_id.is_empty()).then(|| v::id("source_id", &r.source_id)).transpose()?,
            package_type: v::package_type("package_type", r.package_type, false)?,
            tier: v::tier("tier", r.tier, false)?.map(Some),
            path_prefix: (!r.path_prefix.is_empty()).then(|| v::path("path_prefix", &r.path_prefix)).transpose()?,
            query: (!r.query.is_empty()).then(|| v::search_text("query", &r.query)).transpose()?,
        };
        // One extra row tells whether another page follows.
        let mut page = self.0.store.list_packages_counted(&filter, after.as_deref(), limit + 1).await?;
        let next_page_token = if page.len() as u64 > limit {
            page.truncate(limit as usize);
            page.last().map(|(p, _)| p.package_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListPackagesResponse { packages: self.with_counted_placements(page).await?, next_page_token })
    }
}

/// Validates the fields of an ingest, from a script or an agent; `prefix` qualifies field names.
/// `require_sha` is set for scripts, which know the checksum up front; an agent streaming a
/// package learns it at the end and sends it with Complete.
pub fn new_package(package_id: String, i: &pb::Ingest, prefix: &str, require_sha: bool) -> Result<NewPackage> {
    let f = |name: &str| format!("{prefix}{name}");
    let n = NewPackage {
        package_id,
        path: v::path(&f("path"), &i.path)?,
        package_type: v::package_type(&f("package_type"), i.package_type, false)?.unwrap_or(PackageType::UserData),
        size_bytes: v::size(&f("size_bytes"), i.size_bytes)?,
        sha256: v::sha256(&f("sha256"), &i.sha256)?,
        tool: v::tool(&f("tool"), i.tool, false)?.unwrap_or(Tool::Native),
        made_at: None,
    };
    if require_sha && n.size_bytes > 0 && n.sha256.is_empty() {
        return Err(Error::invalid(f("sha256"), "required when size_bytes > 0"));
    }
    Ok(n)
}

#[tonic::async_trait]
impl PackageService for Packages {
    async fn ingest_package(
        &self,
        r: Request<pb::IngestPackageRequest>,
    ) -> Result<Response<pb::IngestPackageResponse>, Status> {
        let who = caller(&r);
        respond(self.ingest(&who, r.into_inner()).await)
    }

    async fn update_package(&self, r: Request<pb::UpdatePackageRequest>) -> Result<Response<pb::Package>, Status> {
        let who = caller(&r);
        respond(self.update(&who, r.into_inner()).await)
    }

    async fn list_packages(
        &self,
        r: Request<pb::ListPackagesRequest>,
    ) -> Result<Response<pb::ListPackagesResponse>, Status> {
        let who = caller(&r);
        let r = r.into_inner();
        let result = async {
            // An agent lists its own packages (its scrub), named by source_id.
            if who.agent_source().is_some() {
                let source_id = v::id("source_id", &r.source_id)?;
                scope(&self.0, &who, &source_id, Touching::Writing).await?;
            }
            self.list(r).await
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn get_package(&self, r: Request<pb::GetPackageRequest>) -> Result<Response<pb::Package>, Status> {
        let who = caller(&r);
        let r = r.into_inner();
        let result = async {
            let id = v::package_id("package_id", &r.package_id)?;
            self.owned(&who, &id, Touching::Reading).await?;
            self.get(&id, !r.without_manifest).await
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn delete_package(
        &self,
        r: Request<pb::DeletePackageRequest>,
    ) -> Result<Response<pb::DeletePackageResponse>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            let package_id = v::package_id("package_id", &r.package_id)?;
            let op =
                DeletePackage { package_id: package_id.clone(), reason: r.reason.chars().take(1024).collect(), actor };
            let pending = self.0.writer.submit(op).await?;
            if pending.is_some() {
                self.0.pending_due.notify_one();
            }
            Ok(pb::DeletePackageResponse { package_id, pending: pending.map(convert::pending_change) })
        }
        .await;
        respond(result)
    }

    async fn get_resume_list(
        &self,
        r: Request<pb::GetResumeListRequest>,
    ) -> Result<Response<pb::GetResumeListResponse>, Status> {
        let who = caller(&r);
        let result = async {
            let source_id = v::id("source_id", &r.get_ref().source_id)?;
            scope(&self.0, &who, &source_id, Touching::Reading).await?;
            self.0.store.source(&source_id).await?.ok_or_else(|| Error::not_found("source", &source_id))?;
            let list = self.0.store.resume_list(&source_id).await?;
            Ok(pb::GetResumeListResponse { packages: self.with_placements(list).await? })
        }
        .await;
        respond(result)
    }

    async fn report_copy_checks(
        &self,
        r: Request<pb::ReportCopyChecksRequest>,
    ) -> Result<Response<pb::ReportCopyChecksResponse>, Status> {
        let who = caller(&r);
        let result = async {
            // The damage a check names is the reporting agent's to vouch for; a person orders a
            // Verify command instead (whose result lands here the same way).
            let Some(source_id) = who.agent_source() else {
                return Err(Error::PermissionDenied(
                    "only an agent reports its checks; order a Verify command (SourceService.CreateCommand)".into(),
                ));
            };
            let r = r.into_inner();
            let found_by = match pb::CheckOrigin::try_from(r.origin) {
                Ok(pb::CheckOrigin::Unspecified) => "verify",
                Ok(pb::CheckOrigin::Scrub) => "scrub",
                Err(_) => return Err(Error::invalid("origin", format!("unknown value {}", r.origin))),
            };
            let checks = super::commands_wire::checks_in("", pb::CopyChecks { checks: r.checks })?;
            if checks.is_empty() {
                return Err(Error::invalid("checks", "required"));
            }
            if let Some(i) = checks.iter().position(|c| c.station_id.is_empty()) {
                return Err(Error::invalid(format!("checks[{i}].station_id"), "required"));
            }
            let op = ReportChecks { source_id: source_id.to_owned(), checks, found_by };
            let d = self.0.writer.submit(op).await?;
            Ok(pb::ReportCopyChecksResponse { damaged: d.damaged, repairs: d.repairs })
        }
        .await;
        respond(result)
    }
}
