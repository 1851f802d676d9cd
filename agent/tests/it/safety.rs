//! The panic brake: a mass rewrite with random bytes and a touched canary stop uploads until
//! an operator resumes the source from the catcher.

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;

use crate::harness::*;

const SAFETY: &str = "[safety]\nenabled = true\ncanary = true\nmax_changes_per_minute = 1000\nmin_changes = 10\nmax_rename_delete_ratio = 0.9\nmax_high_entropy_share = 0.5\n";

async fn wait_stopped(world: &World, source: &str) -> pb::Source {
    eventually("the source to be stopped for safety", 60, || async {
        let s = world.source(source).await;
        (s.safety_state == pb::SafetyState::StoppedForSafety as i32).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_encryption_and_canary_trip_the_brake_until_resumed() {
    let world = World::new().await;
    let config = world.agent_config("s", "edge-s", &world.local_station("hot"), SAFETY);
    let data = world.data("s");
    for i in 0..30 {
        std::fs::write(data.join(format!("doc-{i:02}.txt")), format!("quarterly report {i}\n").repeat(200)).unwrap();
    }
    let agent = Agent::start(&config).await;
    world.completed("edge-s", 1, 60).await;
    assert!(data.join(".edgebackup-canary").exists(), "the canary is planted");

    // Ransomware-like: every document rewritten with random bytes within seconds.
    for i in 0..30 {
        std::fs::write(data.join(format!("doc-{i:02}.txt")), random_bytes(8192)).unwrap();
    }
    let source = wait_stopped(&world, "edge-s").await;
    assert!(source.safety_reason.contains("look encrypted"), "{source:?}");
    assert_eq!(world.journal("source.stopped_for_safety").await.len(), 1);
    // Nothing of the rewritten data is uploaded while stopped: two more passes saw it and held it.
    agent.await_more("two passes held by the brake", Agent::held_passes, agent.held_passes(), 2).await;
    assert_eq!(world.packages("edge-s").await.len(), 1, "no upload while stopped for safety");

    // The operator resumes from the catcher; the agent uploads what changed.
    let r = world.command("edge-s", pb::CommandKind::Resume, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");
    assert_eq!(world.source("edge-s").await.safety_state, pb::SafetyState::Ok as i32);
    world.completed("edge-s", 2, 60).await;

    // Touching the canary trips it again by itself; `agent status` says what the catcher says.
    let canary = data.join(".edgebackup-canary");
    let planted = std::fs::read(&canary).unwrap();
    std::fs::write(&canary, b"encrypted!").unwrap();
    let source = wait_stopped(&world, "edge-s").await;
    assert!(source.safety_reason.contains("canary"), "{source:?}");
    agent_says_stopped(&config, true).await;
    // Resume recreates the canary and runs a pass at once (no schedule tick needed): the new
    // file is backed up and the source stays resumed.
    std::fs::write(data.join("after-resume.txt"), b"written while stopped").unwrap();
    let passes = agent.passes();
    let r = world.command("edge-s", pb::CommandKind::Resume, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");
    assert!(r.result_message.contains("canary recreated"), "{r:?}");
    assert_eq!(std::fs::read(&canary).unwrap(), planted, "the canary is the agent's own again");
    agent.await_more("the pass the resume started", Agent::passes, passes, 1).await;
    world.completed("edge-s", 3, 60).await;
    assert_eq!(world.source("edge-s").await.safety_state, pb::SafetyState::Ok as i32);
    agent_says_stopped(&config, false).await;

    // Deleting files on the edge never deletes their backups.
    for i in 0..30 {
        std::fs::remove_file(data.join(format!("doc-{i:02}.txt"))).unwrap();
    }
    // Two passes after the deletions (the first may have started before them) changed nothing stored.
    agent.await_more("two passes after the deletions", Agent::passes, agent.passes(), 2).await;
    let packages = world.packages("edge-s").await;
    assert!(packages.iter().all(|p| p.status == pb::PackageStatus::Completed as i32), "{packages:?}");
    let first = packages.iter().min_by_key(|p| p.package_id.clone()).unwrap();
    assert!(world.dir.path().join(format!("stations/hot/edge-s/{}.tar.zst", first.package_id)).exists());
}

/// `agent status --json` (the daemon's view, refreshed every 2 s) says `stopped`.
async fn agent_says_stopped(config: &std::path::Path, stopped: bool) {
    eventually("agent status to agree with the catcher", 10, || async {
        let (code, out, err) = agent_fn(config, &["status", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let status: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (status["safety"]["stopped"] == stopped).then_some(())
    })
    .await;
}

/// An agent with the shipped thresholds, `n` files named by `name` backed up once.
async fn backed_up(world: &World, n: usize, name: impl Fn(usize) -> String) -> (std::path::PathBuf, Agent) {
    let defaults = "[safety]\nenabled = true\ncanary = true\n";
    let config = world.agent_config("s", "edge-s", &world.local_station("hot"), defaults);
    let data = world.data("s");
    for i in 0..n {
        std::fs::write(data.join(name(i)), format!("contents of file {i}\n").repeat(60)).unwrap();
    }
    // Passes only after a quiet moment (file notifications) and at start: a scheduled pass in
    // the middle of the attack's loop would see half of it (and judge that half alone).
    let agent = Agent::start_with(&config, &[("AGENT_SCHEDULE__INTERVAL_SECS", "3600")]).await;
    world.completed("edge-s", 1, 60).await;
    (data, agent)
}

/// The measurements the journal recorded with the trip.
async fn trip_details(world: &World) -> serde_json::Value {
    let event = world.journal("source.stopped_for_safety").await.remove(0);
    serde_json::from_str(&event.details_json).unwrap()
}

/// The commonest ransomware pattern: each file written as an encrypted copy beside it
/// (`doc.txt.locked`), the original deleted. No file is rewritten in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_copies_with_the_originals_deleted_trip_the_brake() {
    let world = World::new().await;
    let (data, _agent) = backed_up(&world, 200, |i| format!("doc-{i:03}.txt")).await;
    for i in 0..200 {
        let original = data.join(format!("doc-{i:03}.txt"));
        std::fs::write(data.join(format!("doc-{i:03}.txt.locked")), random_bytes(2048)).unwrap();
        std::fs::remove_file(original).unwrap();
    }
    let source = wait_stopped(&world, "edge-s").await;
    assert!(source.safety_reason.contains("replaced by encrypted-looking copies"), "{source:?}");
    let details = trip_details(&world).await;
    assert_eq!(details["trigger"], "encrypted_copies", "{details}");
    assert!(details["replaced_by_encrypted"].as_u64().unwrap() >= 20, "{details}");
    // Not one encrypted copy was uploaded.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let packages = world.packages("edge-s").await;
    assert_eq!(packages.len(), 1, "{packages:?}");
    // The listing says what is inside: the 200 documents the agent packaged.
    assert_eq!(packages[0].file_count, 200);
}

/// Files renamed away (`*.locked`, the same bytes): each is one change, and all of them are
/// renames, so the rename share is 100 % (counted as a removal plus an addition it never passed 50 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_rename_trips_the_brake() {
    let world = World::new().await;
    let (data, _agent) = backed_up(&world, 60, |i| format!("photo-{i:02}.raw")).await;
    for i in 0..60 {
        std::fs::rename(data.join(format!("photo-{i:02}.raw")), data.join(format!("photo-{i:02}.raw.locked"))).unwrap();
    }
    let source = wait_stopped(&world, "edge-s").await;
    assert!(
        source.safety_reason.contains("renames or deletes") && source.safety_reason.contains("renamed"),
        "{source:?}"
    );
    let details = trip_details(&world).await;
    assert_eq!(details["trigger"], "rename_delete_ratio", "{details}");
    assert!(details["renamed"].as_u64().unwrap() >= 20, "{details}");
}
