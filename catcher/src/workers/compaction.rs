//! Compaction planner: finds packages kept only for a few current versions (retention never
//! expires the newest version of a present file) and asks their agent to package those files
//! again, from the device. Once the new package is stored and verified, the catalog moves the
//! versions to it (`writer::catalog`, relocation) and the old package lets go and expires by its
//! rules. Storage so stays proportional to what is needed, not to every package ever made.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{CommandArgs, CommandKind, CommandState, CompactArgs, MAX_COMPACT_PATHS, now_ms};
use crate::error::Result;
use crate::store::{CommandFilter, Store};
use crate::writer::{CreateCommand, NewCommand, Writer};

/// Packages looked at per round.
const SCAN: u64 = 2000;
/// Most bytes of paths one command carries (well under an agent's 16 MiB frame limit).
const MAX_PATH_BYTES: usize = 4 << 20;

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
    let mut plans: BTreeMap<(String, String), (CompactArgs, usize)> = BTreeMap::new();
    for c in candidates {
        let bytes: usize = c.paths.iter().map(String::len).sum();
        let key = (c.source_id.clone(), c.folder.clone());
        let (count, size) = plans.get(&key).map_or((0, 0), |(a, b)| (a.paths.len(), *b));
        if count + c.paths.len() > MAX_COMPACT_PATHS || size + bytes > MAX_PATH_BYTES {
            // Too much for one command: a later round (after the cursor wraps) takes it.
            tracing::debug!(package = %c.package_id, files = c.paths.len(), "compaction candidate left for a later round");
            continue;
        }
        tracing::debug!(package = %c.package_id, live = c.live_bytes, total = c.total_bytes, "compaction candidate");
        let (plan, size) =
            plans.entry(key).or_insert_with(|| (CompactArgs { folder: c.folder.clone(), ..CompactArgs::default() }, 0));
        plan.paths.extend(c.paths);
        plan.package_ids.push(c.package_id);
        *size += bytes;
    }
    let mut queued = 0;
    let mut busy: Vec<String> = Vec::new();
    for ((source_id, _), (args, _)) in plans {
        if busy.contains(&source_id) {
            continue;
        }
        busy.push(source_id.clone());
        let mine = CommandFilter {
            source_id: Some(source_id.clone()),
            kind: Some(CommandKind::Compact),
            ..Default::default()
        };
        // One at a time per source, and after a failure (an agent that cannot, a folder it no
        // longer watches) a pause of several intervals rather than a command every interval.
        if let Some(last) = store.commands(&mine, 1).await?.pop() {
            let backoff = i64::try_from(policy.interval.as_millis().saturating_mul(6)).unwrap_or(i64::MAX);
            let failed_lately = last.state == CommandState::Failed
                && last.finished_at.is_some_and(|at| at.saturating_add(backoff) > now_ms());
            if matches!(last.state, CommandState::Pending | CommandState::Leased) || failed_lately {
                continue;
            }
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
