//! Replicas: three catcher processes on one PostgreSQL database. Live views on every replica
//! hear every change once and in commit order; exactly one replica holds the singleton lease
//! (scheduler, drills, alerts), and when it dies (SIGKILL) or freezes (SIGSTOP) another takes
//! over within 15 s while no package moves twice; commands reach an agent on whichever replica
//! holds its stream, and a stream that moves between replicas loses and duplicates nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgebackup_common::client::{self, Credential};
use edgebackup_proto::v1 as pb;
use pb::catcher_message::Body as Out;
use pb::watch_event::Kind as Live;
use tonic::transport::Channel;

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, Db, TestDb, enroll, eventually};

/// Settings that make failover quick to watch.
const FAST: &[(&str, &str)] = &[
    ("CATCHER_LEASE_TTL_SECS", "3"),
    ("CATCHER_REPLICA_TIMEOUT_SECS", "4"),
    ("CATCHER_INITIAL_PRESET", "demo"),
    ("CATCHER_RESTORE_DRILL_INTERVAL_SECS", "0"),
];

/// Starts `n` replicas on `db` (the first creates the CA they share through the directory).
async fn replicas(db: &TestDb, n: usize) -> Vec<Catcher> {
    let mut out = vec![Catcher::start_with(db, FAST).await];
    for _ in 1..n {
        out.push(Catcher::start_with(db, FAST).await);
    }
    out
}

/// An agent's TLS channel to `catcher` with an existing credential.
async fn channel_to(catcher: &Catcher, cred: &Credential) -> Channel {
    let tls = client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(cred)).expect("tls config");
    client::channel(&format!("https://{}", catcher.addr), Some(tls), false).await.expect("agent channel")
}

/// The script of `n` packages: ingest and complete, numbered from `first_seq`.
fn packages(n: usize, first_seq: u64, tag: &str) -> (Vec<String>, Vec<(u64, pb::agent_event::Kind)>) {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let mut events = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let sha = format!("{:064x}", i + 1);
        events.push(ingest(id, &format!("{tag}/file-{i}.bin"), 100 + i as u64, ""));
        events.push(complete(id, &sha, 100 + i as u64, "local-hot"));
    }
    let numbered = events.into_iter().enumerate().map(|(i, k)| (first_seq + i as u64, k)).collect();
    (ids, numbered)
}

/// Which replica holds the lease now, by what each last said about it in its log.
fn holders(set: &[Catcher]) -> Vec<usize> {
    set.iter()
        .enumerate()
        .filter(|(_, c)| {
            let log = c.log_text();
            let took = log.rfind("holds the singleton lease");
            let lost = log.rfind("lost the singleton lease");
            took.is_some() && took > lost
        })
        .map(|(i, _)| i)
        .collect()
}

/// Every journal event, oldest first.
async fn whole_journal(c: &Catcher) -> Vec<pb::JournalEvent> {
    let mut j = c.clients().await.journal;
    let mut out = Vec::new();
    let mut before = 0;
    loop {
        let request = pb::QueryJournalRequest { before_sequence: before, limit: 1000, ..Default::default() };
        let page = j.query_journal(request).await.expect("journal").into_inner().events;
        let Some(last) = page.last() else { break };
        before = last.sequence;
        out.extend(page);
        if before <= 1 {
            break;
        }
    }
    out.reverse();
    out
}

/// A Watch subscriber recording the journal sequences and package states it hears.
struct Watcher {
    journal: Arc<Mutex<Vec<u64>>>,
    packages: Arc<Mutex<HashMap<String, i32>>>,
    /// A snapshot after the first: the subscriber was re-synced (it missed changes).
    resynced: Arc<std::sync::atomic::AtomicBool>,
}

impl Watcher {
    async fn start(c: &Catcher) -> Self {
        let mut status = c.clients().await.status;
        let mut stream = status.watch(pb::WatchRequest::default()).await.expect("watch").into_inner();
        let first = stream.message().await.expect("snapshot").expect("a first event");
        assert!(matches!(first.kind, Some(Live::Snapshot(_))), "Watch opens with a snapshot");
        let journal = Arc::new(Mutex::new(Vec::new()));
        let packages = Arc::new(Mutex::new(HashMap::new()));
        let resynced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (j, p, r) = (journal.clone(), packages.clone(), resynced.clone());
        tokio::spawn(async move {
            while let Ok(Some(e)) = stream.message().await {
                match e.kind {
                    Some(Live::JournalAppended(ev)) => j.lock().unwrap().push(ev.sequence),
                    Some(Live::PackageChanged(pk)) => {
                        p.lock().unwrap().insert(pk.package_id, pk.status);
                    }
                    Some(Live::Snapshot(_)) => r.store(true, std::sync::atomic::Ordering::SeqCst),
                    _ => {}
                }
            }
        });
        Self { journal, packages, resynced }
    }

