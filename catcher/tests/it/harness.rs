//! Test harness: runs the real `catcher` binary on an ephemeral port against a fresh database.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use pb::{
    journal_service_client::JournalServiceClient, package_service_client::PackageServiceClient,
    policy_service_client::PolicyServiceClient, source_service_client::SourceServiceClient,
    status_service_client::StatusServiceClient,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

pub use edgebackup_testkit::db::{Db, TestDb};

/// A running catcher process.
pub struct Catcher {
    child: Option<Child>,
    pub addr: String,
    pub log: PathBuf,
    db_url: String,
    extra_env: Vec<(String, String)>,
}

impl Catcher {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts with extra `CATCHER_*` settings.
    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let log = db.dir.path().join(format!("catcher-{}.log", uuid::Uuid::now_v7().simple()));
        let extra_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = Self { child: None, addr: String::new(), log, db_url: db.url.clone(), extra_env };
        c.spawn().await;
        c
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catcher"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CATCHER_DATABASE_URL", &self.db_url)
            .env("CATCHER_LOG_LEVEL", "info")
            .env("CATCHER_SCHEDULER_INTERVAL_MS", "200")
            .env("CATCHER_HEARTBEAT_INTERVAL_SECS", "1")
            .env("CATCHER_AGENT_TIMEOUT_SECS", "5")
            .env("CATCHER_COMMAND_LEASE_SECS", "2")
            .current_dir(log_dir(&self.log))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn catcher");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix("catcher listening on ") {
                    return addr.to_owned();
                }
            }
            panic!("catcher exited before listening; log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        })
        .await
        .expect("catcher did not start within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.child = Some(child);
        // Wait until the server answers (the listener is bound before the router runs).
        for _ in 0..100 {
            if let Ok(ch) = Channel::from_shared(self.url()).unwrap().connect().await
                && StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("catcher at {} never answered; log:\n{}", self.addr, self.log_text());
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.expect("connect to catcher")
    }

    pub async fn clients(&self) -> Clients {
        let ch = self.channel().await;
        Clients {
            packages: PackageServiceClient::new(ch.clone()),
            sources: SourceServiceClient::new(ch.clone()),
            policy: PolicyServiceClient::new(ch.clone()),
            journal: JournalServiceClient::new(ch.clone()),
            status: StatusServiceClient::new(ch),
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill catcher");
        }
    }

    /// SIGTERM, then wait; returns the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id().expect("pid").to_string();
        let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(ok.success());
        tokio::time::timeout(Duration::from_secs(20), c.wait())
            .await
            .expect("catcher stops within 20 s after SIGTERM")
            .expect("wait")
    }

    /// Starts again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

fn log_dir(log: &std::path::Path) -> PathBuf {
    log.parent().expect("log has a directory").to_path_buf()
}

impl Drop for Catcher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- catcher log ({}) ----\n{}", self.log.display(), self.log_text());
        }
    }
}

/// Generated clients on one channel.
pub struct Clients {
    pub packages: PackageServiceClient<Channel>,
    pub sources: SourceServiceClient<Channel>,
    pub policy: PolicyServiceClient<Channel>,
    pub journal: JournalServiceClient<Channel>,
    pub status: StatusServiceClient<Channel>,
}

impl Clients {
    /// Journal events of one type, oldest first.
    pub async fn journal_of_type(&mut self, event_type: &str) -> Vec<pb::JournalEvent> {
        let request = pb::QueryJournalRequest { event_type: event_type.into(), limit: 1000, ..Default::default() };
        self.journal.query_journal(request).await.unwrap().into_inner().events
    }

    pub async fn snapshot_count(&mut self) -> usize {
        let request = pb::ListConfigSnapshotsRequest::default();
        self.policy.list_config_snapshots(request).await.unwrap().into_inner().snapshots.len()
    }

    pub async fn update_rules(&mut self, rule_set: pb::RuleSet) -> Result<pb::RuleSet, tonic::Status> {
        let request = pb::UpdateRuleSetRequest { rule_set: Some(rule_set), reason: String::new() };
        self.policy.update_rule_set(request).await.map(|r| r.into_inner().rule_set.unwrap_or_default())
    }
}

/// Asserts an InvalidArgument whose message starts with `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str) {
    match r {
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            assert!(s.message().starts_with(&format!("{field}:")), "expected field {field} in {:?}", s.message())
        }
        other => panic!("expected InvalidArgument naming {field}, got {other:?}"),
    }
}

pub use edgebackup_testkit::eventually;

/// Declares a test that runs once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::harness::TestDb::new($crate::harness::Db::Sqlite).await;
                    super::$name(db).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::harness::TestDb::new($crate::harness::Db::Postgres).await;
                    super::$name(db).await;
                }
            )+
        }
    };
}
