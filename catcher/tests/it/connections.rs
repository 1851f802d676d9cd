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
    let ch = edgebackup_common::client::as_person(ch, Some(&catcher.admin_token)).unwrap();
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

/// A gRPC message as one frame of the body: flag, length, bytes.
fn grpc_frame(m: &impl prost::Message) -> bytes::Bytes {
    let body = m.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// A storm of small frames on one HTTP/2 connection: 200 Connect streams, each sending Hello
/// and then 60 small frames at once, one message per DATA frame, while the catcher is still
/// welcoming the others (one agent reconnecting over and over on one TLS connection: each
/// stream supersedes the one before). Every stream is answered; the connection is not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_small_frames_on_one_connection_is_served() {
    use edgebackup_common::client;
    use pb::agent_message::Body;
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start_with(&db, &[("CATCHER_AGENT_TIMEOUT_SECS", "120")]).await;
    let cred = crate::harness::enroll(&catcher, "edge-storm", false).await;
    let tls = client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(&cred)).unwrap();
    let tcp = TcpStream::connect(&catcher.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let io = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.expect("TLS handshake");
    let (client, connection) = h2::client::handshake(io).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let mut client = client;
    let mut streams = Vec::new();
    for i in 0..200 {
        client = client.ready().await.expect("room for a stream");
        let request = http::Request::post(format!("https://{}/edgebackup.v1.AgentService/Connect", catcher.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, false).expect("stream opened");
        let hello = pb::Hello { source_id: "edge-storm".into(), agent_version: "t".into(), ..Default::default() };
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
        let mut got = Vec::new();
        // The first message, however the frames cut it.
        while got.len() < 5 || got.len() < 5 + u32::from_be_bytes([got[1], got[2], got[3], got[4]]) as usize {
            let chunk = tokio::time::timeout(Duration::from_secs(60), body.data()).await.expect("welcome in time");
            let chunk = chunk.expect("a frame").unwrap_or_else(|e| panic!("stream {i}: {e}"));
            let _ = body.flow_control().release_capacity(chunk.len());
            got.extend_from_slice(&chunk);
        }
        let len = u32::from_be_bytes([got[1], got[2], got[3], got[4]]) as usize;
        let welcome = pb::CatcherMessage::decode(&got[5..5 + len]).expect("a CatcherMessage");
        // Welcomed, or already superseded by the next stream of the same source: answered either way.
        let answered = match &welcome.body {
            Some(pb::catcher_message::Body::Welcome(_)) => true,
            Some(pb::catcher_message::Body::Error(e)) => e.code == pb::StatusCode::Aborted as i32,
            _ => false,
        };
        assert!(answered, "stream {i}: {welcome:?}");
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
    // A public RPC: the call waits for its request message while the empty frames arrive.
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", catcher.addr))
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
    // The client sees the GOAWAY, or (when its own writes race the close) a broken pipe or reset:
    // either way the connection is closed with an error; the log below says why.
    let closed = closed.expect("the driver task ran");
    assert!(closed.is_err(), "the connection closed cleanly: {closed:?}");
    crate::harness::eventually("the GOAWAY logged", 10, || async {
        let log = catcher.log_text();
        log.lines()
            .any(|l| l.contains("closing an HTTP/2 connection on an error") && l.contains("too_many_data_frames"))
            .then_some(())
    })
    .await;
}