    fn journal_after(&self, after: u64) -> Vec<u64> {
        self.journal.lock().unwrap().iter().copied().filter(|s| *s > after).collect()
    }
}

/// Agents spread over three replicas; a Watch on each hears every journal event exactly once,
/// in order, and every package's final state.
async fn watch_on_every_replica_hears_every_change_in_order(db: TestDb) {
    let set = replicas(&db, 3).await;
    let watchers = [Watcher::start(&set[0]).await, Watcher::start(&set[1]).await, Watcher::start(&set[2]).await];
    let head = whole_journal(&set[0]).await.last().map_or(0, |e| e.sequence);

    let mut all = Vec::new();
    let mut agents = Vec::new();
    for i in 0..6 {
        let id = format!("edge-spread-{i}");
        let cred = enroll(&set[i % 3], &id, false).await;
        let agent = ScriptedAgent::connect(channel_to(&set[i % 3], &cred).await, &id, &[pb::Capability::Backup]).await;
        let (ids, events) = packages(10, 1, &id);
        all.extend(ids);
        agents.push((agent, events));
    }
    // Interleaved: every replica commits while the others do.
    for round in 0..20 {
        for (agent, events) in &agents {
            let (seq, kind) = &events[round];
            agent.send(*seq, kind.clone()).await;
        }
    }
    for (agent, _) in &mut agents {
        agent.wait_ack(20).await;
    }
    // A person's change on one replica, too.
    let mut policy = set[2].clients().await.policy;
    let rules = policy.list_rule_sets(pb::ListRuleSetsRequest {}).await.unwrap().into_inner().rule_sets;
    let mut rs = rules[0];
    rs.rpo = Some(prost_types::Duration { seconds: 1234, nanos: 0 });
    policy
        .update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(rs), reason: "replica test".into() })
        .await
        .unwrap();

    let journal = whole_journal(&set[1]).await;
    let end = journal.last().map_or(0, |e| e.sequence);
    assert!(journal.iter().any(|e| e.event_type == "rules.updated"), "the rule change is journaled");
    let expected: Vec<u64> = (head + 1..=end).collect();
    for (i, w) in watchers.iter().enumerate() {
        let heard =
            eventually(&format!("replica {i}'s Watch to hear journal events {}..={end}", head + 1), 20, || async {
                let heard = w.journal_after(head);
                (heard.last() >= Some(&end)).then_some(heard)
            })
            .await;
        let heard: Vec<u64> = heard.into_iter().filter(|s| *s <= end).collect();
        assert_eq!(heard, expected, "replica {i}: every journal event once, in commit order");
        assert!(!w.resynced.load(std::sync::atomic::Ordering::SeqCst), "replica {i}'s subscriber was never re-synced");
        eventually(&format!("replica {i}'s Watch to see all 60 packages completed"), 20, || async {
            let p = w.packages.lock().unwrap();
            all.iter().all(|id| p.get(id) == Some(&(pb::PackageStatus::Completed as i32))).then_some(())
        })
        .await;
    }
    // Every replica answers the same fleet status.
    let mut figures = Vec::new();
    for c in &set {
        let status = c.clients().await.status;
        let st = eventually("a status counting 60 completed packages", 10, || {
            let mut status = status.clone();
            async move {
                let st = status.get_status(pb::GetStatusRequest {}).await.ok()?.into_inner();
                (st.statuses.as_ref()?.completed == 60).then_some(st)
            }
        })
        .await;
        figures.push((st.clients_total, st.clients_connected));
    }
    assert!(figures.iter().all(|f| *f == (6, 6)), "every replica counts six connected agents: {figures:?}");
    assert!(set[0].clients().await.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner().ok);
}

