//! CatalogService: a folder as of a moment, the versions of a path, file-name search, and
//! coverage (present files without a verified copy).

use edgebackup_proto::v1::{self as pb, catalog_service_server::CatalogService};
use tonic::{Request, Response, Status};

use super::{Shared, Touching, caller, convert, respond_as, scope, validate as v};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::store::SearchKey;

pub struct Catalog(pub Shared);

fn kind(k: EntryKind) -> pb::EntryKind {
    match k {
        EntryKind::File => pb::EntryKind::File,
        EntryKind::Directory => pb::EntryKind::Directory,
        EntryKind::Symlink => pb::EntryKind::Symlink,
        EntryKind::Hardlink => pb::EntryKind::Hardlink,
    }
}

pub fn version(v: FileVersion) -> pb::FileVersion {
    let e = v.entry;
    let modified = prost_types::Timestamp {
        seconds: e.modified_ns.div_euclid(1_000_000_000),
        nanos: e.modified_ns.rem_euclid(1_000_000_000) as i32,
    };
    pb::FileVersion {
        source_id: v.source_id,
        folder: v.folder,
        entry: Some(pb::FileEntry {
            path: e.path,
            kind: kind(e.kind) as i32,
            size_bytes: e.size_bytes,
            sha256: e.sha256,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            modified_at: Some(modified),
            target: e.target,
            package_id: e.package_id,
            range: e.range.map(|r| pb::PackRange { offset: r.offset, length: r.length, skip: r.skip }),
        }),
        since: Some(convert::ts(v.since)),
        until: convert::ts_opt(v.until),
        deleted: v.deleted,
    }
}

fn folder_path(value: &str) -> Result<String> {
    let f = v::path("folder", value)?;
    if !f.starts_with('/') {
        return Err(Error::invalid("folder", "must be the watched folder's absolute path"));
    }
    Ok(f)
}

impl Catalog {
    /// A page of entries in effect at `as_of` (now when unset), of one directory or the whole
    /// folder; the token is the last path of the previous page.
    /// The source id, validated, when the caller may read it (an agent: its own, or one whose
    /// restore it runs).
    async fn readable(&self, who: &crate::auth::Principal, source_id: &str) -> Result<String> {
        let source_id = v::id("source_id", source_id)?;
        scope(&self.0, who, &source_id, Touching::Reading).await?;
        Ok(source_id)
    }

    async fn page(
        &self,
        source_id: &str,
        folder: &str,
        directory: Option<&str>,
        as_of: Option<&prost_types::Timestamp>,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<pb::FileVersion>, String)> {
        let source_id = v::id("source_id", source_id)?;
        let folder = folder_path(folder)?;
        let directory = match directory {
            Some("") | None => directory.map(|_| String::new()),
            Some(d) => Some(v::relative_path("directory", d)?),
        };
        let as_of = v::timestamp_ms("as_of", as_of)?.unwrap_or_else(now_ms);
        let limit = v::limit("page_size", page_size, 1000, 10_000)?;
        let after = if page_token.is_empty() { None } else { Some(v::relative_path("page_token", page_token)?) };
        let store = &self.0.store;
        let mut entries =
            store.list_entries(&source_id, &folder, directory.as_deref(), as_of, after.as_deref(), limit + 1).await?;
        let more = entries.len() as u64 > limit;
        entries.truncate(limit as usize);
        let next = if more { entries.last().map(|e| e.entry.path.clone()).unwrap_or_default() } else { String::new() };
        Ok((entries.into_iter().map(version).collect(), next))
    }

    async fn versions(&self, r: pb::ListVersionsRequest) -> Result<pb::ListVersionsResponse> {
        let source_id = v::id("source_id", &r.source_id)?;
        let folder = folder_path(&r.folder)?;
        let path = v::relative_path("path", &r.path)?;
        let limit = v::limit("page_size", r.page_size, 100, 1000)?;
        let versions = self.0.store.versions(&source_id, &folder, &path, limit).await?;
        Ok(pb::ListVersionsResponse { versions: versions.into_iter().map(version).collect() })
    }

