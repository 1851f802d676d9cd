//! The agent stream: sequence numbers, cumulative acks, replays, restarts, supersession, commands.

use edgebackup_proto::v1 as pb;
use pb::agent_event::Kind;
use pb::catcher_message::Body as Out;

use crate::agent::{ScriptedAgent, complete, ingest, progress};
use crate::harness::{Catcher, TestDb, eventually};

fn sha_of(i: usize) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("payload {i}").as_bytes()))
}

/// The script of one package: ingest, three progress ticks, complete = 5 events.
fn script(ids: &[String]) -> Vec<(u64, pb::agent_event::Kind)> {
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        out.push(ingest(id, &format!("docs/file-{i}.txt"), 1000 + i as u64, ""));
        out.push(progress(id, 30, 300));
        out.push(progress(id, 60, 600));
        out.push(progress(id, 90, 900));
        out.push(complete(id, &sha_of(i), 1000 + i as u64, "local-hot"));
    }
    out.into_iter().enumerate().map(|(i, k)| (i as u64 + 1, k)).collect()
}

/// Kill the catcher (SIGKILL) while events stream in, restart it, replay everything from the
/// start: every event is applied exactly once.
async fn exactly_once_across_catcher_kill(db: TestDb) {
    let mut catcher = Catcher::start(&db).await;
    let ids: Vec<String> = (0..40).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let events = script(&ids);
    let total = events.len() as u64;

    let mut agent = ScriptedAgent::enroll(&catcher, "edge-kill", &[pb::Capability::Backup]).await;
    assert_eq!(agent.welcome.last_applied_seq, 0);
    // The first half is acknowledged; the rest is in flight when the catcher dies.
    let half = total / 2;
    for (seq, kind) in events.iter().take(half as usize) {
        agent.send(*seq, kind.clone()).await;
    }
    agent.wait_ack(half).await;
    for (seq, kind) in events.iter().skip(half as usize).take(32) {
        agent.send(*seq, kind.clone()).await;
    }
    catcher.kill().await;
    drop(agent);
    catcher.restart().await;

    // Reconnect: the catcher says how far it got; at least everything acknowledged.
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-kill", &[pb::Capability::Backup]).await;
    let resumed_at = agent.welcome.last_applied_seq;
    assert!(resumed_at >= half, "acknowledged events survive a SIGKILL ({resumed_at} < {half})");
    // Exactly the packages ingested but not completed at that point are handed back.
    let mut expected: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let (ingested, completed) = (*i as u64 * 5 + 1, *i as u64 * 5 + 5);
            ingested <= resumed_at && completed > resumed_at
        })
        .map(|(_, id)| id)
        .collect();
    let mut resume: Vec<&String> = agent.welcome.resume.iter().map(|p| &p.package_id).collect();
    expected.sort();
    resume.sort();
    assert_eq!(resume, expected, "the resume list is the unfinished work at seq {resumed_at}");
    // A careless agent replays everything from 1: replays are acknowledged and ignored.
    for (seq, kind) in &events {
        agent.send(*seq, kind.clone()).await;
    }
    agent.wait_ack(total).await;
    assert!(agent.rejections().is_empty(), "no event rejected: {:?}", agent.rejections());

    let mut c = catcher.clients().await;
    let journal = c.journal_of_type("package.ingested").await;
    assert_eq!(journal.len(), ids.len(), "each ingest applied exactly once");
    let completed = c.journal_of_type("package.completed").await;
    assert_eq!(completed.len(), ids.len(), "each completion applied exactly once");
    for (i, id) in ids.iter().enumerate() {
        let p = c.package(id).await;
        assert_eq!(p.status, pb::PackageStatus::Completed as i32);
        assert_eq!(p.sha256, sha_of(i));
        assert_eq!(p.placements.len(), 1);
        assert_eq!(p.placements[0].status, pb::PlacementStatus::Verified as i32);
    }
    let s = c.sources.get_source(pb::GetSourceRequest { source_id: "edge-kill".into() }).await.unwrap().into_inner();
    assert_eq!(s.last_applied_seq, total);
    let st = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(st.statuses.unwrap().completed, ids.len() as u64, "counters count each package once");
    assert!(c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner().ok);
}

