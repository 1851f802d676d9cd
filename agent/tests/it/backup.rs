//! The main path: a real folder tree backed up by `agent run`, verified, restored byte-identical.

use edgebackup_proto::v1 as pb;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_up_a_tree_and_restores_it_byte_identical() {
    let world = World::new().await;
    let config = world.agent_config("edge", "edge-1", &world.local_station("hot"), "");
    let data = world.data("edge");
    copy_fixture(&data);
    std::fs::write(data.join("zero.bin"), b"").unwrap();
    std::fs::create_dir_all(data.join("a/b/c")).unwrap();
    std::fs::write(data.join("a/b/c/deep.txt"), b"nested").unwrap();
    std::fs::write(data.join("big.bin"), random_bytes(200 << 20)).unwrap();
    std::fs::write(data.join("scratch.tmp"), b"excluded").unwrap();
    let expected = tree(&data);

    let mut agent = Agent::start(&config).await;
    let done = world.completed("edge-1", 1, 300).await;
    assert_eq!(done.len(), 1, "one package for one pass: {done:?}");
    let p = world.package(&done[0].package_id).await;

    // The stored copy is what the catcher recorded, and verified at the station.
    let stored = world.dir.path().join(format!("stations/hot/edge-1/{}.tar.zst", p.package_id));
    assert_eq!(sha256_file(&stored), p.sha256);
    assert_eq!(p.size_bytes, std::fs::metadata(&stored).unwrap().len());
    assert_eq!(p.placements.len(), 1);
    assert_eq!(p.placements[0].status, pb::PlacementStatus::Verified as i32);
    assert_eq!(p.placements[0].verified_sha256, p.sha256);
    assert_eq!(p.path, data.display().to_string());

    // The manifest lists every file (not the excluded one) with its own sha256.
    let mut listed: Vec<(String, String)> = p.manifest.iter().map(|m| (m.path.clone(), m.sha256.clone())).collect();
    listed.sort();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .filter(|(k, _)| !k.ends_with(".tmp"))
        .map(|(k, v)| (k.clone(), agent::archive::sha256_of(v.as_slice()).unwrap().0))
        .collect();
    want.sort();
    assert_eq!(listed, want);

    // Restore while the daemon runs (the expected sha256 comes from the catcher).
    let out = world.path("restored/");
    let (code, stdout, stderr) = agent_fn(&config, &["restore", &p.package_id, "--to", out.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut restored = tree(&out);
    let mut original = expected.clone();
    original.remove("scratch.tmp");
    assert_eq!(restored.len(), original.len());
    for (k, v) in &original {
        assert!(restored.remove(k).as_ref() == Some(v), "{k} differs after restore");
    }

    // Exactly once, and a clean stop.
    assert_eq!(world.journal("package.ingested").await.len(), 1);
    assert_eq!(world.journal("package.completed").await.len(), 1);
    let status = agent.terminate().await;
    assert!(status.success(), "{status:?}");
    let (code, stdout, _) = agent_fn(&config, &["status", "--json"]).await;
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outbox_depth"], 0, "{report}");
    assert_eq!(report["recent"][0]["status"], "completed");

    // Unchanged files are not packaged again, across a restart.
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("0 package(s) completed"), "{stdout}");
    std::fs::write(data.join("sample.txt"), b"changed").unwrap();
    let (code, stdout, _) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("1 package(s) completed (1 file(s))"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_executed_and_unknown_ones_answered() {
    let world = World::new().await;
    let config = world.agent_config("cmd", "edge-cmd", &world.local_station("hot"), "");
    let data = world.data("cmd");
    std::fs::write(data.join("one.txt"), b"one").unwrap();
    let mut agent = Agent::start(&config).await;
    let first = world.completed("edge-cmd", 1, 60).await;

    std::fs::write(data.join("two.txt"), b"two").unwrap();
    let r = world.command("edge-cmd", pb::CommandKind::BackupNow, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");
    world.completed("edge-cmd", 2, 30).await;

    let r = world.command("edge-cmd", pb::CommandKind::Verify, &first[0].package_id).await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");
    assert!(r.result_message.contains("verified"), "{r:?}");

    let r = world.command("edge-cmd", pb::CommandKind::RestoreDrill, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");

    assert!(agent.terminate().await.success());
}

/// An idle daemon stays idle: its own reads of the folder are not changes (they once made it
/// rescan itself every debounce period), while a real change still triggers a pass at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_does_not_rescan_itself() {
    let world = World::new().await;
    let config = world.agent_config("idle", "edge-idle", &world.local_station("hot"), "");
    let data = world.data("idle");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/a.txt"), b"one").unwrap();
    // No periodic rescan during the test: every pass would have to come from a notification.
    // No canary either: planting it is a real change, which would start a second pass.
    let env = [("AGENT_SCHEDULE__INTERVAL_SECS", "3600"), ("AGENT_SAFETY__CANARY", "false")];
    let mut agent = Agent::start_with(&config, &env).await;
    world.completed("edge-idle", 1, 60).await;
    // The pass that made the package has finished; from here on only a change may start one.
    agent.await_more("the first pass finished", Agent::passes, 0, 1).await;
    let before = agent.passes();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // ten debounce periods
    assert_eq!(agent.passes(), before, "passes without a change:\n{}", agent.log_text());
    std::fs::write(data.join("sub/b.txt"), b"two").unwrap();
    world.completed("edge-idle", 2, 30).await;
    assert!(agent.terminate().await.success());
}
