//! The gateway's `/metrics`, read by a real Prometheus parser: calls per service counted,
//! the catcher's health followed; only on loopback.

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::prometheus::{dashboard_names, exposes, logged_addr, parse, scrape};
use edgebackup_testkit::{Spec, eventually};

use crate::harness::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_counted_per_service_and_the_catcher_followed() {
    let mut stack = Stack::start_with(&[("GATEWAY_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let addr = eventually("the metrics address in the log", 10, || async {
        logged_addr(&stack.gateway.log_text(), "metrics served at /metrics")
    })
    .await;
    let web = stack.web();
    for _ in 0..3 {
        let _: pb::GetStatusResponse =
            web.unary("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await.unwrap();
    }
    let _: pb::ListSourcesResponse =
        web.unary("edgebackup.v1.SourceService/ListSources", &pb::ListSourcesRequest {}).await.unwrap();
    let (content_type, body) = scrape(&addr).await;
    assert!(content_type.contains("version=0.0.4"), "{content_type}");
    let m = parse(&body);
    assert_eq!(m["edgebackup_gateway_grpc_web_calls_total{service=\"edgebackup.v1.StatusService\"}"], 3.0);
    assert_eq!(m["edgebackup_gateway_grpc_web_calls_total{service=\"edgebackup.v1.SourceService\"}"], 1.0);
    assert_eq!(m["edgebackup_gateway_grpc_web_calls_total{service=\"edgebackup.v1.JournalService\"}"], 0.0);
    assert_eq!(m["edgebackup_gateway_catcher_up{}"], 1.0);
    assert_eq!(m["edgebackup_gateway_grpc_web_calls_total{service=\"edgebackup.v1.AlertService\"}"], 0.0);
    let missing: Vec<String> =
        dashboard_names("edgebackup_gateway_").into_iter().filter(|n| !exposes(&body, n)).collect();
    assert!(missing.is_empty(), "the dashboard reads metrics the gateway does not expose: {missing:?}");
    stack.catcher.kill().await;
    let m = parse(&scrape(&addr).await.1);
    assert_eq!(m["edgebackup_gateway_catcher_up{}"], 0.0, "the catcher is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Spec::new("gateway", dir.path()).env("GATEWAY_METRICS_LISTEN", "0.0.0.0:9466").output(30).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("metrics_listen") && stderr.contains("loopback"), "{stderr}");
}
