//! grpc-web through the gateway: unary calls, the Watch stream, errors, and catcher restarts.

use edgebackup_proto::v1 as pb;
use pb::watch_event::Kind;
use prost::Message;

use crate::harness::Stack;

const WATCH: &str = "edgebackup.v1.StatusService/Watch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_and_errors_pass_through() {
    let stack = Stack::start().await;
    let web = stack.web();
    let status: pb::GetStatusResponse =
        web.unary("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await.unwrap();
    assert_eq!(status.database, "sqlite");

    let request = pb::RegisterSourceRequest { source_id: "edge-web".into(), label: "from the browser".into() };
    let _: pb::Source = web.unary("edgebackup.v1.SourceService/RegisterSource", &request).await.unwrap();
    let list: pb::ListSourcesResponse =
        web.unary("edgebackup.v1.SourceService/ListSources", &pb::ListSourcesRequest {}).await.unwrap();
    assert_eq!(list.sources.iter().map(|s| s.source_id.as_str()).collect::<Vec<_>>(), ["edge-web"]);

    // The catcher's InvalidArgument arrives intact, field name first.
    let bad = pb::RegisterSourceRequest { source_id: String::new(), label: String::new() };
    let err = web.unary::<pb::Source>("edgebackup.v1.SourceService/RegisterSource", &bad).await.unwrap_err();
    assert_eq!(err.code, tonic::Code::InvalidArgument as u32);
    assert!(err.message.starts_with("source_id:"), "{err:?}");

    // Unknown methods of exposed services come back as the catcher's Unimplemented.
    let err = web.unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/Nope", &pb::GetStatusRequest {}).await;
    assert_eq!(err.unwrap_err().code, tonic::Code::Unimplemented as u32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_a_snapshot_then_live_deltas() {
    let stack = Stack::start().await;
    let web = stack.web();
    let mut watch = web.call(WATCH, &pb::WatchRequest::default()).await;
    let first = pb::WatchEvent::decode(watch.next_message().await.expect("snapshot")).unwrap();
    assert!(matches!(first.kind, Some(Kind::Snapshot(_))), "{first:?}");

    // A change made through the gateway arrives on the open stream.
    let request = pb::RegisterSourceRequest { source_id: "edge-live".into(), label: String::new() };
    let _: pb::Source = web.unary("edgebackup.v1.SourceService/RegisterSource", &request).await.unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(bytes) = watch.next_message().await {
            if let Some(Kind::SourceChanged(s)) = pb::WatchEvent::decode(bytes).unwrap().kind {
                return s.source_id;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .expect("the delta arrives within 10 s");
    assert_eq!(seen, "edge-live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catcher_outage_is_reported_and_recovered_from() {
    let mut stack = Stack::start().await;
    let web = stack.web();
    let mut watch = web.call(WATCH, &pb::WatchRequest::default()).await;
    assert!(watch.next_message().await.is_some(), "snapshot");

    stack.catcher.kill().await;
    // The open stream ends (the browser then reconnects) instead of hanging.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while watch.next_message().await.is_some() {}
        watch.status().await
    })
    .await;
    let (code, message) = ended.expect("the Watch stream ends when the catcher dies");
    assert_eq!(code, tonic::Code::Unavailable as u32, "with a status, not a cut body: {message}");

    let err =
        web.unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await;
    let err = err.unwrap_err();
    assert_eq!(err.code, tonic::Code::Unavailable as u32);
    assert!(err.message.contains("catcher unreachable at"), "{err:?}");
    let (code, _, body) = crate::harness::get(&stack.gateway.url(), "/healthz").await;
    assert_eq!(code, 503);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["catcher"], "unreachable", "{health}");

    stack.catcher.restart_same_port().await;
    let status = edgebackup_testkit::eventually("grpc-web answered again after the catcher restart", 30, || async {
        web.unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await.ok()
    })
    .await;
    assert_eq!(status.database, "sqlite");
    let (code, _, _) = crate::harness::get(&stack.gateway.url(), "/healthz").await;
    assert_eq!(code, 200);
    let mut watch = web.call(WATCH, &pb::WatchRequest::default()).await;
    assert!(watch.next_message().await.is_some(), "a new Watch gets its snapshot");
}
