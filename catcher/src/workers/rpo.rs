//! Recovery points judged against their objectives: per source and folder, the time since the
//! last pass that left every file with a verified copy, against the RPO of its package type (or
//! the source's own); a folder never fully backed up from its first pass. A backing-up source
//! with no folder reported (an agent from before recovery points, or one that never finished a
//! pass) is judged from its last stored package, else from when it was first seen, under the
//! shortest objective in force.

use std::collections::{BTreeMap, HashSet};

use crate::domain::*;
use crate::error::Result;
use crate::store::Store;

/// Every recovery point (of `only` when given) judged at `now`, by source then folder;
/// `sources` are the sources concerned (the caller has read them: the evaluator uses them too).
pub async fn views(
    store: &Store,
    by_source: &BTreeMap<String, u64>,
    sources: &[Source],
    only: Option<&str>,
    now: Millis,
) -> Result<Vec<RpoView>> {
    let rules = store.rule_sets().await?;
    let rpo_of_type =
        |t: PackageType| rules.iter().find(|r| r.package_type == t).map_or_else(|| default_rpo_ms(t), |r| r.rpo_ms());
    let override_of = |s: &str| by_source.get(s).map(|secs| (*secs as Millis).saturating_mul(1000));
    let shortest = rules.iter().map(|r| r.rpo_ms()).filter(|&ms| ms > 0).min().unwrap_or(DAY_MS);
    let points = store.recovery_points(only).await?;
    let mut out = Vec::with_capacity(points.len());
    let mut with_points = HashSet::new();
    for p in points {
        let rpo_ms = override_of(&p.source_id).unwrap_or_else(|| rpo_of_type(p.package_type));
        // Never fully backed up: judged from its first pass, not from the epoch.
        let age_ms = now.saturating_sub(p.last_backup_at.unwrap_or(p.first_pass_at)).max(0);
        with_points.insert(p.source_id.clone());
        out.push(RpoView {
            state: RpoView::state_of(rpo_ms, age_ms),
            source_id: p.source_id,
            folder: p.folder,
            package_type: p.package_type,
            rpo_ms,
            last_backup_at: p.last_backup_at,
            last_pass_at: Some(p.last_pass_at),
            age_ms,
            unprotected: p.unprotected,
        });
    }
    for s in sources.iter().filter(|s| only.is_none_or(|id| s.source_id == id)) {
        if with_points.contains(&s.source_id) || !s.capabilities.contains(&Capability::Backup) {
            continue;
        }
        let rpo_ms = override_of(&s.source_id).unwrap_or(shortest);
        // An agent from before recovery points reports none: its last stored package is the
        // best word on it; a source that never stored one is judged from when it was first seen.
        let since = s.last_completed_at.unwrap_or(s.first_seen_at).max(s.first_seen_at);
        let age_ms = now.saturating_sub(since).max(0);
        out.push(RpoView {
            state: RpoView::state_of(rpo_ms, age_ms),
            source_id: s.source_id.clone(),
            folder: String::new(),
            package_type: PackageType::UserData,
            rpo_ms,
            last_backup_at: s.last_completed_at,
            last_pass_at: None,
            age_ms,
            unprotected: 0,
        });
    }
    out.sort_by(|a, b| (&a.source_id, &a.folder).cmp(&(&b.source_id, &b.folder)));
    Ok(out)
}
