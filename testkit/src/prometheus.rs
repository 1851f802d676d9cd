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

/// The metric names the Grafana dashboard in deploy/grafana reads (its `metric-names.txt`,
/// checked against every `expr` of the dashboard) that start with `prefix`.
pub fn dashboard_names(prefix: &str) -> Vec<String> {
    let grafana = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana");
    let listed = std::fs::read_to_string(grafana.join("metric-names.txt")).expect("deploy/grafana/metric-names.txt");
    let listed: std::collections::BTreeSet<String> =
        listed.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(grafana.join("edge-backup.json")).expect("deploy/grafana/edge-backup.json"),
    )
    .expect("the dashboard is JSON");
    let mut used = std::collections::BTreeSet::new();
    collect_exprs(&dashboard, &mut used);
    assert_eq!(used, listed, "metric-names.txt lists exactly the names the dashboard's expressions read");
    listed.into_iter().filter(|n| n.starts_with(prefix)).collect()
}

fn collect_exprs(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => out.extend(metric_names(expr)),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

/// `edgebackup_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("edgebackup_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

/// Whether the exposition `body` has the metric `name` (a sample, or a family whose samples
/// get that suffix: `_total`, `_bucket`, `_sum`, `_count`; a labelled family may have none yet).
pub fn exposes(body: &str, name: &str) -> bool {
    body.lines().any(|l| {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let family = rest.split_whitespace().next().unwrap_or("");
            ["", "_total", "_bucket", "_sum", "_count"].iter().any(|s| format!("{family}{s}") == name)
        } else {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])
        }
    })
}