/// The lease holder is killed, then its successor frozen: another takes over within 15 s each
/// time, the frozen one writes nothing when it wakes, and no package moves twice.
async fn the_lease_fails_over_and_nothing_moves_twice(db: TestDb) {
    let mut set = replicas(&db, 3).await;
    let first = eventually("one replica holding the lease", 10, || async {
        let h = holders(&set);
        (h.len() == 1).then(|| h[0])
    })
    .await;
    assert_eq!(first, 0, "the first replica to start takes the lease");
    // Packages that the demo rules move hot -> warm -> cold within seconds, from an agent on a
    // replica that stays up.
    let cred = enroll(&set[2], "edge-moving", false).await;
    let mut agent =
        ScriptedAgent::connect(channel_to(&set[2], &cred).await, "edge-moving", &[pb::Capability::Backup]).await;
    let (ids, events) = packages(40, 1, "moving");
    for (seq, kind) in &events {
        agent.send(*seq, kind.clone()).await;
    }
    agent.wait_ack(80).await;
    eventually("the scheduler moving packages", 20, || async {
        let moved = whole_journal(&set[2]).await.iter().filter(|e| e.event_type == "package.tier_changed").count();
        (moved > 0).then_some(())
    })
    .await;

    // SIGKILL the holder: another replica takes over within 15 s.
    set[0].kill().await;
    let killed_at = Instant::now();
    let second = eventually("another replica taking the lease after a SIGKILL", 20, || async {
        let h: Vec<usize> = holders(&set).into_iter().filter(|i| *i != 0).collect();
        (h.len() == 1).then(|| h[0])
    })
    .await;
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(15), "failover took {took:?}");

    // SIGSTOP the new holder past its lease: the last replica takes over; woken, the frozen one
    // finds its term fenced off and steps down.
    let third = 3 - second; // of {1, 2}, the other one
    set[second].signal("STOP");
    let stopped_at = Instant::now();
    eventually("the last replica taking the lease from a frozen holder", 20, || async {
        holders(&set).contains(&third).then_some(())
    })
    .await;
    let took = stopped_at.elapsed();
    assert!(took <= Duration::from_secs(15), "failover from a frozen holder took {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    set[second].signal("CONT");
    eventually("the woken replica to step down", 15, || async {
        set[second].log_text().contains("lost the singleton lease").then_some(())
    })
    .await;

    // Everything finishes its route; each move happened once.
    eventually("every package past the hot tier", 60, || async {
        let mut c = set[third].clients().await;
        let mut all = true;
        for id in &ids {
            let p =
                c.packages.get_package(pb::GetPackageRequest { package_id: id.clone(), ..Default::default() }).await;
            all &= match p {
                Ok(p) => p.into_inner().tier != pb::Tier::Hot as i32,
                Err(s) => s.code() == tonic::Code::NotFound, // expired at the end of its route
            };
        }
        all.then_some(())
    })
    .await;
    let journal = whole_journal(&set[third]).await;
    let mut moves: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for e in journal.iter().filter(|e| e.event_type == "package.tier_changed" || e.event_type == "package.expired") {
        *moves.entry((e.package_id.clone(), e.event_type.clone(), e.status_after.clone())).or_default() += 1;
    }
    let twice: Vec<_> = moves.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "packages moved twice: {twice:?}");
    assert!(moves.len() >= ids.len(), "every package moved at least once ({} moves)", moves.len());
    let mut j = set[third].clients().await.journal;
    assert!(j.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner().ok, "the chain holds");
    // Never two holders at once: every takeover raised the term.
    let terms: Vec<u64> = set
        .iter()
        .flat_map(|c| {
            c.log_text()
                .lines()
                .filter(|l| l.contains("holds the singleton lease"))
                .filter_map(|l| l.split("term=").nth(1)?.split_whitespace().next()?.parse().ok())
                .collect::<Vec<u64>>()
        })
        .collect();
    let mut sorted = terms.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), terms.len(), "each term was held by one replica: {terms:?}");
    assert!(sorted.len() >= 3, "three holders in turn: {terms:?}");
    drop(agent);
}

