//! Connections that never speak cannot hold the catcher's descriptors: they are closed when
//! they have not begun HTTP/2 in time, and at most `max_connections` are open at once (the rest
//! wait, logged) while real clients keep being served.

use std::time::{Duration, Instant};

use edgebackup_proto::v1 as pb;
use pb::status_service_client::StatusServiceClient;
use prost::Message;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::transport::Channel;

use crate::harness::{Catcher, Db, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_capped() {
    let db = TestDb::new(Db::Sqlite).await;
    let env = [("CATCHER_MAX_CONNECTIONS", "100"), ("CATCHER_HANDSHAKE_TIMEOUT_SECS", "1")];
    let catcher = Catcher::start_with(&db, &env).await;
    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(TcpStream::connect(&catcher.addr).await.expect("connect"));
    }
    // A real client is served meanwhile: it waits for a place, never for all 500.
    let started = Instant::now();
    let ch = Channel::from_shared(catcher.url()).unwrap().connect().await.expect("a real client connects");
    StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await.expect("and is answered");
    assert!(started.elapsed() < Duration::from_secs(15), "served in {:?}", started.elapsed());

    // Every silent connection is closed by the catcher (end of stream or reset), 100 at a time.
    for (i, mut s) in silent.into_iter().enumerate() {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), s.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "silent connection {i} still open: {read:?}");
    }
    let log = catcher.log_text();
    assert!(log.contains("connection limit reached"), "the cap is logged:\n{log}");
    assert_eq!(log.matches("connection limit reached").count(), 1, "once a minute, not per connection");
}

/// Many agent streams on one HTTP/2 connection (as behind a proxy), each sending bursts of
/// small frames: all of them are served, none is dropped with the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_share_one_connection() {
    let db = TestDb::new(Db::Sqlite).await;
    // The agents send nothing while they wait for their acks.
    let catcher = Catcher::start_with(&db, &[("CATCHER_AGENT_TIMEOUT_SECS", "120")]).await;
    let ch = Channel::from_shared(catcher.url()).unwrap().connect().await.unwrap();
    let mut agents = Vec::new();
    for i in 0..100 {
        agents.push(crate::agent::ScriptedAgent::connect(ch.clone(), &format!("edge-mux-{i}"), &[]).await);
    }
    let events = 2000;
    for a in &agents {
        for _ in 0..5 {
            a.heartbeat().await;
        }
        for seq in 1..=events {
            let id = uuid::Uuid::now_v7().to_string();
            a.send(seq, crate::agent::ingest(&id, "f", 0, "")).await;
        }
    }
    for (i, a) in agents.iter_mut().enumerate() {
        let acked = tokio::time::timeout(Duration::from_secs(60), a.wait_ack(events)).await;
        assert!(acked.is_ok(), "agent {i} was not acknowledged");
    }
    let log = catcher.log_text();
    assert!(!log.contains("too many small DATA frames"), "{log}");
}

/// A gRPC message as one frame of the body: flag, length, bytes.
fn grpc_frame(m: &impl prost::Message) -> bytes::Bytes {
    let body = m.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// A reconnect storm through a proxy: 200 agent streams on one HTTP/2 connection, each sending
/// Hello and then 60 small frames at once, one message per DATA frame, while the catcher is
/// still welcoming the others. Every stream is welcomed; the connection is not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_small_frames_on_one_connection_is_served() {
    use pb::agent_message::Body;
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start_with(&db, &[("CATCHER_AGENT_TIMEOUT_SECS", "120")]).await;
    let tcp = TcpStream::connect(&catcher.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let mut client = client;
    let mut streams = Vec::new();
    for i in 0..200 {
        client = client.ready().await.expect("room for a stream");
        let request = http::Request::post(format!("http://{}/edgebackup.v1.AgentService/Connect", catcher.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, false).expect("stream opened");
        let hello = pb::Hello { source_id: format!("edge-storm-{i}"), agent_version: "t".into(), ..Default::default() };
        let beat = pb::AgentMessage { body: Some(Body::Heartbeat(pb::Heartbeat { sent_at: None })) };
        let frames = std::iter::once(grpc_frame(&pb::AgentMessage { body: Some(Body::Hello(hello)) }))
            .chain(std::iter::repeat_with(|| grpc_frame(&beat)).take(60));
        for frame in frames {
            if let Err(e) = send.send_data(frame, false) {
                let gone = tokio::time::timeout(Duration::from_secs(5), driver).await;
                panic!("stream {i}: {e}; the connection: {gone:?}");
            }
        }
        streams.push((response, send));
    }
    for (i, (response, _send)) in streams.into_iter().enumerate() {
        let response = tokio::time::timeout(Duration::from_secs(60), response).await.expect("in time");
        let response = response.unwrap_or_else(|e| panic!("stream {i}: {e}"));
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = tokio::time::timeout(Duration::from_secs(60), body.data()).await.expect("welcome in time");
        let first = first.expect("a frame").unwrap_or_else(|e| panic!("stream {i}: {e}"));
        let welcome = pb::CatcherMessage::decode(&first[5..]).expect("a CatcherMessage");
        assert!(matches!(welcome.body, Some(pb::catcher_message::Body::Welcome(_))), "stream {i}: {welcome:?}");
    }
    driver.abort();
    let log = catcher.log_text();
    assert!(!log.contains("too_many_data_frames"), "{log}");
}

/// When an HTTP/2 abuse limit does fire, the catcher says so in its log, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abuse_limit_firing_is_logged() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let tcp = TcpStream::connect(&catcher.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!("http://{}/edgebackup.v1.AgentService/Connect", catcher.addr))
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let (_response, mut send) = client.send_request(request, false).unwrap();
    // Empty DATA frames carry nothing; h2 allows 100 of them per connection.
    for _ in 0..200 {
        if send.send_data(bytes::Bytes::new(), false).is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(10), driver).await.expect("closed in time");
    assert!(format!("{closed:?}").contains("too_many_data_frames"), "{closed:?}");
    crate::harness::eventually("the GOAWAY logged", 10, || async {
        let log = catcher.log_text();
        log.lines()
            .any(|l| l.contains("closing an HTTP/2 connection on an error") && l.contains("too_many_data_frames"))
            .then_some(())
    })
    .await;
}
