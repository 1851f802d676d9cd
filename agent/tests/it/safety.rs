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

    // Touching the canary trips it again by itself.
    std::fs::write(data.join(".edgebackup-canary"), b"encrypted!").unwrap();
    let source = wait_stopped(&world, "edge-s").await;
    assert!(source.safety_reason.contains("canary"), "{source:?}");
    let r = world.command("edge-s", pb::CommandKind::Resume, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");

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
