//! Test harness: runs the real `catcher` binary on an ephemeral port against a fresh database.

use edgebackup_common::client::{PersonChannel, as_person};
use edgebackup_proto::v1 as pb;
use edgebackup_testkit::{Proc, Spec};
use pb::{
    journal_service_client::JournalServiceClient, package_service_client::PackageServiceClient,
    policy_service_client::PolicyServiceClient, source_service_client::SourceServiceClient,
    status_service_client::StatusServiceClient,
};
use tonic::transport::Channel;

pub use edgebackup_testkit::db::{Db, TestDb};

/// A running catcher process (the testkit's one process harness with the catcher's test settings).
pub struct Catcher {
    proc: Proc,
    pub addr: String,
    /// The admin token the catcher wrote on its first start.
    pub admin_token: String,
}

impl Catcher {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts with extra `CATCHER_*` settings.
    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let proc = Spec::new("catcher", db.dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .envs(&[
                ("CATCHER_DATABASE_URL", &db.url),
                ("CATCHER_LOG_LEVEL", "info"),
                ("CATCHER_SCHEDULER_INTERVAL_MS", "200"),
                ("CATCHER_HEARTBEAT_INTERVAL_SECS", "1"),
                ("CATCHER_AGENT_TIMEOUT_SECS", "5"),
                ("CATCHER_COMMAND_LEASE_SECS", "2"),
                // Rule edits apply at once unless a test sets a delay (protection.rs does).
                ("CATCHER_PROTECTION_DELAY_SECS", "0"),
            ])
            .envs(env)
            .start()
            .await;
        let admin_token = proc.admin_token();
        let mut c = Self { addr: proc.addr.clone(), proc, admin_token };
        c.await_answers().await;
        c
    }

    /// The listener is bound before the router runs: wait until the server answers.
    async fn await_answers(&mut self) {
        self.addr = self.proc.addr.clone();
        let url = self.url();
        let token = self.admin_token.clone();
        eventually("the catcher answering GetStatus", 10, || async {
            let ch = Channel::from_shared(url.clone()).unwrap().connect().await.ok()?;
            let ch = as_person(ch, Some(&token)).unwrap();
            StatusServiceClient::new(ch).get_status(pb::GetStatusRequest {}).await.ok()
        })
        .await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Resident memory of the catcher process now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.proc.pid().expect("the catcher is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
    }

    /// A channel whose calls carry the admin token.
    pub async fn channel(&self) -> PersonChannel {
        self.channel_as(Some(&self.admin_token)).await
    }

    /// A channel whose calls carry `token` (none: no credential).
    pub async fn channel_as(&self, token: Option<&str>) -> PersonChannel {
        as_person(self.plain_channel().await, token).unwrap()
    }

    /// A channel without any credential.
    pub async fn plain_channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.expect("connect to catcher")
    }

    /// A person's token with `role`, created by the admin.
    pub async fn person(&self, name: &str, role: pb::Role) -> String {
        let request = pb::CreateTokenRequest { name: name.into(), role: role as i32, ..Default::default() };
        pb::access_service_client::AccessServiceClient::new(self.channel().await)
            .create_token(request)
            .await
            .expect("create a token")
            .into_inner()
            .token
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

    /// Sends `signal` (e.g. "STOP", "CONT").
    pub fn signal(&self, signal: &str) {
        self.proc.signal(signal);
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(&mut self) {
        self.proc.kill().await;
    }

    /// SIGTERM, then wait; returns the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.proc.stop("TERM", 20).await
    }

    /// Starts again on the same database and port.
    pub async fn restart_same_port(&mut self) {
        self.proc.restart_same_port().await;
        self.await_answers().await;
    }

    /// Starts again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.proc.restart().await;
        self.await_answers().await;
    }
}

/// Generated clients on one channel.
pub struct Clients {
    pub packages: PackageServiceClient<PersonChannel>,
    pub sources: SourceServiceClient<PersonChannel>,
    pub policy: PolicyServiceClient<PersonChannel>,
    pub journal: JournalServiceClient<PersonChannel>,
    pub status: StatusServiceClient<PersonChannel>,
}

impl Clients {
    /// One package with its placements and manifest.
    pub async fn package(&mut self, id: &str) -> pb::Package {
        let request = pb::GetPackageRequest { package_id: id.into(), ..Default::default() };
        self.packages.get_package(request).await.unwrap().into_inner()
    }

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

/// An enrolled agent's TLS channel to the catcher at `addr`: a token from AccessService, a key
/// and certificate request made here, the catcher verified by its CA's fingerprint.
pub async fn agent_channel(catcher: &Catcher, source_id: &str, mover: bool) -> Channel {
    use edgebackup_common::client;
    let addr = &catcher.addr;
    let cred = enroll(catcher, source_id, mover).await;
    let tls = client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(&cred)).expect("tls config");
    client::channel(&format!("https://{addr}"), Some(tls), false).await.expect("agent channel")
}

/// A new credential for `source_id` from `catcher` (the admin asks for the token).
pub async fn enroll(catcher: &Catcher, source_id: &str, mover: bool) -> edgebackup_common::client::Credential {
    let addr = &catcher.addr;
    let ch = catcher.channel().await;
    let request = pb::CreateEnrollmentTokenRequest { source_id: source_id.into(), mover, ..Default::default() };
    let token = pb::access_service_client::AccessServiceClient::new(ch)
        .create_enrollment_token(request)
        .await
        .expect("an enrollment token")
        .into_inner();
    let url = format!("https://{addr}");
    let (cred, source) =
        edgebackup_common::client::enroll(&url, &token.token, Some(&token.ca_fingerprint)).await.expect("enrolled");
    assert_eq!(source, source_id);
    cred
}
