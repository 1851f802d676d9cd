//! The catcher's own database lost and restored: backed up while the catcher runs, files backed
//! up after the backup, the catcher stopped and its database put back from the backup. The
//! agent notices that the catcher lost events it had acknowledged, backs every file up again,
//! and a restore gives back exactly the folder.

use edgebackup_testkit::eventually;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catcher_restored_from_its_backup_gets_everything_back() {
    let mut world = World::new().await;
    let config = world.agent_config("dr", "edge-dr", &world.local_station("hot"), "");
    let data = world.data("dr");
    for i in 0..4 {
        std::fs::write(data.join(format!("before-{i}.bin")), random_bytes(10_000 + i)).unwrap();
    }
    let agent = Agent::start(&config).await;
    world.completed("edge-dr", 1, 60).await;

    // An online backup of the catcher's database, checked.
    let backup = world.path("backups/catcher.db");
    let out = world.catcher.cli(&["db", "backup", "--to", backup.to_str().unwrap()]).expect("db backup");
    assert!(out.contains("chain intact") && out.contains("integrity: ok"), "{out}");
    let out = world.catcher.cli(&["db", "check", "--file", backup.to_str().unwrap()]).expect("db check");
    assert!(out.contains("sources:   1"), "{out}");

    // More is backed up after it.
    for i in 0..4 {
        std::fs::write(data.join(format!("after-{i}.bin")), random_bytes(20_000 + i)).unwrap();
    }
    world.completed("edge-dr", 2, 60).await;

    // A restore onto a running catcher is refused and changes nothing.
    let refused = world.catcher.cli(&["db", "restore", "--from", backup.to_str().unwrap()]).unwrap_err();
    assert!(refused.contains("a catcher is running"), "{refused}");

    // The catcher stops; its database is put back from the backup; it starts again.
    assert!(world.catcher.terminate().await.success());
    let out = world.catcher.cli(&["db", "restore", "--from", backup.to_str().unwrap()]).expect("db restore");
    assert!(out.contains("restored"), "{out}");
    world.catcher.restart_same_port().await;

    eventually("the agent noticing the catcher lost acknowledged events", 30, || async {
        agent.log_text().contains("lost events it acknowledged").then_some(())
    })
    .await;
    world.restores_exactly(&config, &data, 60).await;
    let mut agent = agent;
    assert!(agent.terminate().await.success());
}