/// Invalid events are rejected with the field named, acknowledged anyway, and change nothing;
/// gaps (coalesced progress) are fine; another source's package is off limits.
async fn rejected_events_do_not_wedge_the_stream(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut a = ScriptedAgent::enroll(&catcher, "edge-a", &[]).await;
    let id = uuid::Uuid::now_v7().to_string();
    a.send(1, ingest(&id, "a.txt", 10, "")).await;
    a.send(2, ingest("not-a-uuid", "b.txt", 10, "")).await;
    a.send(5, progress(&id, 50, 5)).await; // 3 and 4 were coalesced away
    a.send(6, progress(&id, 20, 2)).await; // goes backwards
    a.send(7, complete(&id, "XYZ", 10, "st")).await;
    a.wait_ack(7).await;
    let rejected: Vec<(u64, String)> = a.rejections().into_iter().map(|r| (r.seq, r.message)).collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert!(rejected[0].0 == 2 && rejected[0].1.starts_with("ingest.package_id:"), "{rejected:?}");
    assert!(rejected[1].0 == 6 && rejected[1].1.starts_with("progress_percent:"), "{rejected:?}");
    assert!(rejected[2].0 == 7 && rejected[2].1.starts_with("complete.sha256:"), "{rejected:?}");

    let mut b = ScriptedAgent::enroll(&catcher, "edge-b", &[]).await;
    b.send(1, progress(&id, 90, 9)).await;
    b.wait_ack(1).await;
    assert_eq!(b.rejections()[0].code, pb::StatusCode::PermissionDenied as i32);

    let mut c = catcher.clients().await;
    let p = c.package(&id).await;
    assert_eq!((p.progress_percent, p.status), (50, pb::PackageStatus::InProgress as i32));
    let journaled = c.journal_of_type("agent.event_rejected").await;
    assert_eq!(journaled.len(), 4, "every rejection is journaled: {journaled:?}");
    assert!(
        journaled.iter().any(|e| e.source_id == "edge-a" && e.error.starts_with("ingest.package_id:")),
        "{journaled:?}"
    );
}

/// A rejected event numbered far ahead cannot make the events before it look applied (the
/// cursor moves past a rejected event only when it is the next one); a sequence number beyond
/// what the cursor can hold ends the stream with the field named; a completion without a
/// verified copy is refused.
async fn sequence_numbers_cannot_hide_events(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut a = ScriptedAgent::enroll(&catcher, "edge-s", &[]).await;
    let (first, second) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    a.send(1, ingest(&first, "a.txt", 10, "")).await;
    a.send(1_000_000, ingest("not-a-uuid", "x.txt", 10, "")).await;
    while a.rejections().is_empty() {
        let m = a.next(10).await.expect("stream open");
        a.seen.push(m);
    }
    // The real agent's next events are applied, not dropped as already seen.
    a.send(2, ingest(&second, "b.txt", 10, "")).await;
    let mut bare = complete(&first, &"ab".repeat(32), 10, "st");
    let Kind::Complete(c) = &mut bare else { unreachable!() };
    c.placements.clear();
    a.send(3, bare).await;
    a.wait_ack(3).await;
    let rejected: Vec<(u64, String)> = a.rejections().into_iter().map(|r| (r.seq, r.message)).collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(rejected[0].0 == 1_000_000 && rejected[0].1.starts_with("ingest.package_id:"), "{rejected:?}");
    assert!(rejected[1].0 == 3 && rejected[1].1.starts_with("placements: no verified copy"), "{rejected:?}");
    let mut c = catcher.clients().await;
    assert_eq!(c.package(&second).await.status, pb::PackageStatus::Pending as i32);
    assert_eq!(c.package(&first).await.status, pb::PackageStatus::Pending as i32, "not completed without a copy");

    // Above i64::MAX: refused, and the stream ends naming the field.
    a.send(u64::MAX, ingest(&uuid::Uuid::now_v7().to_string(), "c.txt", 10, "")).await;
    let error = loop {
        match a.next(10).await.and_then(|m| m.body) {
            Some(Out::Error(e)) => break e,
            Some(_) => {}
            None => panic!("the stream ended without an error frame"),
        }
    };
    assert_eq!(error.code, pb::StatusCode::InvalidArgument as i32, "{error:?}");
    assert!(error.message.starts_with("event.seq: must be at most 9223372036854775807"), "{error:?}");
    let again = ScriptedAgent::enroll(&catcher, "edge-s", &[]).await;
    assert_eq!(again.welcome.last_applied_seq, 3, "the cursor never moved past the real events");
}

