//! The load generator against the real catcher for a few seconds: it must keep working (this runs
//! in `cargo test --workspace`; the real measurements are in docs/BENCHMARKS.md).

use std::process::Stdio;
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::Proc;
use pb::status_service_client::StatusServiceClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_drives_a_real_catcher_and_every_event_is_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
    let catcher = Proc::start(
        "catcher",
        &["--listen", "127.0.0.1:0"],
        &[
            ("CATCHER_DATABASE_URL", db.as_str()),
            ("CATCHER_HEARTBEAT_INTERVAL_SECS", "1"),
            ("CATCHER_LOG_LEVEL", "warn"),
        ],
        dir.path(),
    )
    .await;
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-loadgen"))
        .args(["stream", "--catcher", &catcher.url(), "--agents", "20", "--watchers", "2", "--duration", "3"])
        .env("CATCHER_TOKEN", catcher.admin_token())
        .args(["--window", "64", "--progress-per-package", "2", "--drain-secs", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(120), run).await.expect("loadgen finishes").expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed: {stderr}\ncatcher log:\n{}", catcher.log_text());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report on stdout");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {r:#}"));
    assert_eq!(n("agents_connected"), 20, "{r:#}");
    assert_eq!(n("watchers_subscribed"), 2, "{r:#}");
    assert!(r["events_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{r:#}");
    assert!(n("events_sent") > 0);
    assert_eq!(n("events_acked"), n("events_sent"), "every event acknowledged: {r:#}");
    assert_eq!(n("events_unacked"), 0, "{r:#}");
    assert_eq!(n("events_rejected"), 0, "{r:#}");
    assert_eq!(n("protocol_errors"), 0, "{r:#}");
    assert_eq!(n("stream_errors"), 0, "{r:#}");
    assert!(n("heartbeats_sent") >= 20, "heartbeats every second: {r:#}");
    assert!(n("watch_package_changes") > 0, "{r:#}");
    assert!(r["watch_latency"]["count"].as_u64().unwrap_or(0) > 0, "{r:#}");
    // The catcher's pid was found from its listening port and measured.
    let usage = &r["catcher"]["usage"];
    assert!(usage["rss_mib_peak"].as_f64().unwrap_or(0.0) > 1.0, "{r:#}");
    assert!(usage["samples"].as_u64().unwrap_or(0) >= 2, "{r:#}");
    // The catcher agrees: the 20 sources are known.
    let ch = catcher.admin_channel().await.expect("connect");
    let status =
        StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await.expect("GetStatus").into_inner();
    assert_eq!(status.clients_total, 20, "{status:?}");
}

#[tokio::test]
async fn loadgen_refuses_what_it_must_not_do() {
    for args in [
        &["stream", "--catcher", "http://10.1.2.3:50051", "--duration", "1"][..],
        &["stream", "--catcher", "http://127.0.0.1:1", "--agents", "20001", "--duration", "1"],
        &["stream", "--catcher", "http://127.0.0.1:1", "--duration", "7200"],
        &["stream", "--catcher", "http://127.0.0.1:1", "--window", "0"],
        &["query", "--catcher", "http://example.com:1", "--duration", "1"],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-loadgen"))
            .args(args)
            .output()
            .await
            .expect("loadgen runs");
        assert_eq!(out.status.code(), Some(2), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("edge-loadgen: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn datagen_fills_a_database_the_catcher_then_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-datagen"))
        .args(["--database-url", &db, "--packages", "3000", "--sources", "20", "--batch", "500"])
        .output()
        .await
        .expect("datagen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["packages_in_database"], 3000);
    let catcher = Proc::start(
        "catcher",
        &["--listen", "127.0.0.1:0"],
        &[("CATCHER_DATABASE_URL", db.as_str()), ("CATCHER_LOG_LEVEL", "warn")],
        dir.path(),
    )
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-loadgen"))
        .args(["query", "--catcher", &catcher.url(), "--duration", "1", "--warmup", "0"])
        .env("CATCHER_TOKEN", catcher.admin_token())
        .output()
        .await
        .expect("loadgen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["errors"], 0, "{r:#}");
    assert!(r["latency"]["list_any"]["count"].as_u64().unwrap_or(0) > 0, "{r:#}");
    assert!(r["latency"]["get_projections_30d"]["count"].as_u64().unwrap_or(0) > 0, "{r:#}");
}

/// A small reconnect storm with admission turned down so that most Hellos are deferred: every
/// agent is welcomed again after the catcher's restart, none with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_is_admitted_without_errors() {
    let catcher = edgebackup_testkit::bin("catcher");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-loadgen"))
        .args(["storm", "--spawn-catcher", catcher.to_str().unwrap(), "--agents", "60", "--within", "60"])
        .args(["--catcher-env", "CATCHER_HELLO_RATE_PER_SEC=20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(180), run).await.expect("loadgen finishes").expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed: {stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report on stdout");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {r:#}"));
    assert_eq!(n("agents_connected"), 60, "{r:#}");
    assert_eq!(n("agents_rejoined"), 60, "every agent welcomed again: {r:#}");
    assert_eq!(n("errors"), 0, "{r:#}");
    assert!(n("deferred") > 0, "admission deferred some Hellos at 20 a second: {r:#}");
    assert!(r["all_rejoined_secs"].as_f64().is_some(), "{r:#}");
}
