//! A RESTORE command from the catcher: a state from the catalog into a directory this agent
//! allows (`restore_roots`; anything else, symlinks included, is refused before a byte is read).

use std::path::{Component, Path, PathBuf};

use edgebackup_proto::v1 as pb;

use super::state::{self, Selection, Summary};
use crate::config::Config;

/// `target` resolved (symlinks of the part that exists followed), if it lies inside a root.
pub fn within_roots(target: &Path, roots: &[PathBuf]) -> Result<PathBuf, String> {
    if roots.is_empty() {
        return Err("target_dir: this agent allows no restores from the catcher (restore_roots is empty)".into());
    }
    if !target.is_absolute() || target.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("target_dir: {} must be an absolute path without '..'", target.display()));
    }
    let mut existing = target.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(ToOwned::to_owned), existing.parent().map(Path::to_path_buf)) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = existing.canonicalize().map_err(|e| format!("target_dir: {}: {e}", existing.display()))?;
    resolved.extend(rest.iter().rev());
    let inside = roots.iter().any(|root| resolved.starts_with(root.canonicalize().unwrap_or_else(|_| root.clone())));
    if !inside {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(format!(
            "target_dir: {} is outside this agent's restore_roots ({})",
            resolved.display(),
            roots.join(", ")
        ));
    }
    Ok(resolved)
}

/// Runs a RESTORE command; the result's details say what was restored and what was not.
pub async fn run(
    config: &Config,
    args: pb::RestoreArgs,
    on_progress: state::OnProgress,
) -> Result<(Summary, PathBuf), String> {
    let target = within_roots(Path::new(&args.target_dir), &config.restore_roots)?;
    let sel = Selection {
        source: if args.source_id.is_empty() { config.source_id.clone() } else { args.source_id },
        folders: args.folders,
        as_of: args.as_of,
        paths: args.paths,
        overwrite: args.overwrite,
        station: None,
    };
    let channel = super::catcher_channel(config).await?;
    let summary = state::restore(config, channel, &sel, &target, Some(on_progress)).await?;
    Ok((summary, target))
}

/// The result details of a restore.
pub fn details(s: &Summary) -> pb::RestoreResult {
    pb::RestoreResult {
        files: s.files,
        bytes: s.bytes,
        unchanged: s.unchanged,
        directories: s.directories,
        links: s.links,
        skipped: s
            .skipped
            .iter()
            .take(1000)
            .map(|(path, reason)| pb::RestoreSkip { path: path.clone(), reason: reason.clone() })
            .collect(),
        damaged: s.damaged.iter().take(1000).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_targets_inside_a_root_pass_symlinks_included() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        assert!(within_roots(&root.path().join("new/deeper"), &roots).is_ok());
        assert!(within_roots(outside.path(), &roots).unwrap_err().contains("outside"));
        assert!(within_roots(&root.path().join("../x"), &roots).unwrap_err().contains("'..'"));
        assert!(within_roots(Path::new("relative"), &roots).is_err());
        assert!(within_roots(root.path(), &[]).unwrap_err().contains("restore_roots is empty"));
        // A symlink inside the root that points out of it does not smuggle a restore out.
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        assert!(within_roots(&root.path().join("escape/sub"), &roots).unwrap_err().contains("outside"));
    }
}