/// A command made on one replica reaches the agent on another; the agent's stream then moves to
/// a third replica mid-backup and loses and duplicates nothing; a replica killed with agents
/// on it has them marked disconnected.
async fn commands_and_streams_follow_the_agent(db: TestDb) {
    let mut set = replicas(&db, 3).await;
    let cred = enroll(&set[0], "edge-roaming", false).await;
    let mut agent =
        ScriptedAgent::connect(channel_to(&set[1], &cred).await, "edge-roaming", &[pb::Capability::Backup]).await;
    let (ids, events) = packages(30, 1, "roaming");
    for (seq, kind) in events.iter().take(25) {
        agent.send(*seq, kind.clone()).await;
    }
    agent.wait_ack(25).await;

    // A person on replica 0 asks for a backup: replica 1 holds the stream and delivers it.
    let mut sources = set[0].clients().await.sources;
    let request = pb::CreateCommandRequest {
        source_id: "edge-roaming".into(),
        kind: pb::CommandKind::BackupNow as i32,
        ..Default::default()
    };
    let made = sources.create_command(request).await.expect("create on replica 0").into_inner();
    let got = agent.wait_command(10).await;
    assert_eq!(got.command_id, made.command.as_ref().expect("the command").command_id, "the command crossed replicas");

    // The agent moves to replica 2 (its stream to 1 simply dropped) and resumes where 1 left off.
    drop(agent);
    let mut agent =
        ScriptedAgent::connect(channel_to(&set[2], &cred).await, "edge-roaming", &[pb::Capability::Backup]).await;
    assert_eq!(agent.welcome.last_applied_seq, 25, "the cursor moved with the agent");
    // The unanswered command is re-sent by the replica that holds the stream now.
    let again = agent.wait_command(10).await;
    assert_eq!(again.command_id, made.command.as_ref().expect("the command").command_id);
    // A careless resend from 20, then the rest.
    for (seq, kind) in events.iter().skip(19) {
        agent.send(*seq, kind.clone()).await;
    }
    agent.wait_ack(60).await;
    assert!(agent.rejections().is_empty(), "nothing rejected: {:?}", agent.rejections());
    // A rule change on replica 0 reaches the agent on replica 2.
    let mut policy = set[0].clients().await.policy;
    let mut rs = policy.list_rule_sets(pb::ListRuleSetsRequest {}).await.unwrap().into_inner().rule_sets[0];
    rs.rpo = Some(prost_types::Duration { seconds: 1234, nanos: 0 });
    policy.update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(rs), reason: "reach".into() }).await.unwrap();
    let heard = loop {
        match agent.next(10).await.and_then(|m| m.body) {
            Some(Out::RulesChanged(r)) => break r,
            Some(_) => {}
            None => panic!("the stream ended before the rule change arrived"),
        }
    };
    assert!(!heard.rule_sets.is_empty());

    let journal = whole_journal(&set[0]).await;
    for kind in ["package.ingested", "package.completed"] {
        let n = journal.iter().filter(|e| e.event_type == kind && ids.contains(&e.package_id)).count();
        assert_eq!(n, ids.len(), "each {kind} applied exactly once");
    }
    // Replica 1's session times out after the agent left (5 s): the source stays connected (on
    // 2, where the agent keeps beating).
    for _ in 0..7 {
        agent.heartbeat().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let s = sources.get_source(pb::GetSourceRequest { source_id: "edge-roaming".into() }).await.unwrap().into_inner();
    assert!(s.connected, "a stale session on another replica does not disconnect the agent");
    assert_eq!(s.last_applied_seq, 60);

    // Replica 1 counted the agent's unfinished packages while it held the stream (one was
    // ingested, not completed); replica 2 finished them. A change replica 1 commits now must
    // carry the count as it is, not as replica 1 last knew it.
    let mut live = set[1].clients().await.status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let request = pb::RegisterSourceRequest { source_id: "edge-roaming".into(), label: "relabelled".into() };
    set[1].clients().await.sources.register_source(request).await.expect("relabel on replica 1");
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(e)) = live.message().await {
            if let Some(Live::SourceChanged(s)) = e.kind
                && s.label == "relabelled"
            {
                return s;
            }
        }
        panic!("the Watch ended before the relabel arrived");
    })
    .await
    .expect("the relabel within 10 s");
    assert_eq!(seen.in_flight, 0, "replica 1 dropped its count when another replica committed");

    // Replica 2 dies with the agent on it: the lease holder marks the agent disconnected.
    set[2].kill().await;
    drop(agent);
    eventually("the agent of a dead replica marked disconnected", 20, || async {
        let mut sources = sources.clone();
        let s = sources.get_source(pb::GetSourceRequest { source_id: "edge-roaming".into() }).await.ok()?.into_inner();
        (!s.connected).then_some(())
    })
    .await;
}

/// Replicas exist only on PostgreSQL (SQLite is one catcher's file).
macro_rules! postgres_only {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestDb::new(Db::Postgres).await).await;
                }
            )+
            use super::{Db, TestDb};
        }
    };
}

postgres_only!(
    watch_on_every_replica_hears_every_change_in_order,
    the_lease_fails_over_and_nothing_moves_twice,
    commands_and_streams_follow_the_agent,
);
