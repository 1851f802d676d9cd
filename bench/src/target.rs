//! Where the load goes: only a catcher on a loopback address, either given by URL or started by
//! this tool (which then also knows its pid and how long it took to serve).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use edgebackup_common::client::{PersonChannel, as_person};
use edgebackup_proto::v1 as pb;
use pb::status_service_client::StatusServiceClient;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::transport::Endpoint;

/// Accepts `http://HOST:PORT` where HOST is a loopback address or `localhost`; returns the URL and port.
pub fn loopback_url(url: &str) -> anyhow::Result<(String, u16)> {
    let uri: tonic::codegen::http::Uri = url.parse().with_context(|| format!("--catcher: {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--catcher: {url:?} must start with http:// (the load generator talks plain HTTP/2 on loopback)");
    }
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "--catcher: {host} is not a loopback address; this tool only loads a catcher on 127.0.0.0/8, ::1 or localhost"
        );
    }
    let Some(port) = uri.port_u16() else { bail!("--catcher: {url:?} has no port") };
    Ok((format!("http://{host}:{port}"), port))
}

/// A channel that connects when first used; its calls carry `token` (a person's, e.g. the
/// catcher's first admin token).
pub fn channel(url: &str, token: Option<&str>) -> anyhow::Result<PersonChannel> {
    let ch = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect_lazy();
    as_person(ch, token).map_err(anyhow::Error::msg)
}

/// The token for a catcher this tool did not start: CATCHER_TOKEN, else `./data/admin.token`
/// (on the catcher's host), as `catcher status` finds it.
pub fn token_for_external() -> anyhow::Result<Option<String>> {
    edgebackup_common::client::person_token(None, Path::new("data/admin.token")).map_err(anyhow::Error::msg)
}

/// Waits until `GetStatus` answers (for at most `within`).
pub async fn wait_serving(url: &str, token: Option<&str>, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let attempt = async {
            let ch = Endpoint::from_shared(url.to_owned())?.connect().await?;
            let ch = as_person(ch, token).map_err(anyhow::Error::msg)?;
            StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await?;
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("the catcher at {url} did not answer GetStatus within {within:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// How a catcher this tool started came up.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Startup {
    /// Spawn → `catcher listening on` printed.
    pub listening_ms: f64,
    /// Spawn → the first `GetStatus` answered (migrations, bootstrap and the first status done).
    pub serving_ms: f64,
    pub log: PathBuf,
}

/// A catcher process started by this tool; killed when dropped.
pub struct SpawnedCatcher {
    child: tokio::process::Child,
    pub url: String,
    pub port: u16,
    pub pid: u32,
    pub startup: Startup,
    /// The admin token it wrote on its first start.
    pub admin_token: String,
    bin: PathBuf,
    db: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl SpawnedCatcher {
    /// Starts `bin --listen 127.0.0.1:0` on `database_url` (a fresh temp SQLite file when None),
    /// with `env` on top of `CATCHER_LOG_LEVEL=warn`.
    pub async fn start(
        bin: &Path,
        database_url: Option<&str>,
        env: &[(String, String)],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("create a temp dir for the catcher")?;
        let db = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display()),
        };
        let log = log.map_or_else(|| dir.path().join("catcher.log"), Path::to_path_buf);
        let data = dir.path().join("data");
        let (child, addr, startup) = launch(bin, &db, env, &log, &data, "127.0.0.1:0").await?;
        let (url, port) = loopback_url(&format!("http://{addr}"))?;
        let token_file = data.join("admin.token");
        let admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("{} (the catcher writes it on its first start)", token_file.display()))?
            .trim()
            .to_owned();
        let pid = child.id().context("the catcher exited at once")?;
        let mut c = Self {
            child,
            url,
            port,
            pid,
            startup,
            admin_token,
            bin: bin.to_path_buf(),
            db,
            env: env.to_vec(),
            log,
            data,
            _dir: Some(dir),
        };
        c.startup.serving_ms = c.serving(Instant::now(), c.startup.listening_ms).await?;
        Ok(c)
    }

    /// Waits until it answers GetStatus; the time since `started`, plus `before` ms, in ms.
    async fn serving(&self, started: Instant, before: f64) -> anyhow::Result<f64> {
        wait_serving(&self.url, Some(&self.admin_token), Duration::from_secs(300)).await?;
        Ok(before + started.elapsed().as_secs_f64() * 1000.0)
    }

    /// SIGKILL, then the same binary, database and data directory on the same port; returns once
    /// it serves again (its new start-up times replace the old).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill().await;
        let listen = format!("127.0.0.1:{}", self.port);
        // The old socket may linger for a moment.
        let mut tries = 0;
        let (child, _, startup) = loop {
            match launch(&self.bin, &self.db, &self.env, &self.log, &self.data, &listen).await {
                Ok(v) => break v,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.pid = child.id().context("the catcher exited at once")?;
        self.child = child;
        self.startup = startup;
        self.startup.serving_ms = self.serving(Instant::now(), self.startup.listening_ms).await?;
        Ok(())
    }

    /// SIGKILL and wait.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts the catcher on `listen`; waits for its listening line.
async fn launch(
    bin: &Path,
    db: &str,
    env: &[(String, String)],
    log: &Path,
    data: &Path,
    listen: &str,
) -> anyhow::Result<(tokio::process::Child, String, Startup)> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .args(["--listen", listen, "--database-url", db])
        .env("CATCHER_LOG_LEVEL", "warn")
        // Its CA and first admin token live with it, not in this tool's working directory.
        .env("CATCHER_DATA_DIR", data)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let stdout = child.stdout.take().context("catcher stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("catcher listening on ") {
                return Some(addr.to_owned());
            }
        }
        None
    })
    .await;
    let Ok(Some(addr)) = addr else {
        let _ = child.kill().await;
        bail!(
            "the catcher did not start listening on {listen} within 120 s; log {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    let listening_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr, Startup { listening_ms, serving_ms: listening_ms, log: log.to_path_buf() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        let ok = |u: &str| loopback_url(u).map_err(|e| e.to_string());
        assert_eq!(ok("http://127.0.0.1:50051").unwrap(), ("http://127.0.0.1:50051".into(), 50051));
        assert_eq!(ok("http://127.3.4.5:1/").unwrap().1, 1);
        assert_eq!(ok("http://localhost:8080").unwrap().1, 8080);
        assert_eq!(ok("http://[::1]:9").unwrap().0, "http://[::1]:9");
        for bad in
            ["http://10.0.0.1:50051", "http://example.com:80", "https://127.0.0.1:1", "127.0.0.1:1", "http://127.0.0.1"]
        {
            assert!(ok(bad).is_err(), "{bad} accepted");
        }
        assert!(ok("http://192.168.1.1:1").unwrap_err().contains("not a loopback address"));
    }
}
