//! Trust between machines, tried as an attacker would: enrollment, impersonation, revocation,
//! the access matrix over every RPC, and secrets that never leak.

use std::time::{Duration, Instant};

use edgebackup_common::client::{self, PersonChannel, as_person};
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

/// The SQLite database and its WAL as text (the database must exist: a missing file would make
/// "no secret in it" pass by reading nothing).
fn database_files(db: &TestDb) -> Vec<String> {
    let main = std::fs::read(db.dir.path().join("catcher.db")).expect("the catcher's SQLite file");
    assert!(!main.is_empty(), "the catcher's SQLite file is empty");
    let wal = std::fs::read(db.dir.path().join("catcher.db-wal")).unwrap_or_default();
    [main, wal].iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
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
    for text in database_files(&db) {
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

    let a = agent_channel(&catcher, "edge-a", false).await;
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
    let cred = enroll(&catcher, "edge-r2", false).await;
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
    let fresh = agent_channel(&catcher, "edge-r1", false).await;
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

/// Every RPC in the descriptor set × {no credential, agent, mover, viewer, operator, admin}: the
/// code each gets.
/// A new RPC lands in the strictest row unless listed here, so it cannot be forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_checks_the_caller() {
    use prost::Message;
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    const PUBLIC: &[&str] = &["edgebackup.v1.EnrollService/Enroll"];
    const AGENT_ONLY: &[&str] = &[
        "edgebackup.v1.AgentService/Connect",
        "edgebackup.v1.EnrollService/Renew",
        "edgebackup.v1.PackageService/ReportCopyChecks",
    ];
    // What agents read of their own source, and what people may read of it too.
    const AGENT_READS: &[&str] = &[
        "edgebackup.v1.PackageService/GetResumeList",
        "edgebackup.v1.PackageService/GetPackage",
        "edgebackup.v1.PackageService/ListPackages",
        "edgebackup.v1.CatalogService/ListState",
        "edgebackup.v1.CatalogService/ListFolder",
        "edgebackup.v1.CatalogService/ListFolders",
        "edgebackup.v1.CatalogService/ListVersions",
        "edgebackup.v1.AccessService/WhoAmI",
    ];
    // What agents write about their packages; of people only an admin may.
    const AGENT_WRITES: &[&str] =
        &["edgebackup.v1.PackageService/IngestPackage", "edgebackup.v1.PackageService/UpdatePackage"];
    const VIEWER: &[&str] = &[
        "edgebackup.v1.StatusService/GetStatus",
        "edgebackup.v1.StatusService/GetTierSummary",
        "edgebackup.v1.StatusService/GetProjections",
        "edgebackup.v1.StatusService/Watch",
        "edgebackup.v1.SourceService/ListSources",
        "edgebackup.v1.SourceService/GetSource",
        "edgebackup.v1.SourceService/ListCommands",
        "edgebackup.v1.PolicyService/ListRuleSets",
        "edgebackup.v1.PolicyService/GetRuleSet",
        "edgebackup.v1.PolicyService/ListPresets",
        "edgebackup.v1.PolicyService/ListStations",
        "edgebackup.v1.PolicyService/ListConfigSnapshots",
        "edgebackup.v1.PolicyService/GetConfigSnapshot",
        "edgebackup.v1.PolicyService/ExportConfigSnapshot",
        "edgebackup.v1.AlertService/ListAlerts",
        "edgebackup.v1.AlertService/ListChannels",
        "edgebackup.v1.AlertService/GetRecoveryPoints",
        "edgebackup.v1.PolicyService/ListPendingChanges",
        "edgebackup.v1.JournalService/QueryJournal",
        "edgebackup.v1.JournalService/ExportJournal",
        "edgebackup.v1.JournalService/VerifyJournal",
        "edgebackup.v1.CatalogService/SearchFiles",
        "edgebackup.v1.CatalogService/GetCoverage",
    ];
    const OPERATOR: &[&str] = &[
        "edgebackup.v1.PolicyService/UpdateRuleSet",
        "edgebackup.v1.PolicyService/ApplyPreset",
        "edgebackup.v1.PolicyService/CreateConfigSnapshot",
        "edgebackup.v1.PolicyService/RestoreConfigSnapshot",
        "edgebackup.v1.PolicyService/CancelPendingChange",
        "edgebackup.v1.SourceService/CreateCommand",
        "edgebackup.v1.SourceService/RegisterSource",
        "edgebackup.v1.AlertService/AcknowledgeAlert",
        "edgebackup.v1.AlertService/TestChannel",
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
    let viewer = catcher.person("matrix-viewer", pb::Role::Viewer).await;
    let operator = catcher.person("matrix-operator", pb::Role::Operator).await;
    let callers = [
        ("none", catcher.channel_as(None).await),
        ("agent", as_person(agent_channel(&catcher, "edge-m1", false).await, None).unwrap()),
        ("mover", as_person(agent_channel(&catcher, "edge-m2", true).await, None).unwrap()),
        ("viewer", catcher.channel_as(Some(&viewer)).await),
        ("operator", catcher.channel_as(Some(&operator)).await),
        ("admin", catcher.channel().await),
    ];
    let rank = |who: &str| ["viewer", "operator", "admin"].iter().position(|r| *r == who);
    let mut wrong = Vec::new();
    for (path, client_streaming, server_streaming) in &methods {
        let p = path.as_str();
        // The least role a person needs; None: no person may.
        let person_needs = if PUBLIC.contains(&p) || AGENT_READS.contains(&p) || VIEWER.contains(&p) {
            Some(0)
        } else if OPERATOR.contains(&p) {
            Some(1)
        } else if AGENT_ONLY.contains(&p) {
            None
        } else {
            Some(2)
        };
        let agents_may =
            PUBLIC.contains(&p) || AGENT_ONLY.contains(&p) || AGENT_READS.contains(&p) || AGENT_WRITES.contains(&p);
        for (who, ch) in &callers {
            let code = call_empty(ch.clone(), path, *client_streaming, *server_streaming).await;
            let auth_error = matches!(code, Code::Unauthenticated | Code::PermissionDenied);
            let ok = if PUBLIC.contains(&p) {
                !auth_error
            } else if *who == "none" {
                code == Code::Unauthenticated
            } else if let Some(rank) = rank(who) {
                match person_needs {
                    None => code == Code::Unauthenticated,
                    Some(needs) if rank >= needs => !auth_error,
                    Some(_) => code == Code::PermissionDenied,
                }
            } else if agents_may {
                // An empty request names no source of the caller's: at most refused on scope.
                code != Code::Unauthenticated
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
async fn call_empty(ch: PersonChannel, path: &str, client_streaming: bool, server_streaming: bool) -> Code {
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

/// People's tokens: the first admin's file is private, tokens are stored hashed, WhoAmI names
/// the caller, an expired token is refused, and revoking a token ends its open Watch stream
/// within a second (by RPC and by the CLI on the host) and refuses it from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_tokens_are_checked_and_revoked_live() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let admin_file = db.dir.path().join("data/admin.token");
    assert_eq!(std::fs::metadata(&admin_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(catcher.log_text().contains("admin.token"), "the log says where the admin token is");
    assert!(!catcher.log_text().contains(&catcher.admin_token), "the admin token is in the log");

    let mut access = pb::access_service_client::AccessServiceClient::new(catcher.channel().await);
    let who = access.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    let Some(pb::who_am_i_response::Who::Person(me)) = who.who else { panic!("{who:?}") };
    assert_eq!((me.name.as_str(), me.role()), ("admin", pb::Role::Admin));

    // Names are unique; a bad role or name is refused naming the field.
    let viewer = catcher.person("vera", pb::Role::Viewer).await;
    let again = pb::CreateTokenRequest { name: "vera".into(), role: pb::Role::Viewer as i32, ..Default::default() };
    assert_eq!(access.create_token(again).await.unwrap_err().code(), Code::AlreadyExists);
    let bad = pb::CreateTokenRequest { name: "vera two".into(), role: pb::Role::Viewer as i32, ..Default::default() };
    let err = access.create_token(bad).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("name:"), "{err:?}");
    let bad = pb::CreateTokenRequest { name: "nobody".into(), ..Default::default() };
    let err = access.create_token(bad).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("role:"), "{err:?}");

    // A wrong or malformed token is refused; an expired one too.
    for bad in ["ebk_token_0000", "Basic abc", &catcher.admin_token.replace("ebk_token_", "ebk_enroll_")] {
        let ch = catcher.channel_as(Some(bad)).await;
        let err = pb::status_service_client::StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await;
        assert_eq!(err.unwrap_err().code(), Code::Unauthenticated, "{bad}");
    }
    let short = pb::CreateTokenRequest {
        name: "brief".into(),
        role: pb::Role::Viewer as i32,
        ttl: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
        ..Default::default()
    };
    let brief = access.create_token(short).await.unwrap().into_inner().token;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ch = catcher.channel_as(Some(&brief)).await;
    let err = pb::status_service_client::StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await;
    assert!(err.as_ref().unwrap_err().message().contains("expired"), "{err:?}");

    // Revoked by RPC: the viewer's live Watch ends within a second, with UNAUTHENTICATED.
    let mut watch = watch_as(&catcher, &viewer).await;
    let t0 = Instant::now();
    access.revoke_token(pb::RevokeTokenRequest { name: "vera".into() }).await.unwrap();
    let status = ended(&mut watch).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "the stream lasted {:?} after the revocation", t0.elapsed());
    let ch = catcher.channel_as(Some(&viewer)).await;
    let err = pb::status_service_client::StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await;
    assert!(err.as_ref().unwrap_err().message().contains("revoked"), "{err:?}");

    // Revoked by the CLI on the host (another process, the same database): within a second too.
    let olga = catcher.person("olga", pb::Role::Operator).await;
    // What a person changes is journaled with who did it.
    let mut policy = pb::policy_service_client::PolicyServiceClient::new(catcher.channel_as(Some(&olga)).await);
    let snap = pb::CreateConfigSnapshotRequest { reason: "before the change".into() };
    policy.create_config_snapshot(snap).await.unwrap();
    let snaps = catcher.clients().await.journal_of_type("config.snapshot").await;
    assert!(snaps.iter().any(|e| e.actor == "token:olga (operator)"), "{snaps:?}");
    let mut watch = watch_as(&catcher, &olga).await;
    let t0 = Instant::now();
    let out = std::process::Command::new(edgebackup_testkit::bin("catcher"))
        .args(["token", "revoke", "olga"])
        .env("CATCHER_DATABASE_URL", &db.url)
        .current_dir(db.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = ended(&mut watch).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "the stream lasted {:?} after `token revoke`", t0.elapsed());

    // Listed without secrets; stored only as hashes; journaled with the actor.
    let listed = access.list_tokens(pb::ListTokensRequest {}).await.unwrap().into_inner();
    let vera = listed.tokens.iter().find(|t| t.name == "vera").unwrap();
    assert!(vera.revoked_at.is_some() && vera.created_by == "token:admin (admin)", "{vera:?}");
    for text in database_files(&db) {
        for secret in [&catcher.admin_token, &viewer, &olga, &brief] {
            assert!(!text.contains(secret.as_str()), "a token is stored in plaintext");
        }
    }
    let mut c = catcher.clients().await;
    let revoked = c.journal_of_type("token.revoked").await;
    let actors: Vec<&str> = revoked.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["cli", "token:admin (admin)"], "newest first: {revoked:?}");
    let log = catcher.log_text();
    for secret in [&viewer, &olga, &brief] {
        assert!(!log.contains(secret.as_str()), "a token is in the log");
    }
}

async fn watch_as(catcher: &Catcher, token: &str) -> tonic::Streaming<pb::WatchEvent> {
    let ch = catcher.channel_as(Some(token)).await;
    let mut watch = pb::status_service_client::StatusServiceClient::new(ch)
        .watch(pb::WatchRequest::default())
        .await
        .expect("watch")
        .into_inner();
    // The first message is the snapshot: the stream is open.
    watch.message().await.expect("a snapshot").expect("a snapshot");
    watch
}

/// Reads until the stream ends; its status (OK when it ended cleanly).
async fn ended(watch: &mut tonic::Streaming<pb::WatchEvent>) -> tonic::Status {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => return tonic::Status::ok(""),
            Ok(Err(status)) => return status,
            Err(_) => panic!("the stream stayed open 5 s after its token was revoked"),
        }
    }
}

/// Commands on the catcher's host (`catcher token create`, another process on the same SQLite
/// file) while an agent streams: each waits its turn, none fails, the catcher never stops, and
/// every event is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_commands_and_live_writes_share_the_database() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-busy", &[pb::Capability::Backup]).await;
    let cli = |i: usize| {
        let (url, dir) = (db.url.clone(), db.dir.path().to_owned());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(edgebackup_testkit::bin("catcher"))
                .args(["token", "create", "--name", &format!("busy-{i}"), "--role", "viewer"])
                .env("CATCHER_DATABASE_URL", url)
                .current_dir(dir)
                .output()
                .unwrap()
        })
    };
    let commands: Vec<_> = (0..8).map(cli).collect();
    // Writes keep coming until every host command is done, so they overlap.
    let mut seq = 0;
    while seq < 200 || !commands.iter().all(|c| c.is_finished()) {
        for _ in 0..20 {
            seq += 1;
            let id = uuid::Uuid::now_v7().to_string();
            agent.send(seq, ingest(&id, &format!("/data/{seq}.bin"), 10, "")).await;
        }
        agent.wait_ack(seq).await;
    }
    for c in commands {
        let out = c.await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut c = catcher.clients().await;
    let listed = c
        .packages
        .list_packages(pb::ListPackagesRequest { source_id: "edge-busy".into(), page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.packages.len() as u64, seq.min(1000));
    assert!(!catcher.log_text().contains("group commit failed"), "{}", catcher.log_text());
}
