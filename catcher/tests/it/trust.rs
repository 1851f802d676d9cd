//! Trust between machines, tried as an attacker would: enrollment, impersonation, revocation,
//! the access matrix over every RPC, and secrets that never leak.

use std::time::{Duration, Instant};

use edgebackup_common::client;
use edgebackup_proto::v1 as pb;
use pb::agent_event::Kind;
use pb::catcher_message::Body as Out;
use tonic::Code;
use tonic::transport::Channel;

use crate::agent::{ScriptedAgent, ingest};
use crate::harness::{Catcher, Db, TestDb, agent_channel, enroll};

async fn token(catcher: &Catcher, source: &str, ttl_secs: i64, uses: u32) -> pb::CreateEnrollmentTokenResponse {
    let request = pb::CreateEnrollmentTokenRequest {
        source_id: source.into(),
        ttl: Some(prost_types::Duration { seconds: ttl_secs, nanos: 0 }),
        uses,
        mover: false,
    };
    pb::access_service_client::AccessServiceClient::new(catcher.channel().await)
        .create_enrollment_token(request)
        .await
        .unwrap()
        .into_inner()
}

/// Opens a stream with `hello` and returns why it was refused.
async fn hello_refused(channel: &Channel, hello: pb::Hello) -> tonic::Status {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::AgentMessage { body: Some(pb::agent_message::Body::Hello(hello)) }).await.unwrap();
    pb::agent_service_client::AgentServiceClient::new(channel.clone())
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("the hello was accepted")
}

fn https(catcher: &Catcher) -> String {
    format!("https://{}", catcher.addr)
}

