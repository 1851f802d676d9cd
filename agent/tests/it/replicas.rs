//! An agent with two catcher replicas on one PostgreSQL database: the replica it streams to is
//! killed (SIGKILL) mid-backup; the agent fails over to the other, and nothing is lost — a
//! restore through the surviving replica gives back every file, byte for byte.

use edgebackup_testkit::eventually;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fails_over_to_another_replica_and_loses_nothing() {
    let mut world = World::replicas(2).await;
    let (first, second) = (world.catcher.tls_url(), world.replicas[0].tls_url());
    let extra = format!("catcher_urls = [\"{second}\"]");
    let config = world.agent_config("roam", "edge-roam", &world.local_station("hot"), &extra);
    let data = world.data("roam");
    for i in 0..5 {
        std::fs::write(data.join(format!("before-{i}.bin")), random_bytes(20_000 + i)).unwrap();
    }
    let agent = Agent::start(&config).await;
    world.completed("edge-roam", 1, 60).await;
    let on = |url: &str| format!("connected to the catcher catcher={url}");
    assert!(agent.log_text().contains(&on(&first)), "the agent starts with catcher_url:\n{}", agent.log_text());

    // The replica holding the stream dies; files keep changing meanwhile.
    world.catcher.kill().await;
    for i in 0..5 {
        std::fs::write(data.join(format!("after-{i}.bin")), random_bytes(30_000 + i)).unwrap();
    }
    std::fs::remove_file(data.join("before-0.bin")).unwrap();
    eventually("the agent streaming to the other replica", 30, || async {
        agent.log_text().contains(&on(&second)).then_some(())
    })
    .await;

    // Everything is at the surviving replica: the restore (which finds it past the dead one)
    // gives back exactly the folder as it is.
    world.restores_exactly(&config, &data, 60).await;
    let mut agent = agent;
    assert!(agent.terminate().await.success());
}
