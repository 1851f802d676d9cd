//! A catcher process, agent processes with generated configs, and helpers to inspect both.

use std::path::{Path, PathBuf};

use edgebackup_common::client::PersonChannel;
use edgebackup_proto::v1 as pb;
use edgebackup_testkit::{Proc, Ready, Spec, eventually};
use pb::{
    journal_service_client::JournalServiceClient, package_service_client::PackageServiceClient,
    source_service_client::SourceServiceClient,
};

/// A temp dir holding a catcher database, watched data, stations and agent state.
pub struct World {
    // Dropped before `dir`, so a failing test's catcher log is printed before its file is gone.
    pub catcher: Proc,
    /// More catcher replicas on the same (PostgreSQL) database, sharing the directory's CA.
    pub replicas: Vec<Proc>,
    /// The PostgreSQL database of replicas (held so that it is dropped after them).
    _db: Option<edgebackup_testkit::db::TestDb>,
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> Self {
        Self::with_catcher_config("").await
    }

    /// A catcher with extra TOML configuration (e.g. [[stations]]).
    pub async fn with_catcher_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
        let config = dir.path().join("catcher.toml");
        std::fs::write(&config, toml.replace("$DIR", &dir.path().display().to_string())).unwrap();
        let catcher = Proc::start(
            "catcher",
            &["--listen", "127.0.0.1:0", "--database-url", &db, "--config", config.to_str().unwrap()],
            &[("CATCHER_HEARTBEAT_INTERVAL_SECS", "1"), ("CATCHER_COMMAND_LEASE_SECS", "5")],
            dir.path(),
        )
        .await;
        Self { dir, catcher, replicas: Vec::new(), _db: None }
    }

    /// `n` catcher replicas on one fresh PostgreSQL database (the first is `catcher`), with a
    /// short singleton lease and replica timeout.
    pub async fn replicas(n: usize) -> Self {
        use edgebackup_testkit::db::{Db, TestDb};
        let db = TestDb::new(Db::Postgres).await;
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CATCHER_HEARTBEAT_INTERVAL_SECS", "1"),
            ("CATCHER_COMMAND_LEASE_SECS", "5"),
            ("CATCHER_LEASE_TTL_SECS", "3"),
            ("CATCHER_REPLICA_TIMEOUT_SECS", "4"),
        ];
        let args = ["--listen", "127.0.0.1:0", "--database-url", db.url.as_str()];
        let catcher = Proc::start("catcher", &args, &env, dir.path()).await;
        let mut replicas = Vec::new();
        for _ in 1..n {
            replicas.push(Proc::start("catcher", &args, &env, dir.path()).await);
        }
        Self { dir, catcher, replicas, _db: Some(db) }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    /// Writes an agent config; `stations` and `extra` are TOML fragments.
    pub fn agent_config(&self, name: &str, source_id: &str, stations: &str, extra: &str) -> PathBuf {
        let data = self.path(&format!("{name}-data/"));
        std::fs::create_dir_all(&data).unwrap();
        let text = format!(
            "source_id = \"{source_id}\"\n{}state_dir = \"{}\"\nmax_backoff_secs = 1\nlog_level = \"info,agent=debug\"\n{extra}\n\
             [schedule]\ninterval_secs = 2\ndebounce_ms = 300\n\n[[folders]]\npath = \"{}\"\npackage_type = \"user_data\"\nexcludes = [\"*.tmp\"]\n\n{stations}",
            self.catcher.agent_toml(source_id, extra.contains("mover = true")),
            self.path(&format!("{name}-state/")).display(),
            data.display(),
        );
        let path = self.path(&format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}-data"))
    }

    pub fn local_station(&self, id: &str) -> String {
        let dir = self.path(&format!("stations/{id}/"));
        format!("[[stations]]\nid = \"{id}\"\nkind = \"local\"\nuri = \"{}\"\n", dir.display())
    }

    /// A channel to the catcher whose calls carry the admin token.
    pub async fn channel(&self) -> PersonChannel {
        self.catcher.admin_channel().await.unwrap()
    }

    pub async fn packages(&self, source_id: &str) -> Vec<pb::Package> {
        let Ok(ch) = self.catcher.admin_channel().await else { return Vec::new() };
        let request = pb::ListPackagesRequest { source_id: source_id.into(), page_size: 1000, ..Default::default() };
        match PackageServiceClient::new(ch).list_packages(request).await {
            Ok(r) => r.into_inner().packages,
            Err(_) => Vec::new(),
        }
    }

    pub async fn package(&self, id: &str) -> pb::Package {
        let request = pb::GetPackageRequest { package_id: id.into(), ..Default::default() };
        PackageServiceClient::new(self.channel().await).get_package(request).await.unwrap().into_inner()
    }

    pub async fn source(&self, id: &str) -> pb::Source {
        let request = pb::GetSourceRequest { source_id: id.into() };
        SourceServiceClient::new(self.channel().await).get_source(request).await.unwrap().into_inner()
    }

    /// Whether the source is registered and its agent connected now.
    pub async fn connected(&self, id: &str) -> bool {
        let request = pb::GetSourceRequest { source_id: id.into() };
        let Ok(ch) = self.catcher.admin_channel().await else { return false };
        SourceServiceClient::new(ch).get_source(request).await.is_ok_and(|s| s.into_inner().connected)
    }

    pub async fn journal(&self, event_type: &str) -> Vec<pb::JournalEvent> {
        let request = pb::QueryJournalRequest { event_type: event_type.into(), limit: 1000, ..Default::default() };
        JournalServiceClient::new(self.channel().await).query_journal(request).await.unwrap().into_inner().events
    }

    /// Queues a command and waits for the agent's answer.
    pub async fn command(&self, source_id: &str, kind: pb::CommandKind, package_id: &str) -> pb::CommandInfo {
        self.command_with(source_id, kind, package_id, None).await
    }

    /// Queues a command with arguments and waits for the agent's answer.
    pub async fn command_with(
        &self,
        source_id: &str,
        kind: pb::CommandKind,
        package_id: &str,
        args: Option<pb::command_args::Kind>,
    ) -> pb::CommandInfo {
        let mut c = SourceServiceClient::new(self.channel().await);
        let request = pb::CreateCommandRequest {
            source_id: source_id.into(),
            kind: kind as i32,
            package_id: package_id.into(),
            args: args.map(|kind| pb::CommandArgs { kind: Some(kind) }),
        };
        let id = c.create_command(request).await.unwrap().into_inner().command.unwrap().command_id;
        eventually("the agent's answer to the command", 120, || {
            let mut c = c.clone();
            let id = id.clone();
            let source_id = source_id.to_owned();
            async move {
                let request = pb::ListCommandsRequest { source_id, ..Default::default() };
                let list = c.list_commands(request).await.ok()?.into_inner().commands;
                list.into_iter().find(|i| {
                    i.command.as_ref().is_some_and(|c| c.command_id == id)
                        && (i.state == pb::CommandState::Succeeded as i32 || i.state == pb::CommandState::Failed as i32)
                })
            }
        })
        .await
    }

    /// Waits until `n` packages of the source are completed; returns them.
    pub async fn completed(&self, source_id: &str, n: usize, secs: u64) -> Vec<pb::Package> {
        eventually("the completed packages", secs, || async {
            let all = self.packages(source_id).await;
            let done: Vec<_> = all.into_iter().filter(|p| p.status == pb::PackageStatus::Completed as i32).collect();
            (done.len() >= n).then_some(done)
        })
        .await
    }
}