/// Tokens are single-use, expire, are checked against the pinned CA, and are kept only hashed;
/// the agent's key never leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_tokens_are_one_time_and_pinned() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let t = token(&catcher, "edge-e", 3600, 1).await;
    // A catcher whose CA is not the pinned one is refused before the token is sent.
    let wrong = "00".repeat(32);
    let err = client::enroll(&https(&catcher), &t.token, Some(&wrong)).await.unwrap_err();
    assert!(err.contains("not the pinned one"), "{err}");
    let (cred, source) = client::enroll(&https(&catcher), &t.token, Some(&t.ca_fingerprint)).await.unwrap();
    assert_eq!(source, "edge-e");
    let again = client::enroll(&https(&catcher), &t.token, Some(&t.ca_fingerprint)).await.unwrap_err();
    assert!(again.contains("Unauthenticated") && again.contains("used up"), "{again}");
    let short = token(&catcher, "edge-e", 1, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = client::enroll(&https(&catcher), &short.token, Some(&short.ca_fingerprint)).await.unwrap_err();
    assert!(expired.contains("Unauthenticated") && expired.contains("expired"), "{expired}");
    let bogus = client::enroll(&https(&catcher), "ebk_enroll_nope", Some(&t.ca_fingerprint)).await.unwrap_err();
    assert!(bogus.contains("Unauthenticated"), "{bogus}");

    // The database holds the hashes only; the key stays with the agent.
    let dump = std::fs::read(db.dir.path().join("catcher.db")).unwrap_or_default();
    let wal = std::fs::read(db.dir.path().join("catcher.db-wal")).unwrap_or_default();
    for bytes in [&dump, &wal] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&t.token) && !text.contains(&short.token), "a token is stored in plaintext");
        assert!(!text.contains(cred.key_pem.lines().nth(1).unwrap()), "the agent's key reached the catcher");
    }
    let log = catcher.log_text();
    assert!(!log.contains(&t.token) && !log.contains(&short.token), "a token is in the log");
    let journal = pb::journal_service_client::JournalServiceClient::new(catcher.channel().await)
        .query_journal(pb::QueryJournalRequest { limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let text = format!("{journal:?}");
    assert!(!text.contains(&t.token), "a token is in the journal");
    assert!(text.contains("agent.enrolled") || text.contains("AgentEnrolled"), "{text}");
}

/// An agent enrolled as A cannot be B: not on the stream (B's session is untouched), not through
/// B's packages, and it cannot reach the people's RPCs at all. Each attempt changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_impersonate_another() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let mut b = ScriptedAgent::enroll(&catcher, "edge-b", &[pb::Capability::Backup]).await;
    let package = uuid::Uuid::now_v7().to_string();
    b.send(1, ingest(&package, "/data/b.txt", 10, "")).await;
    b.wait_ack(1).await;
    let mut c = catcher.clients().await;
    let before = c.package(&package).await;

    let a = agent_channel(&catcher.addr, "edge-a", false).await;
    // Hello as B: refused, and B's stream is still the live one.
    let hello = pb::Hello { source_id: "edge-b".into(), agent_version: "x".into(), ..Default::default() };
    let refused = hello_refused(&a, hello).await;
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().starts_with("hello.source_id:"), "{refused:?}");
    b.send(
        2,
        Kind::Progress(pb::Progress { package_id: package.clone(), bytes_done: 5, progress_percent: 50, attempt: 0 }),
    )
    .await;
    b.wait_ack(2).await;
    assert!(b.seen.iter().all(|m| !matches!(m.body, Some(Out::Error(_)))), "B was not superseded: {:?}", b.seen);

    // As a mover it was not enrolled as: refused.
    let hello = pb::Hello {
        source_id: "edge-a".into(),
        capabilities: vec![pb::Capability::Mover as i32],
        ..Default::default()
    };
    let refused = hello_refused(&a, hello).await;
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().starts_with("hello.capabilities:"), "{refused:?}");

    // B's packages are off limits, as are the people's RPCs.
    let mut packages = pb::package_service_client::PackageServiceClient::new(a.clone());
    let complete = pb::UpdatePackageRequest {
        package_id: package.clone(),
        sha256: Some("ab".repeat(32)),
        status: Some(pb::PackageStatus::Completed as i32),
        ..Default::default()
    };
    let codes = [
        packages.update_package(complete).await.unwrap_err().code(),
        packages
            .get_package(pb::GetPackageRequest { package_id: package.clone(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        packages
            .ingest_package(pb::IngestPackageRequest {
                source_id: "edge-b".into(),
                path: "/x".into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        packages.get_resume_list(pb::GetResumeListRequest { source_id: "edge-b".into() }).await.unwrap_err().code(),
        packages
            .delete_package(pb::DeletePackageRequest { package_id: package.clone(), reason: "x".into() })
            .await
            .unwrap_err()
            .code(),
        pb::source_service_client::SourceServiceClient::new(a.clone())
            .create_command(pb::CreateCommandRequest {
                source_id: "edge-b".into(),
                kind: pb::CommandKind::Pause as i32,
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        pb::catalog_service_client::CatalogServiceClient::new(a.clone())
            .list_folders(pb::ListFoldersRequest { source_id: "edge-b".into() })
            .await
            .unwrap_err()
            .code(),
        pb::policy_service_client::PolicyServiceClient::new(a.clone())
            .apply_preset(pb::ApplyPresetRequest { name: "demo".into(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
    ];
    assert!(codes.iter().all(|c| *c == Code::PermissionDenied), "{codes:?}");
    let after = c.package(&package).await;
    // Only B's own progress changed it.
    let in_progress = pb::PackageStatus::InProgress as i32;
    assert_eq!((after.status, after.sha256, after.progress_percent), (in_progress, before.sha256, 50));
    assert_eq!(c.journal_of_type("rules.preset_applied").await.len(), 0);
}

/// Revoking a credential closes its live stream within a second, by the RPC and by the CLI on
/// the host; later attempts are refused; a replacement enrolls anew and keeps the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_the_live_stream_within_a_second() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let mut a = ScriptedAgent::enroll(&catcher, "edge-r1", &[]).await;
    let package = uuid::Uuid::now_v7().to_string();
    a.send(1, ingest(&package, "/data/r.txt", 10, "")).await;
    a.wait_ack(1).await;
    let cred = enroll(&catcher.addr, "edge-r2", false).await;
    let tls = client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(&cred)).unwrap();
    let ch2 = client::channel(&https(&catcher), Some(tls.clone()), false).await.unwrap();
    let mut b = ScriptedAgent::connect(ch2, "edge-r2", &[]).await;

    let started = Instant::now();
    let mut access = pb::access_service_client::AccessServiceClient::new(catcher.channel().await);
    let revoked =
        access.revoke_agent(pb::RevokeAgentRequest { source_id: "edge-r1".into() }).await.unwrap().into_inner();
    assert_eq!(revoked.revoked, 1);
    let closed = closed_within(&mut a, Duration::from_secs(1)).await;
    println!("revocation by RPC closed the stream in {:?}", started.elapsed());
    assert!(closed, "the revoked agent's stream is still open after 1 s");

    // By the CLI on the catcher's host (another process): picked up by the running catcher.
    let started = Instant::now();
    let out = edgebackup_testkit::Spec::new("catcher", db.dir.path())
        .args(["agent", "revoke", "edge-r2", "--database-url", &db.url])
        .output(30)
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let closed = closed_within(&mut b, Duration::from_secs(1)).await;
    println!("revocation by the CLI closed the stream in {:?} (including the CLI's own start)", started.elapsed());
    assert!(closed, "the CLI's revocation did not close the stream within 1 s of it");

    // Later attempts with the old credential: refused.
    let again = client::channel(&https(&catcher), Some(tls), false).await.unwrap();
    let status = pb::package_service_client::PackageServiceClient::new(again)
        .get_package(pb::GetPackageRequest { package_id: package.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");

    // The replaced device enrolls anew and finds its source's history.
    let fresh = agent_channel(&catcher.addr, "edge-r1", false).await;
    let p = pb::package_service_client::PackageServiceClient::new(fresh)
        .get_package(pb::GetPackageRequest { package_id: package, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.source_id, "edge-r1");
}

/// Waits up to `within` for the stream to end or report an error; true when it did.
async fn closed_within(agent: &mut ScriptedAgent, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, agent.next_frame()).await {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(m)) if matches!(m.body, Some(Out::Error(_))) => return true,
            Ok(Some(_)) => {}
        }
    }
}

/// Every RPC in the descriptor set × {no credential, agent, mover agent}: the code each gets.
/// A new RPC lands in the strictest row unless listed here, so it cannot be forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_checks_the_caller() {
    use prost::Message;
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    const PUBLIC: &[&str] = &["edgebackup.v1.EnrollService/Enroll"];
    const AGENT_ONLY: &[&str] = &["edgebackup.v1.AgentService/Connect", "edgebackup.v1.EnrollService/Renew"];
    const AGENT_OR_PERSON: &[&str] = &[
        "edgebackup.v1.PackageService/IngestPackage",
        "edgebackup.v1.PackageService/UpdatePackage",
        "edgebackup.v1.PackageService/GetResumeList",
        "edgebackup.v1.PackageService/GetPackage",
        "edgebackup.v1.CatalogService/ListState",
        "edgebackup.v1.CatalogService/ListFolder",
        "edgebackup.v1.CatalogService/ListFolders",
        "edgebackup.v1.CatalogService/ListVersions",
    ];
    let set = prost_types::FileDescriptorSet::decode(edgebackup_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for m in &service.method {
                let path = format!("{}.{}/{}", file.package(), service.name(), m.name());
                methods.push((path, m.client_streaming(), m.server_streaming()));
            }
        }
    }
    assert!(methods.len() > 40, "{} methods", methods.len());
    let callers = [
        ("none", catcher.channel().await),
        ("agent", agent_channel(&catcher.addr, "edge-m1", false).await),
        ("mover", agent_channel(&catcher.addr, "edge-m2", true).await),
    ];
    let mut wrong = Vec::new();
    for (path, client_streaming, server_streaming) in &methods {
        for (who, ch) in &callers {
            let code = call_empty(ch.clone(), path, *client_streaming, *server_streaming).await;
            let auth_error = matches!(code, Code::Unauthenticated | Code::PermissionDenied);
            let ok = if PUBLIC.contains(&path.as_str()) {
                !auth_error
            } else if AGENT_ONLY.contains(&path.as_str()) {
                if *who == "none" { code == Code::Unauthenticated } else { !auth_error }
            } else if AGENT_OR_PERSON.contains(&path.as_str()) {
                // An empty request names no source of the caller's: at most refused on scope.
                code != Code::Unauthenticated
            } else if *who == "none" {
                // People's RPCs: until people sign in (the next step), no credential reaches them.
                !auth_error
            } else {
                code == Code::PermissionDenied
            };
            if !ok {
                wrong.push(format!("{path} as {who}: {code:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "unexpected codes:\n{}", wrong.join("\n"));
}

/// Calls `path` with one empty message and answers the status code (OK when it succeeded).
async fn call_empty(ch: Channel, path: &str, client_streaming: bool, server_streaming: bool) -> Code {
    let mut grpc = tonic::client::Grpc::new(ch);
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{path}").parse().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let result = match (client_streaming, server_streaming) {
        (false, false) => grpc.unary(tonic::Request::new(()), path, codec).await.map(|_| ()),
        (false, true) => match grpc.server_streaming(tonic::Request::new(()), path, codec).await {
            Ok(r) => tokio::time::timeout(Duration::from_secs(2), r.into_inner().message())
                .await
                .map_or(Ok(()), |m| m.map(|_| ())),
            Err(s) => Err(s),
        },
        (true, _) => {
            let stream = tokio_stream::iter(vec![()]);
            match grpc.streaming(tonic::Request::new(stream), path, codec).await {
                Ok(r) => tokio::time::timeout(Duration::from_secs(2), r.into_inner().message())
                    .await
                    .map_or(Ok(()), |m| m.map(|_| ())),
                Err(s) => Err(s),
            }
        }
    };
    result.err().map_or(Code::Ok, |s| s.code())
}
