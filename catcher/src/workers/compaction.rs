//! Compaction planner: finds packages kept only for a few current versions (retention never
//! expires the newest version of a present file) and asks their agent to package those files
//! again, from the device. Once the new package is stored and verified, the catalog moves the
//! versions to it (`writer::catalog`, relocation) and the old package lets go and expires by its
//! rules. Storage so stays proportional to what is needed, not to every package ever made.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{CommandArgs, CommandKind, CompactArgs, MAX_COMPACT_PATHS, now_ms};
use crate::error::Result;
use crate::store::{CommandFilter, Store};
use crate::writer::{CreateCommand, NewCommand, Writer};

/// Packages looked at per round.
const SCAN: u64 = 2000;

/// When to compact.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub interval: Duration,
    pub min_age: Duration,
    pub max_live_percent: u32,
}

/// Runs a round every `policy.interval` (never when zero) until `stop`.
pub async fn run(store: Store, writer: Writer, policy: Policy, stop: CancellationToken) {
    if policy.interval.is_zero() {
        return stop.cancelled().await;
    }
    let mut after = String::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(policy.interval) => {}
            () = stop.cancelled() => return,
        }
        match round(&store, &writer, policy, &after).await {
            Ok((queued, next)) => {
                if queued > 0 {
                    tracing::info!(queued, "compaction queued");
                }
                after = next.unwrap_or_default(); // wraps around at the end
            }
            Err(e) => tracing::warn!(error = %e, "compaction round failed; retrying next interval"),
        }
    }
}

/// One round: candidates after `after`, grouped per source and folder into commands (one open
/// compaction per source at a time). Returns the commands queued and where the next round starts.
pub async fn round(store: &Store, writer: &Writer, policy: Policy, after: &str) -> Result<(usize, Option<String>)> {
    let min_age = i64::try_from(policy.min_age.as_millis()).unwrap_or(i64::MAX);
    let made_before = now_ms().saturating_sub(min_age);
    let (candidates, last) = store.compaction_candidates(after, SCAN, made_before, policy.max_live_percent).await?;
    let mut plans: BTreeMap<(String, String), CompactArgs> = BTreeMap::new();
    for c in candidates {
        let plan = plans
            .entry((c.source_id.clone(), c.folder.clone()))
            .or_insert_with(|| CompactArgs { folder: c.folder.clone(), ..CompactArgs::default() });
        if plan.paths.len() + c.paths.len() > MAX_COMPACT_PATHS {
            continue; // the next round takes it
        }
        tracing::debug!(package = %c.package_id, live = c.live_bytes, total = c.total_bytes, "compaction candidate");
        plan.paths.extend(c.paths);
        plan.package_ids.push(c.package_id);
    }
    let mut queued = 0;
    let mut busy: Vec<String> = Vec::new();
    for ((source_id, _), args) in plans {
        if busy.contains(&source_id) {
            continue;
        }
        let open = CommandFilter {
            source_id: Some(source_id.clone()),
            open: true,
            kind: Some(CommandKind::Compact),
            ..Default::default()
        };
        busy.push(source_id.clone());
        if !store.commands(&open, 1).await?.is_empty() {
            continue;
        }
        let command = NewCommand {
            source_id,
            package_id: String::new(),
            args: CommandArgs::Compact(args),
            actor: "catcher:compaction".to_owned(),
        };
        writer.submit(CreateCommand(command)).await?;
        queued += 1;
    }
    Ok((queued, last))
}