    async fn search(&self, r: pb::SearchFilesRequest) -> Result<pb::SearchFilesResponse> {
        let source_id = if r.source_id.is_empty() { None } else { Some(v::id("source_id", &r.source_id)?) };
        let query = r.query.trim();
        let n = query.chars().count();
        if !(2..=256).contains(&n) {
            return Err(Error::invalid("query", "must be 2 to 256 characters"));
        }
        if query.chars().any(char::is_control) {
            return Err(Error::invalid("query", "contains control characters"));
        }
        let limit = v::limit("page_size", r.page_size, 100, 1000)?;
        let after = if r.page_token.is_empty() {
            None
        } else if r.page_token.len() > 16 * 1024 {
            return Err(Error::invalid("page_token", "not a token from SearchFiles"));
        } else {
            let key: SearchKey = serde_json::from_str(&r.page_token)
                .map_err(|_| Error::invalid("page_token", "not a token from SearchFiles"))?;
            Some(key)
        };
        let store = &self.0.store;
        let mut found =
            store.search_entries(source_id.as_deref(), query, r.include_deleted, after.as_ref(), limit + 1).await?;
        let more = found.len() as u64 > limit;
        found.truncate(limit as usize);
        let next_page_token = match (more, found.last()) {
            (true, Some((key, _))) => {
                serde_json::to_string(key).map_err(|e| Error::Corrupt(format!("search token: {e}")))?
            }
            _ => String::new(),
        };
        Ok(pb::SearchFilesResponse { matches: found.into_iter().map(|(_, v)| version(v)).collect(), next_page_token })
    }

    async fn coverage(&self, r: pb::GetCoverageRequest) -> Result<pb::GetCoverageResponse> {
        let source_id = if r.source_id.is_empty() { None } else { Some(v::id("source_id", &r.source_id)?) };
        let sample = v::limit("sample", r.sample, 20, 1000)?;
        let c = self.0.store.coverage(source_id.as_deref(), sample).await?;
        Ok(pb::GetCoverageResponse {
            present_files: c.present_files,
            unprotected_files: c.unprotected_files,
            unprotected: c.unprotected.into_iter().map(version).collect(),
        })
    }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn list_folder(&self, r: Request<pb::ListFolderRequest>) -> Result<Response<pb::ListFolderResponse>, Status> {
        let who = caller(&r);
        let r = r.into_inner();
        let dir = Some(r.directory.as_str());
        let page = async {
            self.readable(&who, &r.source_id).await?;
            self.page(&r.source_id, &r.folder, dir, r.as_of.as_ref(), r.page_size, &r.page_token).await
        }
        .await;
        respond_as(
            &self.0,
            &who,
            page.map(|(entries, next_page_token)| pb::ListFolderResponse { entries, next_page_token }),
        )
    }

    async fn list_state(&self, r: Request<pb::ListStateRequest>) -> Result<Response<pb::ListStateResponse>, Status> {
        let who = caller(&r);
        let r = r.into_inner();
        let page = async {
            self.readable(&who, &r.source_id).await?;
            self.page(&r.source_id, &r.folder, None, r.as_of.as_ref(), r.page_size, &r.page_token).await
        }
        .await;
        respond_as(
            &self.0,
            &who,
            page.map(|(entries, next_page_token)| pb::ListStateResponse { entries, next_page_token }),
        )
    }

    async fn list_folders(
        &self,
        r: Request<pb::ListFoldersRequest>,
    ) -> Result<Response<pb::ListFoldersResponse>, Status> {
        let who = caller(&r);
        let result = async {
            let source_id = self.readable(&who, &r.get_ref().source_id).await?;
            Ok(pb::ListFoldersResponse { folders: self.0.store.catalog_folders(&source_id).await? })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn list_versions(
        &self,
        r: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let who = caller(&r);
        let r = r.into_inner();
        let result = async {
            self.readable(&who, &r.source_id).await?;
            self.versions(r).await
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn search_files(
        &self,
        r: Request<pb::SearchFilesRequest>,
    ) -> Result<Response<pb::SearchFilesResponse>, Status> {
        let who = caller(&r);
        respond_as(&self.0, &who, self.search(r.into_inner()).await)
    }

    async fn get_coverage(
        &self,
        r: Request<pb::GetCoverageRequest>,
    ) -> Result<Response<pb::GetCoverageResponse>, Status> {
        let who = caller(&r);
        respond_as(&self.0, &who, self.coverage(r.into_inner()).await)
    }
}
