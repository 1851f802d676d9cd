//! `catcher status`: the one-shot formats against a real catcher with data, exit codes, and the
//! live view driven in a real terminal (tmux).

use std::process::Output;
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use pb::agent_event::Kind;

use crate::agent::{ScriptedAgent, complete, ingest, progress};
use crate::harness::{Catcher, Db, TestDb, eventually};
use edgebackup_testkit::Spec;

fn sha_of(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Two clients: edge-01 with a stored, an uploading and a failed package; edge-02 stopped for
/// safety. The returned agents keep their streams (and so their "online" state) open.
async fn seed(catcher: &Catcher) -> (ScriptedAgent, ScriptedAgent) {
    let a = ScriptedAgent::enroll(catcher, "edge-01", &[pb::Capability::Backup]).await;
    let (stored, uploading, failed) =
        (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let script = vec![
        ingest(&stored, "/home/ana/report.pdf", 2048, ""),
        progress(&stored, 40, 800),
        complete(&stored, &sha_of("report"), 2048, "local-hot"),
        ingest(&uploading, "/var/log/app/app.log", 4096, ""),
        progress(&uploading, 40, 1600),
        ingest(&failed, "/data/invoices/q3.xlsx", 1024, ""),
        Kind::Fail(pb::Fail { package_id: failed.clone(), error: "upload timed out".into(), retryable: false }),
    ];
    let mut a = a;
    for (i, kind) in script.into_iter().enumerate() {
        a.send(i as u64 + 1, kind).await;
    }
    a.wait_ack(7).await;
    let mut b = ScriptedAgent::enroll(catcher, "edge-02", &[pb::Capability::Backup]).await;
    let alert = pb::SafetyAlert { reason: "canary changed".into(), ..Default::default() };
    b.send(1, Kind::SafetyAlert(alert)).await;
    b.wait_ack(1).await;
    (a, b)
}

/// Runs `catcher status ARGS` with only PATH and `env` set; nothing from a server config.
async fn status(args: &[&str], env: &[(&str, &str)]) -> Output {
    Spec::new("catcher", &std::env::temp_dir()).args(["status"]).args(args).envs(env).output(30).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_formats_report_a_real_fleet() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start_with(&db, &[("CATCHER_ALERT_INTERVAL_SECS", "1")]).await;
    let _agents = seed(&catcher).await;
    let url = catcher.url();
    let tok = ("CATCHER_TOKEN", catcher.admin_token.as_str());
    // The failed package and the tripped brake are alerts too.
    let alerts = pb::alert_service_client::AlertServiceClient::new(catcher.channel().await);
    eventually("the two alerts", 20, || async {
        let open = alerts.clone().list_alerts(pb::ListAlertsRequest::default()).await.ok()?.into_inner().open;
        (open == 2).then_some(())
    })
    .await;

    // human
    let out = status(&["--catcher", &url], &[tok]).await;
    let human = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    for expected in [
        "== Overview ==",
        "clients 2/2 connected · 1 stopped for safety",
        "packages 0 pending · 1 in progress · 1 completed · 1 failed · 0 expired",
        "│ Clients  │──▶│ Hot      │──▶│ Warm     │──▶│ Cold     │──▶│ Offsite  │",
        "│ 2 pkg    │   │ 1 pkg    │",
        "Updated data keeps arriving; retention keeps the latest.",
        "== Packages ==",
        "3 newest packages",
        "  ↳ upload timed out",
        "== Clients ==",
        "edge-02      online  stopped for safety",
        "== Rules ==",
        "== Projections ==",
        "== Journal ==",
        "package.ingested",
        "check: FAILED (1 failed packages, 1 clients stopped for safety, 2 open alerts)",
        "== Alerts ==",
        "OPEN package_failed edge-0",
        "OPEN safety_tripped edge-02",
    ] {
        assert!(human.contains(expected), "{expected:?} missing in:\n{human}");
    }
    let row = |path: &str| {
        human.lines().find(|l| l.starts_with(path)).unwrap_or_else(|| panic!("{path} row:\n{human}")).to_owned()
    };
    let stored = row("/home/ana/report.pdf");
    assert!(
        stored.contains("edge-01") && stored.contains("user") && stored.contains("hot") && stored.contains("completed")
    );
    assert!(stored.contains("█████ 100%") && stored.contains(&sha_of("report")[..8]), "{stored}");
    let uploading = row("/var/log/app/app.log");
    assert!(uploading.contains("in progress") && uploading.contains("██░░░  40%"), "{uploading}");
    assert!(row("/data/invoices/q3.xlsx").contains("failed"));

    // json: one document
    let out = status(&["--catcher", &url, "--format", "json"], &[tok]).await;
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["catcher"]["reachable"], true);
    assert_eq!(v["catcher"]["database"], "sqlite");
    assert_eq!(v["statuses"]["failed"], 1);
    assert_eq!(v["clients_summary"]["stopped_for_safety"], 1);
    let packages = v["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 3);
    assert_eq!(packages[0]["path"], "/data/invoices/q3.xlsx", "newest first");
    assert_eq!(packages[0]["last_error"], "upload timed out");
    assert_eq!(packages[2]["tier"], "hot");
    assert_eq!(packages[2]["sha256"], sha_of("report"));
    let hot = v["tiers"].as_array().unwrap().iter().find(|t| t["tier"] == "hot").unwrap();
    assert_eq!((hot["packages"].as_u64(), hot["bytes"].as_u64()), (Some(1), Some(2048)));
    assert_eq!(v["rule_sets"].as_array().unwrap().len(), 6);
    assert_eq!(v["check"]["ok"], false);

    // ai: greppable lines, via CATCHER_URL this time
    let out = status(&["--format", "ai"], &[("CATCHER_URL", &url), tok]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let ai = text(&out.stdout);
    assert!(ai.lines().all(|l| l.starts_with("EBK\tkind=")), "{ai}");
    assert!(ai.contains("EBK\tkind=component\tname=catcher\tstatus=ok\turl="), "{ai}");
    assert!(ai.contains("EBK\tkind=tier\ttier=hot\tpackages=1\tbytes=2048\t"), "{ai}");
    assert_eq!(ai.lines().filter(|l| l.starts_with("EBK\tkind=package\t")).count(), 3);
    assert!(
        ai.lines()
            .any(|l| l.contains("\tpath=/var/log/app/app.log\t") && l.contains("\tstatus=in_progress\tprogress=40\t")),
        "{ai}"
    );
    assert!(ai.contains("EBK\tkind=client\tid=edge-02\tconnected=true\tsafety=stopped_for_safety\t"), "{ai}");
    assert!(
        ai.ends_with(
            "EBK\tkind=check\tok=false\tfailed_packages=1\tstopped_clients=1\tunprotected_files=0\topen_alerts=2\trpo_breached=0\n"
        ),
        "{ai}"
    );

    // --check turns the problems into exit code 1, whatever the format
    for format in ["human", "json", "ai"] {
        let out = status(&["--catcher", &url, "--check", "--format", format], &[tok]).await;
        assert_eq!(out.status.code(), Some(1), "--check with a failed package, {format}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_healthy_fleet() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    // Without a credential: refused, exit 5, saying what to set.
    let out = status(&["--catcher", &catcher.url(), "--check"], &[]).await;
    assert_eq!(out.status.code(), Some(5), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("CATCHER_TOKEN"), "{}", text(&out.stderr));
    // A viewer's token in a file is enough.
    let viewer = catcher.person("status-viewer", pb::Role::Viewer).await;
    let file = db.dir.path().join("viewer.token");
    std::fs::write(&file, format!("{viewer}\n")).unwrap();
    let out = status(&["--catcher", &catcher.url(), "--check", "--token-file", &file.display().to_string()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "stdout:\n{}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("check: ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_catcher_exits_3_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = status(&["--catcher", &url], &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("error: cannot reach the catcher at {url}: ")), "{err}");

    let out = status(&["--format", "json"], &[("CATCHER_URL", &format!("127.0.0.1:{port}"))]).await;
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json even when unreachable");
    assert_eq!((v["catcher"]["reachable"].clone(), v["catcher"]["url"].clone()), (false.into(), url.clone().into()));

    let out = status(&["--catcher", &url, "--format", "ai"], &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).starts_with("EBK\tkind=component\tname=catcher\tstatus=unreachable\t"));

    let out = status(&["--catcher", "ftp://nowhere"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "a malformed URL is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_ignores_the_server_config_and_documents_exit_codes() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher = Catcher::start(&db).await;
    // A config that would fail to load, and server settings that would fail validation: unused.
    let env = [
        ("CATCHER_DATABASE_URL", "nonsense://"),
        ("CATCHER_LISTEN", "not an address"),
        ("CATCHER_TOKEN", catcher.admin_token.as_str()),
    ];
    let out = status(&["--catcher", &catcher.url(), "--config", "/nonexistent/catcher.toml"], &env).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "no logs: {}", text(&out.stderr));

    let help = text(&status(&["--help"], &[]).await.stdout);
    for expected in [
        "--catcher <URL>",
        "[env: CATCHER_URL=]",
        "--live",
        "--format <FORMAT>",
        "--check",
        "Exit codes:",
        "  3  the catcher is unreachable",
    ] {
        assert!(help.contains(expected), "{expected:?} missing in --help:\n{help}");
    }
}

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server; a missing tmux fails the test rather than skipping it.
    fn start() -> Self {
        let found = std::process::Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
        assert!(found, "tmux is required for the live view test (apt-get install tmux)");
        Self { socket: format!("ebk-tui-{}", uuid::Uuid::now_v7().simple()) }
    }

    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux")
    }

    fn capture(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout)
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    /// Waits until the pane shows `needle`; returns the screen.
    async fn wait_for(&self, needle: &str, secs: u64) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                return screen;
            }
            assert!(tokio::time::Instant::now() < deadline, "{needle:?} not on screen within {secs} s:\n{screen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn save_capture(name: &str, screen: &str) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, screen).expect("write capture");
    eprintln!("captured {}:\n{screen}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_in_a_real_terminal() {
    let tmux = Tmux::start();
    let db = TestDb::new(Db::Sqlite).await;
    let dir = &db.dir;
    let mut catcher = Catcher::start(&db).await;
    let ch = catcher.channel().await;
    let agents = seed(&catcher).await;

    let exit_file = dir.path().join("exit-code");
    let command = format!(
        "env NO_COLOR=1 TERM=xterm-256color CATCHER_TOKEN={} {} status --live --catcher {}; echo $? > {}",
        catcher.admin_token,
        env!("CARGO_BIN_EXE_catcher"),
        catcher.url(),
        exit_file.display()
    );
    let started = tmux.run(&["new-session", "-d", "-x", "100", "-y", "30", "-s", "tui", &command]);
    assert!(started.status.success(), "tmux new-session: {}", text(&started.stderr));

    // The snapshot arrives: the overview with the train.
    let screen = tmux.wait_for("● live", 20).await;
    let screen = if screen.contains("Offsite") { screen } else { tmux.wait_for("│ Offsite  │", 10).await };
    assert!(screen.contains("clients 2/2 connected · 1 stopped for safety"), "{screen}");
    assert_eq!(screen.lines().count(), 30);
    save_capture("tui-overview-100x30.txt", &screen);

    // Packages: a new one arrives through the Watch stream, without any key press.
    tmux.keys(&["2"]);
    tmux.wait_for("/data/invoices/q3.xlsx", 10).await;
    let mut packages = pb::package_service_client::PackageServiceClient::new(ch.clone());
    let ingest = pb::IngestPackageRequest {
        source_id: "edge-01".into(),
        path: "/srv/new/arrival.bin".into(),
        ..Default::default()
    };
    packages.ingest_package(ingest.clone()).await.unwrap();
    let screen = tmux.wait_for("/srv/new/arrival.bin", 10).await;
    save_capture("tui-packages-100x30.txt", &screen);

    // Filter.
    tmux.keys(&["/", "report", "Enter"]);
    let screen = tmux.wait_for("1 of 4 packages match \"report\"", 10).await;
    assert!(screen.contains("/home/ana/report.pdf") && !screen.contains("app.log"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("4 newest packages", 10).await;

    // Pause: changes are held, then shown.
    tmux.keys(&["p"]);
    tmux.wait_for("paused", 10).await;
    packages.ingest_package(pb::IngestPackageRequest { path: "/srv/held.bin".into(), ..ingest.clone() }).await.unwrap();
    tmux.wait_for("updates held", 10).await;
    assert!(!tmux.capture().contains("/srv/held.bin"), "a paused screen does not move");
    tmux.keys(&["p"]);
    tmux.wait_for("/srv/held.bin", 10).await;

    // 160 columns are used: the packages table adds the id, the size and where the copies are.
    assert!(tmux.run(&["resize-window", "-t", "tui", "-x", "160", "-y", "30"]).status.success());
    let screen = tmux.wait_for("copies on", 10).await;
    assert!(screen.contains("local-hot") && screen.lines().any(|l| l.chars().count() > 120), "{screen}");
    save_capture("tui-packages-160x30.txt", &screen);

    // Resize to 80x24: redrawn to the new size, still readable.
    assert!(tmux.run(&["resize-window", "-t", "tui", "-x", "80", "-y", "24"]).status.success());
    let screen = eventually("the live view at 80x24", 10, || async {
        let s = tmux.capture();
        (s.lines().count() == 24 && s.lines().nth(1).is_some_and(|l| l.contains("1 Overview"))).then_some(s)
    })
    .await;
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    save_capture("tui-packages-80x24.txt", &screen);

    // Projections are the catcher's (GetProjections, over every package), not computed from
    // the packages the view holds; help wraps at 80 columns instead of losing its last words.
    tmux.keys(&["5"]);
    tmux.wait_for("from all packages", 20).await;
    tmux.keys(&["?"]);
    let screen = tmux.wait_for("GetProjections", 10).await;
    assert!(screen.contains("backoff."), "{screen}");
    tmux.keys(&["2"]);
    tmux.wait_for("newest packages", 10).await;

    // The catcher goes away: a clear message, the last data stays, and it reconnects by itself.
    drop(agents);
    catcher.kill().await;
    let screen = tmux.wait_for("cannot reach the catcher", 20).await;
    assert!(screen.contains("offline") && screen.contains("held.bin"), "{screen}");
    save_capture("tui-offline-80x24.txt", &screen);
    catcher.restart_same_port().await;
    tmux.wait_for("● live", 30).await;
    let screen = tmux.capture();
    assert!(!screen.contains("cannot reach"), "{screen}");

    // q quits with exit code 0.
    tmux.keys(&["q"]);
    // The shell creates the file before it writes the code: wait for the code itself.
    let code = eventually("the live view's exit code", 10, || async {
        std::fs::read_to_string(&exit_file).ok().filter(|s| s.ends_with('\n'))
    })
    .await;
    assert_eq!(code.trim(), "0");
}
