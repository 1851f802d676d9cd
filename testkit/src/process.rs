//! The one process harness: every test that runs a workspace binary starts it through here, so
//! readiness, logs, signals and restarts are written once.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of a binary built in the same target directory as the running test.
/// `cargo test --workspace` builds every member's binaries before running any test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>; a testkit binary sits in target/<profile>.
    let dir = exe.parent().expect("exe has a directory");
    let dir = if dir.ends_with("deps") { dir.parent().expect("target/<profile>") } else { dir };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build -p {name}` (cargo test --workspace does it)",
        path.display()
    );
    path
}

/// A one-time enrollment token for an agent, with what it needs to recognise the catcher.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub token: String,
    pub ca_fingerprint: String,
    /// The catcher's https URL.
    pub url: String,
}

/// When a started process counts as up.
#[derive(Clone, Debug)]
pub enum Ready {
    /// It printed `<name> listening on ADDR` on stdout; ADDR becomes [`Proc::addr`].
    Listening,
    /// It printed a line starting with this text on stdout.
    Line(String),
    /// As soon as it runs (daemons that serve nothing, e.g. `agent run`).
    Spawned,
}

/// How to start a process: the binary, its arguments and environment. The environment is cleared
/// except PATH and HOME, so nothing from the developer's shell changes what a test sees.
#[derive(Clone, Debug)]
pub struct Spec {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    ready: Ready,
}

impl Spec {
    pub fn new(name: &str, dir: &Path) -> Self {
        Self { name: name.to_owned(), args: Vec::new(), env: Vec::new(), dir: dir.to_owned(), ready: Ready::Listening }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets (or replaces) one environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(self, env: &[(&str, &str)]) -> Self {
        env.iter().fold(self, |s, (k, v)| s.env(k, v))
    }

    pub fn ready(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bin(&self.name));
        cmd.args(&self.args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        if let Ok(home) = std::env::var("HOME") {
            cmd.env("HOME", home);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).current_dir(&self.dir).kill_on_drop(true);
        cmd
    }

    /// Runs to completion (at most `secs`), capturing stdout and stderr.
    pub async fn output(&self, secs: u64) -> Output {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tokio::time::timeout(Duration::from_secs(secs), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{} {:?} did not finish within {secs} s", self.name, self.args))
            .unwrap_or_else(|e| panic!("run {}: {e}", self.name))
    }

    pub async fn start(self) -> Proc {
        let mut p = Proc {
            log: self.dir.join(format!("{}-{}-{}.log", self.name, std::process::id(), next_id())),
            spec: self,
            child: None,
            addr: String::new(),
            stdout: Arc::default(),
        };
        p.spawn().await;
        p
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Lines of stdout kept for the test (the newest; a chatty process cannot grow this without bound).
const STDOUT_LINES: usize = 10_000;

/// A running binary; its stderr goes to [`Proc::log`], its stdout lines are kept.
pub struct Proc {
    spec: Spec,
    child: Option<Child>,
    /// The address it printed in its listening line (empty unless [`Ready::Listening`]).
    pub addr: String,
    pub log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `name` with `args` (which should include `--listen 127.0.0.1:0`) and `env`, and
    /// waits for its listening line.
    pub async fn start(name: &str, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Self {
        Spec::new(name, dir).args(args).envs(env).start().await
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = self.spec.command();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.spec.name));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let wanted = match &self.spec.ready {
            Ready::Listening => Some(format!("{} listening on ", self.spec.name)),
            Ready::Line(prefix) => Some(prefix.clone()),
            Ready::Spawned => None,
        };
        if let Some(prefix) = wanted {
            let stdout = self.stdout.clone();
            let found = tokio::time::timeout(Duration::from_secs(60), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    let hit = line.strip_prefix(&prefix).map(str::to_owned);
                    keep(&stdout, line);
                    if hit.is_some() {
                        return hit;
                    }
                }
                None
            })
            .await;
            match found {
                Ok(Some(rest)) if matches!(self.spec.ready, Ready::Listening) => self.addr = rest,
                Ok(Some(_)) => {}
                _ => panic!("{} did not print {prefix:?} within 60 s; log:\n{}", self.spec.name, self.log_text()),
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        let stdout = self.stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keep(&stdout, line);
            }
        });
        self.child = Some(child);
    }

    /// Runs a subcommand of this process's binary (e.g. `catcher token create …`) as this
    /// process runs (its arguments, environment and directory); its stdout, or why it failed.
    pub fn cli(&self, subcommand: &[&str]) -> Result<String, String> {
        let mut cmd = std::process::Command::new(bin(&self.spec.name));
        cmd.args(subcommand).args(&self.spec.args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.envs(self.spec.env.iter().map(|(k, v)| (k, v))).current_dir(&self.spec.dir);
        let out = cmd.output().map_err(|e| format!("run {}: {e}", self.spec.name))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{} {subcommand:?} failed: {text}{}",
                self.spec.name,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text)
    }

    /// For a catcher: a person's token with `role` from `catcher token create`.
    pub fn person_token(&self, name: &str, role: &str) -> Result<String, String> {
        let text = self.cli(&["token", "create", "--name", name, "--role", role])?;
        let token = text.lines().map(str::trim).find(|l| l.starts_with("ebk_token_"));
        token.map(str::to_owned).ok_or_else(|| format!("no token printed: {text}"))
    }

    /// For a catcher: a one-time enrollment token for `source_id` (and the CA fingerprint an
    /// agent pins), from `catcher enroll` run as this process runs, against its database.
    pub fn enrollment(&self, source_id: &str, mover: bool) -> Enrollment {
        let mut args = vec!["enroll", "--source", source_id];
        if mover {
            args.push("--mover");
        }
        let text = self.cli(&args).unwrap_or_else(|e| panic!("{e}"));
        let token = text.lines().map(str::trim).find(|l| l.starts_with("ebk_enroll_")).expect("a token printed");
        let fingerprint = text
            .lines()
            .find_map(|l| l.strip_prefix("Catcher CA fingerprint (SHA-256): "))
            .expect("the fingerprint printed");
        Enrollment { token: token.to_owned(), ca_fingerprint: fingerprint.trim().to_owned(), url: self.tls_url() }
    }

    /// TOML lines that make an agent enroll with this catcher as `source_id` on its first start.
    pub fn agent_toml(&self, source_id: &str, mover: bool) -> String {
        let e = self.enrollment(source_id, mover);
        format!(
            "catcher_url = \"{}\"\ntoken = \"{}\"\ncatcher_ca_fingerprint = \"{}\"\n",
            e.url, e.token, e.ca_fingerprint
        )
    }

    /// For a catcher: the admin token it wrote to `data/admin.token` on its first start.
    pub fn admin_token(&self) -> String {
        let path = self.spec.dir.join("data/admin.token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the catcher writes it on its first start)", path.display()))
            .trim()
            .to_owned()
    }

    /// For a catcher: a plaintext loopback channel whose calls carry the admin token.
    pub async fn admin_channel(&self) -> Result<edgebackup_common::client::PersonChannel, String> {
        self.channel_as(&self.admin_token()).await
    }

    /// A channel to a catcher whose calls carry a person's `token`.
    pub async fn channel_as(&self, token: &str) -> Result<edgebackup_common::client::PersonChannel, String> {
        let ch = tonic::transport::Channel::from_shared(self.url())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        edgebackup_common::client::as_person(ch, Some(token))
    }

    /// The TLS URL of a catcher (agents connect there).
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Sends a signal by name (TERM, INT, STOP, CONT, …).
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().unwrap_or_else(|| panic!("{} is not running", self.spec.name)).to_string();
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill");
        }
    }

    /// Waits for the process to exit on its own, for at most `secs`.
    pub async fn wait(&mut self, secs: u64) -> ExitStatus {
        let mut c = self.child.take().unwrap_or_else(|| panic!("{} is not running", self.spec.name));
        match tokio::time::timeout(Duration::from_secs(secs), c.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("{} did not exit within {secs} s; log:\n{}", self.spec.name, self.log_text()),
        }
    }

    /// Sends `signal` and waits (at most `secs`) for the exit.
    pub async fn stop(&mut self, signal: &str, secs: u64) -> ExitStatus {
        self.signal(signal);
        self.wait(secs).await
    }

    /// SIGTERM, as an operator or init system stops it; waits up to 60 s.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.stop("TERM", 60).await
    }

    /// Kills it and starts it again with the same settings on a new ephemeral port.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.set_listen("127.0.0.1:0");
        self.spawn().await;
    }

    /// Kills it and starts it again listening on the same address as before.
    pub async fn restart_same_port(&mut self) {
        self.kill().await;
        let addr = self.addr.clone();
        self.set_listen(&addr);
        // The old socket may linger briefly; retry the bind for a few seconds.
        for _ in 0..50 {
            if std::net::TcpListener::bind(&addr).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.spawn().await;
    }

    fn set_listen(&mut self, addr: &str) {
        let args = &mut self.spec.args;
        match args.iter().position(|a| a == "--listen") {
            Some(i) if i + 1 < args.len() => args[i + 1] = addr.to_owned(),
            _ => args.extend(["--listen".to_owned(), addr.to_owned()]),
        }
    }
}

fn keep(lines: &Mutex<Vec<String>>, line: String) {
    let mut lines = lines.lock().expect("stdout lines");
    if lines.len() == STDOUT_LINES {
        lines.remove(0);
    }
    lines.push(line);
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ({}) ----\n{}", self.spec.name, self.log.display(), self.log_text());
        }
    }
}
