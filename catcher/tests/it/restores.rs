//! Restores seen from the control plane: a RESTORE command's progress, reported by its agent on
//! the stream, reaches `ListCommands`, the Watch stream (deltas and snapshots) and survives a
//! restart; reports that are not the agent's to make, malformed or late change nothing.

use std::time::Duration;

use edgebackup_proto::v1 as pb;
use pb::agent_event::Kind as Event;
use pb::watch_event::Kind;

use crate::agent::ScriptedAgent;
use crate::harness::{Catcher, TestDb, assert_invalid};

crate::both_databases!(restore_progress_reaches_every_view);

async fn next_restore(
    w: &mut tonic::Streaming<pb::WatchEvent>,
    what: &str,
    ok: impl Fn(&pb::CommandInfo) -> bool,
) -> pb::CommandInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m =
            tokio::time::timeout_at(deadline, w.message()).await.unwrap_or_else(|_| panic!("no Watch delta: {what}"));
        if let Some(Kind::RestoreChanged(c)) = m.unwrap().unwrap().kind
            && ok(&c)
        {
            return c;
        }
    }
}

fn report(id: &str, files_done: u64, bytes_done: u64) -> pb::CommandProgress {
    pb::CommandProgress {
        command_id: id.into(),
        phase: pb::CommandPhase::Transferring as i32,
        files_done,
        files_total: 10,
        bytes_done,
        bytes_total: 1000,
    }
}

async fn restores(c: &mut crate::harness::Clients, filter: pb::ListCommandsRequest) -> Vec<pb::CommandInfo> {
    c.sources.list_commands(filter).await.unwrap().into_inner().commands
}

async fn restore_progress_reaches_every_view(db: TestDb) {
    let mut catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-r", &[pb::Capability::Backup]).await;
    let other = ScriptedAgent::enroll(&catcher, "edge-other", &[pb::Capability::Backup]).await;
    let mut w = c.status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let Some(Kind::Snapshot(s)) = w.message().await.unwrap().unwrap().kind else { panic!("snapshot first") };
    assert!(s.restores.is_empty());

    let args = pb::RestoreArgs {
        source_id: "edge-other".into(),
        target_dir: "/srv/restores/one".into(),
        paths: vec!["docs/**".into()],
        ..Default::default()
    };
    let request = pb::CreateCommandRequest {
        source_id: "edge-r".into(),
        kind: pb::CommandKind::Restore as i32,
        args: Some(pb::CommandArgs { kind: Some(pb::command_args::Kind::Restore(args)) }),
        ..Default::default()
    };
    let created = c.sources.create_command(request).await.unwrap().into_inner();
    let id = created.command.unwrap().command_id;
    next_restore(&mut w, "the restore is created", |r| r.state == pb::CommandState::Pending as i32).await;
    let command = agent.wait_command(15).await;
    assert_eq!(command.command_id, id);

    // The agent's report shows everywhere.
    agent.progress(report(&id, 3, 300)).await;
    let seen =
        next_restore(&mut w, "the first report", |r| r.progress.as_ref().is_some_and(|p| p.files_done == 3)).await;
    assert_eq!(seen.state, pb::CommandState::Leased as i32);
    assert!(seen.progress_at.is_some());
    let p = seen.progress.unwrap();
    assert_eq!((p.command_id.as_str(), p.files_total, p.bytes_done, p.bytes_total), (id.as_str(), 10, 300, 1000));
    let open = pb::ListCommandsRequest { kind: pb::CommandKind::Restore as i32, open: true, ..Default::default() };
    let listed = restores(&mut c, open.clone()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].progress.as_ref().map(|p| p.bytes_done), Some(300));

    // Another agent's report of this command, a malformed one and an unknown command's change
    // nothing; the next good one (after the catcher's half-second pacing) does.
    other.progress(report(&id, 9, 900)).await;
    agent.progress(pb::CommandProgress { files_done: 11, ..report(&id, 0, 0) }).await;
    agent.progress(pb::CommandProgress { phase: 0, ..report(&id, 5, 500) }).await;
    agent.progress(report(&uuid::Uuid::now_v7().to_string(), 1, 1)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    agent.progress(report(&id, 6, 600)).await;
    let seen =
        next_restore(&mut w, "the second report", |r| r.progress.as_ref().is_some_and(|p| p.files_done != 3)).await;
    assert_eq!(seen.progress.unwrap().files_done, 6, "only the agent's own, well-formed report counts");

    // The result closes it; a report arriving after the result is dropped.
    let result = pb::CommandResult {
        command_id: id.clone(),
        success: true,
        message: "restored 10 files".into(),
        details: Some(pb::CommandDetails {
            kind: Some(pb::command_details::Kind::Restore(pb::RestoreResult {
                files: 10,
                bytes: 1000,
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    agent.send(1, Event::CommandResult(result)).await;
    agent.wait_ack(1).await;
    let done = next_restore(&mut w, "the result", |r| r.state == pb::CommandState::Succeeded as i32).await;
    assert_eq!(done.result_message, "restored 10 files");
    tokio::time::sleep(Duration::from_millis(600)).await;
    agent.progress(report(&id, 7, 700)).await;
    assert!(restores(&mut c, open).await.is_empty(), "nothing open");

    // A restart keeps it, with its last progress, in the snapshot's recent restores.
    drop(w);
    catcher.restart().await;
    let mut c = catcher.clients().await;
    let mut w = c.status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let Some(Kind::Snapshot(s)) = w.message().await.unwrap().unwrap().kind else { panic!("snapshot first") };
    assert_eq!(s.restores.len(), 1);
    let kept = &s.restores[0];
    assert_eq!(kept.state, pb::CommandState::Succeeded as i32);
    assert_eq!(kept.progress.as_ref().map(|p| p.files_done), Some(6), "the late report changed nothing");
    let by_kind = pb::ListCommandsRequest { kind: pb::CommandKind::Restore as i32, ..Default::default() };
    assert_eq!(restores(&mut c, by_kind).await.len(), 1);
    let other_kind = pb::ListCommandsRequest { kind: pb::CommandKind::Verify as i32, ..Default::default() };
    assert!(restores(&mut c, other_kind).await.is_empty());

    let both = pb::ListCommandsRequest { open: true, state: pb::CommandState::Failed as i32, ..Default::default() };
    assert_invalid(c.sources.list_commands(both).await, "open");
    let bad_kind = pb::ListCommandsRequest { kind: 99, ..Default::default() };
    assert_invalid(c.sources.list_commands(bad_kind).await, "kind");
    assert!(catcher.log_text().contains("command_progress.files_done"), "a malformed report is logged with its field");
}
