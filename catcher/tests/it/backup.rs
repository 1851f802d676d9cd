//! The catcher's own database backed up and restored. PostgreSQL: `pg_dump --format=custom`
//! while the catcher runs, `pg_restore` into an empty database, `catcher db check` on it, and a
//! catcher started on it finds everything (packages, journal chain, sources). SQLite: `catcher db
//! backup` while events stream in gives a consistent copy; `db check` finds a damaged one.

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::Spec;

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, Db, TestDb};

/// Streams `n` packages (ingest + complete) from a new agent; waits for the acks.
async fn fill(catcher: &Catcher, source: &str, n: usize) {
    let agent = ScriptedAgent::enroll(catcher, source, &[pb::Capability::Backup]).await;
    let mut agent = agent;
    for i in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        let sha = format!("{:064x}", i + 7);
        agent.send(2 * i as u64 + 1, ingest(&id, &format!("f/{i}.bin"), 10 + i as u64, "")).await;
        agent.send(2 * i as u64 + 2, complete(&id, &sha, 10 + i as u64, "local-hot")).await;
    }
    agent.wait_ack(2 * n as u64).await;
}

/// Runs `catcher ARGS` to completion; (success, stdout + stderr).
async fn catcher_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Spec::new("catcher", dir).args(args.iter().copied()).output(60).await;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = std::process::Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e} (installed?)"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dump_and_restore_bring_the_whole_catcher_back() {
    let db = TestDb::new(Db::Postgres).await;
    let catcher = Catcher::start(&db).await;
    fill(&catcher, "edge-dump", 25).await;
    let mut c = catcher.clients().await;
    let before = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    let dump = db.dir.path().join("catcher.dump");
    // Online, while the catcher runs.
    run("pg_dump", &["--format=custom", "--file", dump.to_str().unwrap(), &db.url]);

    let fresh = TestDb::new(Db::Postgres).await;
    run("pg_restore", &["--no-owner", "--exit-on-error", "--dbname", &fresh.url, dump.to_str().unwrap()]);
    let (ok, out) = catcher_cli(fresh.dir.path(), &["db", "check", "--database-url", &fresh.url]).await;
    assert!(ok && out.contains("chain intact") && out.contains("packages:  25"), "{out}");

    // A catcher on the restored database, with the data directory (CA, TLS, admin token) put
    // back beside it as the procedure says, has it all.
    copy_dir(&db.dir.path().join("data"), &fresh.dir.path().join("data"));
    let restored = Catcher::start(&fresh).await;
    let mut r = restored.clients().await;
    let after = r.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(after.statuses, before.statuses, "the same packages in the same states");
    assert!(after.journal_head >= before.journal_head);
    assert!(r.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner().ok);
    let s = r.sources.get_source(pb::GetSourceRequest { source_id: "edge-dump".into() }).await.unwrap().into_inner();
    assert_eq!(s.last_applied_seq, 50, "the agent's cursor came back with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_while_running_is_consistent_and_damage_is_found() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    fill(&catcher, "edge-copy", 10).await;
    let copy = db.dir.path().join("copy.db");
    let url = &db.url;
    // Taken while a second agent's events are being committed.
    let writing = fill(&catcher, "edge-busy", 200);
    let args = ["db", "backup", "--to", copy.to_str().unwrap(), "--database-url", url];
    let backup = catcher_cli(db.dir.path(), &args);
    let ((ok, out), ()) = tokio::join!(backup, writing);
    assert!(ok && out.contains("chain intact") && out.contains("integrity: ok"), "{out}");
    // A second backup onto the same file is refused.
    let (ok, out) =
        catcher_cli(db.dir.path(), &["db", "backup", "--to", copy.to_str().unwrap(), "--database-url", url]).await;
    assert!(!ok && out.contains("exists"), "{out}");

    // A journal entry edited in the copy: the check says where the chain breaks.
    let tampered = db.dir.path().join("tampered.db");
    std::fs::copy(&copy, &tampered).unwrap();
    {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(format!("sqlite://{}?mode=rw", tampered.display())).await.unwrap();
        conn.execute_unprepared("UPDATE journal SET actor = 'mallory' WHERE sequence = 3").await.unwrap();
        conn.close().await.unwrap();
    }
    let (ok, out) = catcher_cli(db.dir.path(), &["db", "check", "--file", tampered.to_str().unwrap()]).await;
    assert!(!ok && out.contains("BROKEN at event 3"), "{out}");
    // And a restore from it is refused, changing nothing.
    let (ok, out) =
        catcher_cli(db.dir.path(), &["db", "restore", "--from", tampered.to_str().unwrap(), "--database-url", url])
            .await;
    assert!(!ok && out.contains("does not check out"), "{out}");
}