impl World {
    /// Waits until `agent restore` of the source's current state (with `config`) gives back
    /// exactly `data` as it is now.
    pub async fn restores_exactly(&self, config: &Path, data: &Path, secs: u64) {
        let want = tree(data);
        let mut attempt = 0;
        eventually("a restore equal to the folder", secs, || {
            attempt += 1;
            let out = self.path(&format!("restored-{attempt}/"));
            let want = want.clone();
            let folder = out.join(data.to_string_lossy().trim_start_matches('/'));
            async move {
                let (code, _, _) = agent_fn(config, &["restore", "--to", out.to_str().unwrap()]).await;
                (code == 0 && tree(&folder) == want).then_some(())
            }
        })
        .await;
    }
}

/// A running `agent run` (the testkit's one process harness).
pub struct Agent {
    proc: Proc,
}

impl Agent {
    pub async fn start(config: &Path) -> Self {
        Self::start_with(config, &[]).await
    }

    /// Starts with extra `AGENT_*` settings.
    pub async fn start_with(config: &Path, env: &[(&str, &str)]) -> Self {
        Self { proc: agent(config).args(["run"]).envs(env).ready(Ready::Spawned).start().await }
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub async fn kill(&mut self) {
        self.proc.kill().await;
    }

    /// Passes the daemon has finished so far, read from its log (`agent=debug` logs the empty ones).
    pub fn passes(&self) -> usize {
        let log = self.log_text();
        log.matches("pass done").count() + log.matches("pass found nothing to back up").count()
    }

    /// Passes that found uploads held (panic brake or pause).
    pub fn held_passes(&self) -> usize {
        self.log_text().lines().filter(|l| l.contains("pass done") && l.contains("held=Some")).count()
    }

    /// Waits until `count()` exceeds `since` by `n`: proof that the daemon looked again.
    pub async fn await_more(&self, what: &str, count: impl Fn(&Self) -> usize, since: usize, n: usize) {
        eventually(what, 60, || async { (count(self) >= since + n).then_some(()) }).await;
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.proc.terminate().await
    }
}

/// `agent --config CONFIG`, run from the config's directory.
pub fn agent(config: &Path) -> Spec {
    let dir = config.parent().expect("config has a directory");
    Spec::new("agent", dir).args([std::ffi::OsStr::new("--config"), config.as_os_str()].map(|a| a.to_string_lossy()))
}

/// Runs an agent subcommand to completion: (exit code, stdout, stderr).
pub async fn agent_fn(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = agent(config).args(args).output(300).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` (relative path → contents), skipping the agent's canary.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel != ".edgebackup-canary" {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    out
}

/// Copies the seed's mock-data fixture into `dest`.
pub fn copy_fixture(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catcher/tests/fixtures/mock-data");
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let target = dest.join(p.strip_prefix(&src).unwrap());
            if p.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                stack.push(p);
            } else {
                std::fs::copy(&p, &target).unwrap();
            }
        }
    }
}

/// `n` bytes of incompressible data.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

pub fn sha256_file(path: &Path) -> String {
    agent::archive::sha256_of(std::fs::File::open(path).unwrap()).unwrap().0
}
