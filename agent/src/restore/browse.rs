//! The catalog from a shell: `agent restore` of a state, `agent ls`, `agent versions`.

use std::path::Path;
use std::process::ExitCode;

use edgebackup_proto::v1::{self as pb, catalog_service_client::CatalogServiceClient};
use tonic::transport::Channel;

use super::state::{self, Selection};
use crate::config::Config;

/// `--as-of`: RFC 3339, or `latest` / nothing for the latest state.
pub fn moment(text: Option<&str>) -> Result<Option<prost_types::Timestamp>, String> {
    match text.map(str::trim) {
        None | Some("") | Some("latest") => Ok(None),
        Some(t) => {
            let at = chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("--as-of {t}: {e} (expected RFC 3339, e.g. 2026-12-01T09:00:00Z, or latest)"))?;
            Ok(Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }))
        }
    }
}

async fn channel(config: &Config) -> anyhow::Result<Channel> {
    super::catcher_channel(config).await.map_err(anyhow::Error::msg)
}

pub async fn restore(config: &Config, sel: &Selection, to: &Path) -> anyhow::Result<ExitCode> {
    // On a terminal only (indicatif draws nothing when stderr is not one).
    let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "restoring {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
        )
        .map_err(|e| anyhow::anyhow!("progress template: {e}"))?,
    );
    bar.set_message("0 files");
    let shown = bar.clone();
    let on_progress: state::OnProgress = std::sync::Arc::new(move |p: state::Progress| {
        shown.set_length(p.total_bytes);
        shown.set_position(p.bytes);
        shown.set_message(format!("{} files", p.files));
    });
    let result = state::restore(config, channel(config).await?, sel, to, Some(on_progress)).await;
    bar.finish_and_clear();
    let summary = result.map_err(anyhow::Error::msg)?;
    println!("{}", summary.report(to));
    Ok(if summary.skipped.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn line(e: &pb::FileEntry) -> String {
    let k = match pb::EntryKind::try_from(e.kind).unwrap_or(pb::EntryKind::Unspecified) {
        pb::EntryKind::Directory => 'd',
        pb::EntryKind::Symlink => 'l',
        pb::EntryKind::Hardlink => 'h',
        _ => '-',
    };
    let mut s = format!("{k}{:04o} {:>12} {} {}", e.mode, e.size_bytes, time(e.modified_at.as_ref()), e.path);
    if !e.target.is_empty() {
        s.push_str(&format!(" -> {}", e.target));
    }
    if k == '-' && e.package_id.is_empty() {
        s.push_str("  (no copy yet)");
    }
    s
}

pub async fn ls(
    config: &Config,
    source: &str,
    folder: Option<String>,
    as_of: Option<prost_types::Timestamp>,
    prefix: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut catalog = CatalogServiceClient::new(channel(config).await?);
    let folders = match folder {
        Some(f) => vec![f],
        None => {
            let request = pb::ListFoldersRequest { source_id: source.into() };
            catalog
                .list_folders(request)
                .await
                .map_err(|s| anyhow::anyhow!(s.message().to_owned()))?
                .into_inner()
                .folders
        }
    };
    for f in folders {
        println!("{f}:");
        for e in state::state(&mut catalog, source, &f, as_of).await.map_err(anyhow::Error::msg)? {
            if prefix.is_none_or(|p| e.path.starts_with(p)) {
                println!("  {}", line(&e));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// (folder, path inside it) of what the user typed.
fn resolve(config: &Config, folder: Option<&str>, path: &str) -> Result<(String, String), String> {
    if let Some(f) = folder {
        let f = f.trim_end_matches('/');
        let rel = path.strip_prefix(&format!("{f}/")).unwrap_or(path);
        return Ok((f.to_owned(), rel.trim_start_matches('/').to_owned()));
    }
    let configured: Vec<String> =
        config.folders.iter().map(|f| f.path.to_string_lossy().trim_end_matches('/').to_owned()).collect();
    if path.starts_with('/') {
        return configured
            .iter()
            .find_map(|f| path.strip_prefix(&format!("{f}/")).map(|rel| (f.clone(), rel.to_owned())))
            .ok_or_else(|| format!("{path} is in none of the watched folders; name one with --folder"));
    }
    match configured.as_slice() {
        [only] => Ok((only.clone(), path.to_owned())),
        _ => Err(format!("{path}: several folders are watched; name one with --folder")),
    }
}

pub async fn versions(config: &Config, source: &str, folder: Option<&str>, path: &str) -> anyhow::Result<ExitCode> {
    let (folder, rel) = match resolve(config, folder, path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut catalog = CatalogServiceClient::new(channel(config).await?);
    let request = pb::ListVersionsRequest { source_id: source.into(), folder, path: rel, page_size: 1000 };
    let versions = catalog
        .list_versions(request)
        .await
        .map_err(|s| anyhow::anyhow!(s.message().to_owned()))?
        .into_inner()
        .versions;
    if versions.is_empty() {
        println!("no versions recorded for {path}");
        return Ok(ExitCode::FAILURE);
    }
    for v in versions {
        let Some(e) = &v.entry else { continue };
        let until = match (&v.until, v.deleted) {
            (None, _) => "now".to_owned(),
            (Some(t), true) => format!("{} (deleted)", time(Some(t))),
            (Some(t), false) => time(Some(t)),
        };
        let sha: String = e.sha256.chars().take(12).collect();
        println!("{} .. {until}  {}  sha256 {sha}  package {}", time(v.since.as_ref()), line(e), e.package_id);
    }
    Ok(ExitCode::SUCCESS)
}
