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
pub async fn run(
    store: Store,
    writer: Writer,
    lead: super::lease::Leadership,
    policy: Policy,
    stop: CancellationToken,
) {
    if policy.interval.is_zero() {
        return stop.cancelled().await;
    }
    let mut after = String::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(policy.interval) => {}
            () = stop.cancelled() => return,
        }
        let Some(writer) = lead.writer(&writer) else { continue };
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
        let mine = CommandFilter {
            source_id: Some(source_id.clone()),
            kind: Some(CommandKind::Compact),
            ..Default::default()
        };
        // One at a time per source. After a failure (an agent that cannot, a folder it no longer
        // watches) that folder pauses for several intervals while the source's others go on.
        if let Some(last) = store.commands(&mine, 1).await?.pop() {
            if matches!(last.state, CommandState::Pending | CommandState::Leased) {
                busy.push(source_id);
                continue;
            }
            let backoff = i64::try_from(policy.interval.as_millis().saturating_mul(6)).unwrap_or(i64::MAX);
            let failed_lately = last.state == CommandState::Failed
                && last.finished_at.is_some_and(|at| at.saturating_add(backoff) > now_ms());
            let same_folder = matches!(&last.args, CommandArgs::Compact(a) if a.folder == args.folder);
            if failed_lately && same_folder {
                continue;
            }
        }
        busy.push(source_id.clone());
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use edgebackup_testkit::db::{Db, TestDb};
    use tokio::sync::Notify;

    use super::*;
    use crate::domain::*;
    use crate::watch::Hub;
    use crate::writer::{
        AgentEvent, AgentEvents, Bootstrap, CommandOutcome, Completion, Hello, HelloInfo, NewPackage, SyncStations,
    };

    /// Events of a package of `paths` in `folder`, stored and verified, and the entries it holds.
    fn stored(folder: &str, paths: &[&str], now: Millis) -> (String, Vec<AgentEvent>) {
        let id = uuid::Uuid::now_v7().to_string();
        let sha = format!("{:064x}", now + paths.len() as i64);
        let entries = paths
            .iter()
            .map(|p| FileEntry {
                path: (*p).into(),
                kind: EntryKind::File,
                size_bytes: 10,
                sha256: format!("{:064x}", p.len() as i64 + now),
                mode: 0o644,
                uid: 0,
                gid: 0,
                modified_ns: now * 1_000_000,
                target: String::new(),
                package_id: id.clone(),
                range: None,
            })
            .collect();
        let events = vec![
            AgentEvent::Ingest(NewPackage {
                package_id: id.clone(),
                path: folder.into(),
                package_type: PackageType::UserData,
                size_bytes: 10 * paths.len() as u64,
                sha256: String::new(),
                tool: Tool::Native,
                made_at: Some(now),
            }),
            AgentEvent::Complete(Completion::verified_on(&id, &sha, 10 * paths.len() as u64, "hot-1", Some(now))),
            AgentEvent::Snapshot(FolderChanges {
                folder: folder.into(),
                taken_at: now,
                changed: entries,
                deleted: Vec::new(),
                skipped: Vec::new(),
                last: true,
                pass_end: None,
            }),
        ];
        (id, events)
    }

    async fn send(writer: &Writer, seq: &mut u64, events: Vec<AgentEvent>) {
        let numbered = events
            .into_iter()
            .map(|e| {
                *seq += 1;
                (*seq, Ok(e))
            })
            .collect();
        let op = AgentEvents { source_id: "edge".into(), session_id: "s".into(), events: numbered };
        let out = writer.submit(op).await.unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }

    /// Two folders each with a package kept for one file of four: one command at a time per
    /// source, with the paths and packages to move; after it fails, that folder pauses and the
    /// source's other folder goes on.
    #[tokio::test]
    async fn one_command_per_source_and_a_failed_folder_pauses_alone() {
        let db = TestDb::new(Db::Sqlite).await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let stop = CancellationToken::new();
        let (writer, task) = Writer::spawn(
            store.db().clone(),
            crate::writer::Publish::Hub(Hub::new(16)),
            Arc::new(Notify::new()),
            crate::writer::Settings::batch(64),
            stop.clone(),
        );
        writer.submit(Bootstrap { preset: "cloud".into() }).await.unwrap();
        let hot =
            Station { station_id: "hot-1".into(), tier: Tier::Hot, kind: StationKind::Local, uri: "/s/hot".into() };
        writer.submit(SyncStations(vec![hot])).await.unwrap();
        let info = HelloInfo {
            source_id: "edge".into(),
            label: String::new(),
            hostname: String::new(),
            os: String::new(),
            agent_version: "test".into(),
            capabilities: vec![Capability::Backup],
        };
        writer.submit(Hello(info)).await.unwrap();
        let now = now_ms() - 10_000;
        let mut seq = 0;
        let mut kept = Vec::new();
        for folder in ["/a", "/b"] {
            let (old, events) = stored(folder, &["f1", "f2", "f3", "f4"], now);
            send(&writer, &mut seq, events).await;
            // f2..f4 change: the old package keeps one file of four (25 % of its bytes).
            let (_, events) = stored(folder, &["f2", "f3", "f4"], now + 1_000);
            send(&writer, &mut seq, events).await;
            kept.push(old);
        }
        let policy = Policy { interval: Duration::from_secs(60), min_age: Duration::ZERO, max_live_percent: 30 };
        let compacts = |store: Store| async move {
            let f = CommandFilter { kind: Some(CommandKind::Compact), ..Default::default() };
            store.commands(&f, 10).await.unwrap()
        };

        assert_eq!(round(&store, &writer, policy, "").await.unwrap().0, 1, "one at a time per source");
        let first = compacts(store.clone()).await;
        let CommandArgs::Compact(args) = &first[0].args else { panic!("{first:?}") };
        assert_eq!((args.folder.as_str(), args.paths.as_slice()), ("/a", &["f1".to_owned()][..]));
        assert_eq!(args.package_ids, [kept[0].clone()]);
        assert_eq!(round(&store, &writer, policy, "").await.unwrap().0, 0, "while it is open, nothing more");

        let failed = CommandOutcome {
            command_id: first[0].command_id.clone(),
            success: false,
            unsupported: false,
            message: "folder: /a is not watched by this agent".into(),
            details: None,
        };
        send(&writer, &mut seq, vec![AgentEvent::CommandResult(failed)]).await;
        assert_eq!(round(&store, &writer, policy, "").await.unwrap().0, 1);
        let all = compacts(store.clone()).await;
        let CommandArgs::Compact(args) = &all[0].args else { panic!("{all:?}") };
        assert_eq!(args.folder, "/b", "the failed folder pauses; the other goes on");
        // Too strict a share finds nothing.
        let strict = Policy { max_live_percent: 20, ..policy };
        let (candidates, _) = store.compaction_candidates("", 100, now_ms(), strict.max_live_percent).await.unwrap();
        assert!(candidates.is_empty(), "{candidates:?}");
        stop.cancel();
        task.await.unwrap();
    }
}
