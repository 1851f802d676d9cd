//! `/metrics`: the Prometheus exposition read by a real parser (Python's prometheus_client),
//! its values checked against the API's after a scenario; a non-loopback address is refused.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::Spec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::agent::{ScriptedAgent, complete, ingest, progress};
use crate::harness::{Catcher, Db, TestDb, eventually};

/// The parser Prometheus users script with: every sample as `name{k="v",…}` → value.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;

/// GET /metrics over a plain HTTP/1.1 connection: (content type, body).
async fn scrape(addr: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to metrics_listen");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (content_type, body.to_owned())
}

/// The samples, parsed by prometheus_client (a missing module fails the test).
fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut child = std::process::Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required (with prometheus_client: pip install prometheus-client)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_match_the_api() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start_with(&db, &[("CATCHER_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let addr = eventually("the metrics address in the log", 10, || async {
        let log = catcher.log_text();
        let line = log.lines().find(|l| l.contains("metrics served at /metrics"))?.to_owned();
        Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_owned())
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

    let (content_type, body) = scrape(&addr).await;
    assert!(content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"), "{content_type}");
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
