//! Failures on either side: the catcher killed mid-backup, the agent killed mid-upload,
//! a corrupted stored copy.

use std::collections::BTreeSet;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;

use crate::harness::*;

fn status_json(world: &World, name: &str) -> Option<serde_json::Value> {
    let text = std::fs::read(world.dir.path().join(format!("{name}-state/status.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catcher_killed_mid_backup_loses_and_duplicates_nothing() {
    let mut world = World::new().await;
    let config = world.agent_config("k", "edge-k", &world.local_station("hot"), "");
    let data = world.data("k");
    for i in 0..5 {
        std::fs::write(data.join(format!("first-{i}.txt")), format!("first {i}")).unwrap();
    }
    let _agent = Agent::start(&config).await;
    world.completed("edge-k", 1, 60).await;

    world.catcher.kill().await;
    // The agent keeps backing up to its station while the catcher is away.
    for round in 0..3 {
        for i in 0..4 {
            std::fs::write(data.join(format!("round-{round}-{i}.txt")), format!("{round}/{i}")).unwrap();
        }
        let want = 2 + round;
        eventually("the packages of this round completed", 60, || async {
            let s = status_json(&world, "k")?;
            (s["recent"].as_array()?.iter().filter(|p| p["status"] == "completed").count() >= want).then_some(())
        })
        .await;
    }
    let waiting = status_json(&world, "k").unwrap();
    assert!(waiting["outbox_depth"].as_u64().unwrap() > 0, "events wait for the catcher: {waiting}");
    assert!(!waiting["link"]["connected"].as_bool().unwrap_or(true));

    world.catcher.restart_same_port().await;
    let done = world.completed("edge-k", 4, 60).await;
    eventually("an empty outbox", 30, || async { (status_json(&world, "k")?["outbox_depth"] == 0).then_some(()) })
        .await;
    assert_eq!(done.len(), 4, "{done:?}");
    let ingested = world.journal("package.ingested").await;
    let completed = world.journal("package.completed").await;
    assert_eq!(ingested.len(), 4, "each package ingested exactly once");
    assert_eq!(completed.len(), 4, "each package completed exactly once");
    let ids: BTreeSet<_> = completed.iter().map(|e| e.package_id.clone()).collect();
    assert_eq!(ids.len(), 4);
    // Every file on disk is in exactly one package's manifest.
    let mut files = Vec::new();
    for p in &done {
        files.extend(world.package(&p.package_id).await.manifest.into_iter().map(|m| m.path));
    }
    files.sort();
    let on_disk: Vec<String> = tree(&data).into_keys().collect();
    assert_eq!(files, on_disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_upload_resumes_the_same_package() {
    let world = World::new().await;
    let config = world.agent_config("m", "edge-m", &world.local_station("hot"), "");
    let data = world.data("m");
    std::fs::write(data.join("big.bin"), random_bytes(200 << 20)).unwrap();
    std::fs::write(data.join("small.txt"), b"small").unwrap();
    let mut agent = Agent::start(&config).await;
    let started = eventually("the large backup under way", 120, || async {
        world.packages("edge-m").await.into_iter().find(|p| p.status == pb::PackageStatus::InProgress as i32)
    })
    .await;
    agent.kill().await;
    let at_kill = world.package(&started.package_id).await;
    assert_ne!(at_kill.status, pb::PackageStatus::Completed as i32, "killed before the upload finished");

    let mut agent = Agent::start(&config).await;
    let done = world.completed("edge-m", 1, 300).await;
    assert_eq!(done.len(), 1, "no second package: {done:?}");
    assert_eq!(done[0].package_id, started.package_id, "the interrupted package itself completed");
    let stored = world.dir.path().join(format!("stations/hot/edge-m/{}.tar.zst", started.package_id));
    assert_eq!(sha256_file(&stored), done[0].sha256);
    let leftovers: Vec<_> = std::fs::read_dir(world.dir.path().join("stations/hot/edge-m"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "the station holds no partial copies after the retry");
    assert!(agent.terminate().await.success());
    let out = world.path("restored/");
    let (code, stdout, stderr) =
        agent_fn(&config, &["restore", &started.package_id, "--to", out.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(tree(&out), tree(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_copy_is_detected_and_the_file_named() {
    let world = World::new().await;
    let config = world.agent_config("c", "edge-c", &world.local_station("hot"), "");
    let data = world.data("c");
    std::fs::write(data.join("keep.txt"), b"fine").unwrap();
    std::fs::write(data.join("victim.bin"), random_bytes(1 << 20)).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let p = world.completed("edge-c", 1, 30).await.remove(0);
    let stored = world.dir.path().join(format!("stations/hot/edge-c/{}.tar.zst", p.package_id));
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&stored, bytes).unwrap();

    let (code, stdout, _) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&stored.display().to_string()), "names the stored copy: {stdout}");
    assert!(stdout.contains("victim.bin"), "names the damaged file: {stdout}");

    let out = world.path("restored/");
    let (code, stdout, stderr) = agent_fn(&config, &["restore", &p.package_id, "--to", out.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("victim.bin") && stderr.contains("no station holds an intact copy"), "{stdout}{stderr}");
    assert!(!out.join("victim.bin").exists(), "damaged data is not restored");

    // The same check through the catcher, as an operator would run it.
    let _agent = Agent::start(&config).await;
    eventually("the agent connected", 30, || async { world.connected("edge-c").await.then_some(()) }).await;
    let r = world.command("edge-c", pb::CommandKind::Verify, &p.package_id).await;
    assert_eq!(r.state, pb::CommandState::Failed as i32, "{r:?}");
    assert!(r.result_message.contains("victim.bin"), "{r:?}");
}

/// The scrub measures every verified copy again on its own schedule: silent damage on a
/// station reaches the catcher (the copy marked failed, journaled as found by the scrub).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_finds_silent_damage_and_tells_the_catcher() {
    let world = World::new().await;
    let config = world.agent_config("z", "edge-z", &world.local_station("hot"), "");
    std::fs::write(world.data("z").join("ledger.bin"), random_bytes(256 * 1024)).unwrap();
    let agent = Agent::start_with(&config, &[("AGENT_SCHEDULE__SCRUB_INTERVAL_SECS", "2")]).await;
    let p = world.completed("edge-z", 1, 60).await.remove(0);
    // Scrubs pass while the copy is intact.
    eventually("an intact scrub", 30, || async { agent.log_text().contains("scrub done").then_some(()) }).await;
    assert!(world.journal("package.copy_damaged").await.is_empty());
    let stored = world.dir.path().join(format!("stations/hot/edge-z/{}.tar.zst", p.package_id));
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
    let event =
        eventually("the damage journaled", 30, || async { world.journal("package.copy_damaged").await.pop() }).await;
    assert_eq!((event.package_id.as_str(), event.station_id.as_str()), (p.package_id.as_str(), "hot"));
    let details: serde_json::Value = serde_json::from_str(&event.details_json).unwrap();
    assert_eq!(details["found_by"], "scrub", "{details}");
    assert!(details["bad_files"].to_string().contains("ledger.bin"), "{details}");
    let now = world.package(&p.package_id).await;
    let pl = now.placements.iter().find(|pl| pl.station_id == "hot").unwrap();
    assert_eq!(pl.status, pb::PlacementStatus::Failed as i32, "{pl:?}");
    assert!(pl.error.starts_with("scrub:"), "{pl:?}");
    // A damaged copy is not reported again and again.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(world.journal("package.copy_damaged").await.len(), 1);
    // Intact again (what a station that was only unreachable looks like to the next scrub):
    // verified again, not left damaged for good.
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[mid] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
    eventually("the copy verified again", 30, || async {
        let now = world.package(&p.package_id).await;
        let pl = now.placements.iter().find(|pl| pl.station_id == "hot")?;
        (pl.status == pb::PlacementStatus::Verified as i32 && pl.verified_sha256 == now.sha256).then_some(())
    })
    .await;
    assert_eq!(world.journal("package.copy_damaged").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_device_with_a_new_state_dir_loses_nothing() {
    let world = World::new().await;
    let config = world.agent_config("r", "edge-r", &world.local_station("hot"), "");
    let data = world.data("r");
    std::fs::write(data.join("before.txt"), b"written before the device was replaced").unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = world.completed("edge-r", 1, 30).await;

    // The replacement starts from an empty state dir, backs up before it reaches the catcher
    // (`backup --once` connects after its pass), and numbers its events from 1 again.
    // It enrolls anew (its credential went with the old state dir): a config with a fresh token.
    std::fs::remove_dir_all(world.path("r-state/")).unwrap();
    std::fs::write(data.join("after.txt"), b"written on the replacement").unwrap();
    let config = world.agent_config("r", "edge-r", &world.local_station("hot"), "");
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("wait in the outbox"), "{stdout}");
    let both = world.completed("edge-r", 2, 30).await;
    let second: Vec<_> = both.iter().filter(|p| p.package_id != first[0].package_id).collect();
    assert_eq!(second.len(), 1, "{both:?}");
}
