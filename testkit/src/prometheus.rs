//! Reading a `/metrics` endpoint as Prometheus would: a plain HTTP/1.1 GET, and the samples
//! parsed by a real parser (Python's `prometheus_client`; its absence fails the test).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every sample as `name{k="v",…}` (labels sorted) → value, as JSON (NaN and ±Infinity as
/// JSON numbers would be refused: the metrics tested have finite values).
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

/// GET /metrics at `addr`: (content type, body). Panics unless the answer is 200.
pub async fn scrape(addr: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to the metrics address");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send the request");
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (content_type, body.to_owned())
}

/// The samples of `body`, parsed by prometheus_client.
pub fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut child = std::process::Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required (with prometheus_client: pip install prometheus-client)");
    child.stdin.take().expect("piped").write_all(body.as_bytes()).expect("feed the parser");
    let out = child.wait_with_output().expect("the parser ran");
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// The address a process logged as `addr=HOST:PORT` on the line with `marker`.
pub fn logged_addr(log: &str, marker: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains(marker))?;
    Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_owned())
}
