//! The README's first command: everything starts, data flows to the dashboard, Ctrl-C stops
//! it all cleanly, and a second run reuses the data.

use edgebackup_testkit::{Proc, Ready, Spec};

struct Running {
    proc: Proc,
    dashboard: String,
    catcher: String,
    /// The admin token file the demo's catcher wrote.
    token_file: String,
}

/// Starts the demo and reads the URLs it prints before "Ctrl-C stops everything".
async fn start(dir: &std::path::Path) -> Running {
    let proc = Spec::new("edge-demo", dir)
        .args(["--dir", dir.to_str().unwrap(), "--dashboard", "127.0.0.1:0", "--catcher", "127.0.0.1:0"])
        .args(["--new-file-every", "1"])
        .ready(Ready::Line("Ctrl-C".into()))
        .start()
        .await;
    let (mut dashboard, mut catcher) = (String::new(), String::new());
    for line in proc.stdout() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["dashboard", url, ..] => dashboard = (*url).to_owned(),
            ["catcher", url, ..] => catcher = url.to_string(),
            _ => {}
        }
    }
    assert!(!dashboard.is_empty() && !catcher.is_empty(), "the demo prints both URLs: {:?}", proc.stdout());
    // One clickable link that signs the admin in: the token in the fragment (never sent to a server).
    let token_file = dir.join("catcher-data/admin.token");
    let token = std::fs::read_to_string(&token_file).expect("the admin token file").trim().to_owned();
    let (base, fragment) = dashboard.split_once("/login#token=").expect("a login link");
    assert_eq!(fragment, token, "the link carries the admin token");
    let dashboard = base.to_owned();
    Running { proc, dashboard, catcher, token_file: token_file.display().to_string() }
}

async fn status_json(run: &Running) -> Option<serde_json::Value> {
    let out = Spec::new("catcher", &std::env::temp_dir())
        .args(["status", "--format", "json", "--catcher", &run.catcher, "--token-file", &run.token_file])
        .output(30)
        .await;
    serde_json::from_slice(&out.stdout).ok()
}

fn completed(v: &serde_json::Value) -> Option<u64> {
    v.pointer("/statuses/completed").and_then(|c| c.as_u64())
}

/// Ctrl-C, as a person stops it.
async fn stop(mut r: Running) {
    let status = r.proc.stop("INT", 30).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_stops_and_resumes_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path()).await;
    let first = edgebackup_testkit::eventually("the demo to complete its first packages", 60, || async {
        let v = status_json(&run).await?;
        completed(&v).filter(|n| *n >= 2)
    })
    .await;
    assert_real_dashboard(&run.dashboard).await;
    stop(run).await;

    let run = start(dir.path()).await;
    let again = edgebackup_testkit::eventually("completed packages after the demo restart", 30, || async {
        completed(&status_json(&run).await?)
    })
    .await;
    assert!(again >= first, "a second run keeps the data ({again} < {first})");
    stop(run).await;
}

/// The built dashboard is served, not the placeholder of a gateway built without it: the page
/// loads its bundled script, and that script is the app (it speaks grpc-web to the catcher).
async fn assert_real_dashboard(base: &str) {
    let page = get(base, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "the dashboard answers: {page:.300}");
    assert!(!page.contains("built without the dashboard"), "the real dashboard, not the placeholder: {page:.400}");
    assert!(page.contains("<title>Edge Backup</title>") && page.contains(r#"<div id="app">"#), "{page:.600}");
    let script = page
        .split(r#"src=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|src| src.trim_start_matches('.'))
        .find(|src| src.starts_with("/assets/") && src.ends_with(".js"))
        .unwrap_or_else(|| panic!("the page loads a bundled script: {page:.800}"));
    let js = get(base, script).await;
    assert!(js.starts_with("HTTP/1.1 200"), "{script} is served: {js:.300}");
    let head = js.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    assert!(head.lines().any(|l| l.starts_with("content-type:") && l.contains("javascript")), "{script}: {head}");
    assert!(js.contains("application/grpc-web"), "{script} is the dashboard app (it speaks grpc-web)");
}

/// A plain HTTP/1 GET without extra dependencies; the whole response, head and body.
async fn get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
