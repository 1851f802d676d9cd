//! Real receivers for notifications: an HTTP server that records what is POSTed to it (and can
//! go down and come back on the same port, or answer with errors), and Python's aiosmtpd as an
//! SMTP server with STARTTLS and AUTH required (`scripts/smtp_receiver.py`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

/// One request the HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub idempotency_key: String,
    pub content_type: String,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    got: Vec<Received>,
    /// Answer with this status instead of 200 (and still record).
    fail_with: Option<u16>,
}

/// An HTTP server on a loopback port that records every POST.
pub struct HttpReceiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<CancellationToken>,
}

async fn record(State(shared): State<Arc<Mutex<Shared>>>, uri: Uri, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    s.got.push(Received {
        path: uri.path().to_owned(),
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    });
    s.fail_with.map_or(StatusCode::OK, |c| StatusCode::from_u16(c).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

impl HttpReceiver {
    /// Listening on a fresh loopback port.
    pub async fn start() -> Self {
        let mut r = Self::reserved().await;
        r.up().await;
        r
    }

    /// A port reserved for the receiver, not listening yet (a receiver that is down).
    pub async fn reserved() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = l.local_addr().expect("its address");
        drop(l);
        Self { addr, shared: Arc::default(), stop: None }
    }

    /// Starts listening on its port (again).
    pub async fn up(&mut self) {
        assert!(self.stop.is_none(), "the receiver is already up");
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("bind the receiver's port");
        let stop = CancellationToken::new();
        let app = axum::Router::new().fallback(record).with_state(self.shared.clone());
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { until.cancelled().await }).await;
        });
        self.stop = Some(stop);
    }

    /// Stops listening: connections are refused until `up`.
    pub async fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
            // The listener is dropped once the server task sees the cancellation.
            for _ in 0..50 {
                if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Answer every request with `status` (None: 200 again).
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).fail_with = status;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn got(&self) -> Vec<Received> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).got.clone()
    }
}

/// One message the SMTP receiver accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The whole message, headers included.
    pub data: String,
    /// It came after STARTTLS.
    pub tls: bool,
    pub authenticated: bool,
}

/// aiosmtpd on a loopback port: STARTTLS with `cert`/`key`, AUTH as `user`/`password`.
pub struct SmtpReceiver {
    pub port: u16,
    out: PathBuf,
    child: tokio::process::Child,
}

impl SmtpReceiver {
    /// Starts it (fails the test when Python or aiosmtpd is missing: `.ci/run` installs them).
    pub async fn start(dir: &Path, cert: &Path, key: &Path, user: &str, password: &str) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
            l.local_addr().expect("its address").port()
        };
        let out = dir.join("smtp-received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp_receiver.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--user", user, "--password", password])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs (the SMTP receiver needs python3 with aiosmtpd: pip install aiosmtpd)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line.starts_with("listening on") => {}
            other => panic!(
                "the SMTP receiver did not start ({other:?}); it needs python3 with aiosmtpd (pip install aiosmtpd)"
            ),
        }
        Self { port, out, child }
    }

    /// Messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
