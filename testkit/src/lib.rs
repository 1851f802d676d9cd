//! Test support shared by the packages' integration tests: locate the workspace's built
//! binaries and run them as real processes on ephemeral loopback ports, wait for conditions,
//! and make test databases.

pub mod db;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of a binary built in the same target directory as the running test.
/// `cargo test --workspace` builds every member's binaries before running any test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build -p {name}` (cargo test --workspace does it)",
        path.display()
    );
    path
}

/// A running binary that prints `<name> listening on ADDR` on stdout once it serves.
pub struct Proc {
    name: String,
    child: Option<Child>,
    pub addr: String,
    pub log: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Proc {
    /// Starts `name` from the target directory with `args` (which should include `--listen 127.0.0.1:0`)
    /// and `env` (on top of PATH only); its stderr goes to `dir/<name>-N.log`.
    pub async fn start(name: &str, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Self {
        let mut p = Self {
            name: name.to_owned(),
            child: None,
            addr: String::new(),
            log: dir.join(format!("{name}-{}.log", std::process::id())),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            dir: dir.to_owned(),
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(bin(&self.name));
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let prefix = format!("{} listening on ", self.name);
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix(&prefix) {
                    return Some(addr.to_owned());
                }
            }
            None
        })
        .await;
        let addr = match addr {
            Ok(Some(addr)) => addr,
            _ => panic!("{} did not start listening; log:\n{}", self.name, self.log_text()),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill");
        }
    }

    /// Starts again with the same settings, listening on the same address as before.
    pub async fn restart_same_port(&mut self) {
        self.kill().await;
        let addr = self.addr.clone();
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args[i + 1] = addr.clone();
        } else {
            self.args.extend(["--listen".to_owned(), addr.clone()]);
        }
        // The old socket may linger briefly; retry the bind for a few seconds.
        for _ in 0..50 {
            if std::net::TcpListener::bind(&addr).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.spawn().await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ({}) ----\n{}", self.name, self.log.display(), self.log_text());
        }
    }
}

/// Polls `f` until it returns Some, for up to `secs` seconds; gives up naming `what` it awaited.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} was not met within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
