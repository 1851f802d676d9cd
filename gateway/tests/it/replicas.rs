//! A gateway in front of three catcher replicas (one PostgreSQL database): calls are spread over
//! them; a replica that dies is marked unhealthy and left out, and calls keep succeeding.

use std::collections::HashSet;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;
use edgebackup_testkit::prometheus::{logged_addr, parse, scrape};

use crate::harness::{Stack, get};

async fn answered_by(stack: &Stack, calls: usize) -> Vec<String> {
    let web = stack.web();
    let mut out = Vec::new();
    for _ in 0..calls {
        let r: pb::GetStatusResponse =
            web.unary("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await.expect("a call");
        out.push(r.replica_id);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spread_over_replicas_and_a_dead_one_is_left_out() {
    let mut stack = Stack::replicas(3, &[("GATEWAY_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let addr = eventually("the metrics address in the log", 10, || async {
        logged_addr(&stack.gateway.log_text(), "metrics served at /metrics")
    })
    .await;
    // Every replica knows the others, and one holds the lease.
    let web = stack.web();
    let status: pb::GetStatusResponse = eventually("three replicas in the status", 15, || async {
        let s: pb::GetStatusResponse =
            web.unary("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await.ok()?;
        (s.replicas.len() == 3).then_some(s)
    })
    .await;
    assert_eq!(status.replicas.iter().filter(|r| r.holds_lease).count(), 1, "{:?}", status.replicas);
    let ids: HashSet<String> = answered_by(&stack, 9).await.into_iter().collect();
    assert_eq!(ids.len(), 3, "calls reach every replica: {ids:?}");
    let m = parse(&scrape(&addr).await.1);
    assert_eq!(m["edgebackup_gateway_catcher_replicas_up{}"], 3.0);

    // The first replica dies: /healthz still serves (naming it unreachable), and calls all go
    // to the other two.
    let dead_url = stack.catcher.url();
    stack.catcher.kill().await;
    let body = eventually("healthz naming the dead replica", 15, || async {
        let (code, _, body) = get(&stack.gateway.url(), "/healthz").await;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let dead = v["catchers"].as_array()?.iter().any(|c| c["url"] == dead_url && c["status"] == "unreachable");
        (code == 200 && dead).then_some(v)
    })
    .await;
    assert_eq!(body["catcher"], "serving", "{body}");
    let survivors: HashSet<String> = answered_by(&stack, 12).await.into_iter().collect();
    assert_eq!(survivors.len(), 2, "calls go to the two live replicas: {survivors:?}");
    let m = parse(&scrape(&addr).await.1);
    assert_eq!(m["edgebackup_gateway_catcher_replicas_up{}"], 2.0);
    assert_eq!(m["edgebackup_gateway_catcher_up{}"], 1.0);
}
