//! The daemon's `/metrics`, read by a real Prometheus parser, says what `agent status` says.

use edgebackup_testkit::eventually;
use edgebackup_testkit::prometheus::{dashboard_names, exposes, logged_addr, parse, scrape};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_say_what_status_says() {
    let world = World::new().await;
    let config = world.agent_config("m", "edge-m", &world.local_station("hot"), "");
    let data = world.data("m");
    std::fs::write(data.join("a.txt"), b"alpha").unwrap();
    let agent = Agent::start_with(&config, &[("AGENT_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let done = world.completed("edge-m", 1, 60).await;
    let addr = eventually("the metrics address in the log", 10, || async {
        logged_addr(&agent.log_text(), "metrics served at /metrics")
    })
    .await;
    // Once the outbox is drained, both views agree.
    let m = eventually("an empty outbox in the metrics", 30, || async {
        let (content_type, body) = scrape(&addr).await;
        assert!(content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"), "{content_type}");
        let m = parse(&body);
        (m["edgebackup_agent_outbox_events{}"] == 0.0).then_some(m)
    })
    .await;
    // `agent status` beside a daemon reads its status.json, rewritten every 2 s.
    let completed = m["edgebackup_agent_packages{status=\"completed\"}"];
    eventually("agent status to count the same packages", 10, || async {
        let (code, out, err) = agent_fn(&config, &["status", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        (status["packages_total"].as_f64() == Some(completed) && status["outbox_depth"] == 0).then_some(())
    })
    .await;
    assert_eq!(completed, 1.0);
    assert_eq!(m["edgebackup_agent_package_bytes{status=\"completed\"}"], done[0].size_bytes as f64);
    assert_eq!(m["edgebackup_agent_outbox_oldest_event_age_seconds{}"], 0.0);
    assert_eq!(m["edgebackup_agent_connected{}"], 1.0);
    assert_eq!(m["edgebackup_agent_uploaded_bytes_total{}"], done[0].size_bytes as f64, "one copy, on hot");
    assert_eq!(m["edgebackup_agent_restored_bytes_total{}"], 0.0);
    // Every agent metric the Grafana dashboard reads is exposed.
    let body = scrape(&addr).await.1;
    let missing: Vec<String> =
        dashboard_names("edgebackup_agent_").into_iter().filter(|n| !exposes(&body, n)).collect();
    assert!(missing.is_empty(), "the dashboard reads metrics the agent does not expose: {missing:?}\n{body}");
    assert_eq!(m["edgebackup_agent_stopped_for_safety{}"], 0.0);
    let folder = format!("edgebackup_agent_last_backup_timestamp_seconds{{folder=\"{}\"}}", data.display());
    let last = m[&folder];
    let completed = done[0].completed_at.as_ref().unwrap().seconds as f64;
    assert!((last - completed).abs() < 5.0, "{last} vs the catcher's {completed}");
}
