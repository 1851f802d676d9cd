//! `/metrics`: the Prometheus exposition read by a real parser (Python's prometheus_client),
//! its values checked against the API's after a scenario; a non-loopback address is refused.

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::Spec;
use edgebackup_testkit::prometheus::{dashboard_names, exposes, logged_addr, parse, scrape};

use crate::agent::{ScriptedAgent, complete, ingest, progress};
use crate::harness::{Catcher, Db, TestDb, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_match_the_api() {
    let db = TestDb::new(Db::Sqlite).await;
    // A channel (never used here) gives the delivery counters their series.
    let channels = r#"[{name="ops",kind="webhook",url="http://127.0.0.1:9/hook"}]"#;
    let env = [
        ("CATCHER_METRICS_LISTEN", "127.0.0.1:0"),
        ("CATCHER_CHANNELS", channels),
        ("CATCHER_ALERT_INTERVAL_SECS", "1"),
    ];
    let catcher = Catcher::start_with(&db, &env).await;
    let addr = eventually("the metrics address in the log", 10, || async {
        logged_addr(&catcher.log_text(), "metrics served at /metrics")
    })
    .await;

    // A scenario: an agent stores one package, a second is on its way.
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-m", &[pb::Capability::Backup]).await;
    let (stored, moving) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let sha = "ab".repeat(32);
    let script = [
        ingest(&stored, "/srv/a.bin", 2048, ""),
        complete(&stored, &sha, 2048, "local-hot"),
        ingest(&moving, "/srv/b.bin", 4096, ""),
        progress(&moving, 50, 2048),
    ];
    for (i, kind) in script.into_iter().enumerate() {
        agent.send(i as u64 + 1, kind).await;
    }
    agent.wait_ack(4).await;

    // After an alert evaluation (its gauges start then).
    let (content_type, body) = eventually("an evaluation's gauges", 10, || async {
        let (content_type, body) = scrape(&addr).await;
        body.contains("edgebackup_alerts_open{").then_some((content_type, body))
    })
    .await;
    assert!(content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"), "{content_type}");
    assert_eq!(parse(&body)["edgebackup_notifications_total{channel=\"ops\",outcome=\"delivered\"}"], 0.0);
    let m = parse(&body);
    let get = |k: &str| m.get(k).copied().unwrap_or_else(|| panic!("{k} missing from:\n{body}"));

    let mut c = catcher.clients().await;
    let status = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    for t in &status.tiers {
        let tier = match pb::Tier::try_from(t.tier).unwrap() {
            pb::Tier::Unspecified => "edge",
            other => other.as_str_name().trim_start_matches("TIER_").to_lowercase().leak(),
        };
        assert_eq!(get(&format!("edgebackup_packages{{tier=\"{tier}\"}}")), t.package_count as f64, "{tier}");
        assert_eq!(get(&format!("edgebackup_package_bytes{{tier=\"{tier}\"}}")), t.total_bytes as f64, "{tier}");
    }
    assert_eq!(get("edgebackup_packages{tier=\"hot\"}"), 1.0);
    assert_eq!(get("edgebackup_packages_by_status{status=\"in_progress\"}"), 1.0);
    assert_eq!(get("edgebackup_agents_connected{}"), status.clients_connected as f64);
    assert_eq!(get("edgebackup_agents{}"), status.clients_total as f64);
    assert_eq!(get("edgebackup_events_applied_total{}"), 4.0, "the four events, once each");
    assert_eq!(get("edgebackup_journal_events_total{event=\"package.completed\"}"), 1.0);
    assert!(get("edgebackup_commit_seconds_count{}") >= 1.0 && get("edgebackup_commit_ops_count{}") >= 1.0);

    // Every catcher metric the Grafana dashboard reads is exposed.
    let missing: Vec<String> = dashboard_names("edgebackup_")
        .into_iter()
        .filter(|n| !n.starts_with("edgebackup_agent_") && !n.starts_with("edgebackup_gateway_"))
        .filter(|n| !exposes(&body, n))
        .collect();
    assert!(missing.is_empty(), "the dashboard reads metrics the catcher does not expose: {missing:?}\n{body}");

    // A replay is not counted again.
    agent.send(4, progress(&moving, 50, 2048)).await;
    agent.wait_ack(4).await;
    let m = parse(&scrape(&addr).await.1);
    assert_eq!(m["edgebackup_events_applied_total{}"], 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Spec::new("catcher", dir.path())
        .args(["dump-config"])
        .env("CATCHER_METRICS_LISTEN", "0.0.0.0:9464")
        .output(30)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("metrics_listen") && stderr.contains("loopback"), "{stderr}");
}