/// A second Hello for the same source supersedes the first stream; connected state follows.
async fn newer_session_supersedes(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut first = ScriptedAgent::enroll(&catcher, "edge-dup", &[]).await;
    let second = ScriptedAgent::enroll(&catcher, "edge-dup", &[]).await;
    assert_ne!(first.welcome.session_id, second.welcome.session_id);
    let mut got_error = false;
    while let Some(m) = first.next(10).await {
        if let Some(Out::Error(e)) = m.body {
            assert!(e.message.contains("superseded"), "{e:?}");
            got_error = true;
        }
    }
    assert!(got_error, "the old stream is told why it closes");
    let mut c = catcher.clients().await;
    let s = c.sources.get_source(pb::GetSourceRequest { source_id: "edge-dup".into() }).await.unwrap().into_inner();
    assert!(s.connected, "the new session keeps the source connected");
    drop(second);
    eventually("the superseded source to show disconnected", 10, || {
        let mut c = c.sources.clone();
        async move {
            let s = c.get_source(pb::GetSourceRequest { source_id: "edge-dup".into() }).await.unwrap().into_inner();
            (!s.connected).then_some(())
        }
    })
    .await;
}

/// Commands survive reconnects and lease expiry until answered; safety alerts stop a source
/// until an operator's resume succeeds.
async fn commands_are_redelivered_until_answered(db: TestDb) {
    let mut catcher = Catcher::start(&db).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-cmd", &[pb::Capability::Backup]).await;
    let mut c = catcher.clients().await;

    // panic brake
    agent
        .send(
            1,
            pb::agent_event::Kind::SafetyAlert(pb::SafetyAlert {
                reason: "canary changed".into(),
                trigger: pb::SafetyTrigger::Canary as i32,
                measurements: Some(pb::SafetyMeasurements { canary: "/data".into(), ..Default::default() }),
            }),
        )
        .await;
    agent.wait_ack(1).await;
    let s = c.sources.get_source(pb::GetSourceRequest { source_id: "edge-cmd".into() }).await.unwrap().into_inner();
    assert_eq!(s.safety_state, pb::SafetyState::StoppedForSafety as i32);
    let st = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(st.clients_stopped_for_safety, 1);

    // the operator's resume is delivered...
    let cmd = c
        .sources
        .create_command(pb::CreateCommandRequest {
            source_id: "edge-cmd".into(),
            kind: pb::CommandKind::Resume as i32,
            args: Some(pb::CommandArgs {
                kind: Some(pb::command_args::Kind::Resume(pb::ResumeArgs { reason: "canary checked".into() })),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = cmd.command.unwrap().command_id;
    let got = agent.wait_command(10).await;
    assert_eq!((got.command_id.as_str(), got.kind), (id.as_str(), pb::CommandKind::Resume as i32));
    let reason = match got.args.and_then(|a| a.kind) {
        Some(pb::command_args::Kind::Resume(r)) => r.reason,
        other => panic!("a resume carries resume arguments, got {other:?}"),
    };
    assert_eq!(reason, "canary checked");
    // ...re-sent when the lease (2 s in tests) runs out unanswered...
    let again = agent.wait_command(10).await;
    assert_eq!(again.command_id, id);
    // ...and after a catcher restart.
    drop(agent);
    catcher.restart().await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-cmd", &[pb::Capability::Backup]).await;
    assert_eq!(agent.welcome.safety_state, pb::SafetyState::StoppedForSafety as i32);
    let again = agent.wait_command(10).await;
    assert_eq!(again.command_id, id);
    // a result in another kind's arm is refused, naming the field, and changes nothing
    let move_details = pb::CommandDetails {
        kind: Some(pb::command_details::Kind::Move(pb::MoveResult {
            verified_sha256: "ab".repeat(32),
            tool_ref: String::new(),
        })),
    };
    agent
        .send(
            2,
            pb::agent_event::Kind::CommandResult(pb::CommandResult {
                command_id: id.clone(),
                success: true,
                details: Some(move_details),
                ..Default::default()
            }),
        )
        .await;
    agent.wait_ack(2).await;
    let refused = &agent.rejections()[0];
    assert_eq!(refused.code, pb::StatusCode::InvalidArgument as i32);
    assert!(
        refused.message.starts_with("command_result.details: a move result answers a resume command"),
        "{refused:?}"
    );
    agent
        .send(
            3,
            pb::agent_event::Kind::CommandResult(pb::CommandResult {
                command_id: id.clone(),
                success: true,
                message: "uploads resumed".into(),
                ..Default::default()
            }),
        )
        .await;
    agent.wait_ack(3).await;
    let mut c = catcher.clients().await;
    let s = c.sources.get_source(pb::GetSourceRequest { source_id: "edge-cmd".into() }).await.unwrap().into_inner();
    assert_eq!(s.safety_state, pb::SafetyState::Ok as i32);
    let list = c
        .sources
        .list_commands(pb::ListCommandsRequest { source_id: "edge-cmd".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commands;
    assert_eq!(list[0].state, pb::CommandState::Succeeded as i32);
    assert!(list[0].attempts >= 3, "sent at least three times: {}", list[0].attempts);
    // an unknown command id in a result is rejected, not ignored silently
    agent
        .send(
            4,
            pb::agent_event::Kind::CommandResult(pb::CommandResult {
                command_id: "nope".into(),
                success: true,
                ..Default::default()
            }),
        )
        .await;
    agent.wait_ack(4).await;
    assert_eq!(agent.rejections()[1].code, pb::StatusCode::NotFound as i32);
}

/// SIGTERM with a live stream: the catcher closes streams, drains, and exits cleanly.
async fn graceful_shutdown(db: TestDb) {
    let mut catcher = Catcher::start(&db).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-term", &[]).await;
    let id = uuid::Uuid::now_v7().to_string();
    agent.send(1, ingest(&id, "x", 0, "")).await;
    agent.wait_ack(1).await;
    let status = catcher.terminate().await;
    assert!(status.success(), "exit status {status:?}\n{}", catcher.log_text());
    // the stream ended rather than hanging
    while agent.next(10).await.is_some() {}
    assert!(catcher.log_text().contains("catcher stopped"));
}

/// Heartbeats keep a quiet stream open; a silent one is closed after agent_timeout (5 s in tests).
async fn silent_streams_are_closed(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-hb", &[]).await;
    assert_eq!(agent.welcome.heartbeat_interval.unwrap().seconds, 1);
    let mut c = catcher.clients().await;
    let get = pb::GetSourceRequest { source_id: "edge-hb".into() };
    let seen_at_hello = c.sources.get_source(get.clone()).await.unwrap().into_inner().last_seen_at.unwrap();
    for _ in 0..7 {
        agent.heartbeat().await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let s = c.sources.get_source(get).await.unwrap().into_inner();
    assert!(s.connected, "heartbeats keep the source connected");
    // Heartbeats are gathered and written every heartbeat interval (1 s here), not per beat.
    let seen = s.last_seen_at.unwrap();
    assert!(
        seen.seconds >= seen_at_hello.seconds + 4,
        "last seen {seen:?} did not follow the heartbeats since {seen_at_hello:?}"
    );
    let mut closed_with_error = false;
    while let Some(m) = agent.next(15).await {
        if let Some(Out::Error(e)) = m.body {
            assert!(e.message.contains("no message"), "{e:?}");
            closed_with_error = true;
        }
    }
    assert!(closed_with_error, "the catcher says why it closes the stream");
    let s = c.sources.get_source(pb::GetSourceRequest { source_id: "edge-hb".into() }).await.unwrap().into_inner();
    assert!(!s.connected);
}

/// The files an agent lists in Complete come back from GetPackage (and not from lists).
async fn manifests_are_stored(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut a = ScriptedAgent::enroll(&catcher, "edge-m", &[]).await;
    let id = uuid::Uuid::now_v7().to_string();
    let sha = "ab".repeat(32);
    let mut done = complete(&id, &sha, 10, "st");
    let Kind::Complete(c) = &mut done else { unreachable!() };
    c.manifest = (0..3)
        .map(|i| pb::ManifestEntry {
            path: format!("dir/file-{i}.txt"),
            size_bytes: i,
            sha256: "cd".repeat(32),
            modified_at: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
        })
        .collect();
    let mut bad = done.clone();
    let Kind::Complete(b) = &mut bad else { unreachable!() };
    b.manifest[1].sha256 = "nope".into();
    a.send(1, ingest(&id, "/data", 10, "")).await;
    a.send(2, bad).await;
    a.send(3, done).await;
    a.wait_ack(3).await;
    let rejected = a.rejections();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].message.starts_with("complete.manifest[1].sha256:"), "{rejected:?}");
    let mut c = catcher.clients().await;
    let p = c.package(&id).await;
    assert_eq!(p.manifest.len(), 3);
    assert_eq!(p.manifest[2].path, "dir/file-2.txt");
    assert_eq!(p.manifest[2].modified_at.as_ref().unwrap().seconds, 1_700_000_000);
    // Without the manifest (what a restore asks for): the same package, no file list.
    let request = pb::GetPackageRequest { package_id: id.clone(), without_manifest: true };
    let bare = c.packages.get_package(request).await.unwrap().into_inner();
    assert!(bare.manifest.is_empty());
    assert_eq!((bare.sha256, bare.placements), (p.sha256.clone(), p.placements.clone()));
    assert_eq!((p.file_count, bare.file_count), (3, 3));
    // A package without a manifest beside it: lists carry each one's entry count, not the list.
    let plain = uuid::Uuid::now_v7().to_string();
    a.send(4, ingest(&plain, "/data", 10, "")).await;
    a.send(5, complete(&plain, &sha, 10, "st")).await;
    a.wait_ack(5).await;
    let list = c.packages.list_packages(pb::ListPackagesRequest::default()).await.unwrap().into_inner();
    let counts: Vec<(&str, u64, usize)> =
        list.packages.iter().map(|p| (p.package_id.as_str(), p.file_count, p.manifest.len())).collect();
    assert_eq!(counts, [(plain.as_str(), 0, 0), (id.as_str(), 3, 0)], "lists stay small");
    let filtered = pb::ListPackagesRequest { path_prefix: "/data".into(), page_size: 1, ..Default::default() };
    let page = c.packages.list_packages(filtered.clone()).await.unwrap().into_inner();
    let next = pb::ListPackagesRequest { page_token: page.next_page_token, ..filtered };
    let page = c.packages.list_packages(next).await.unwrap().into_inner();
    assert_eq!((page.packages[0].package_id.as_str(), page.packages[0].file_count), (id.as_str(), 3));
}

crate::both_databases!(
    manifests_are_stored,
    silent_streams_are_closed,
    exactly_once_across_catcher_kill,
    rejected_events_do_not_wedge_the_stream,
    sequence_numbers_cannot_hide_events,
    newer_session_supersedes,
    commands_are_redelivered_until_answered,
    graceful_shutdown
);
