//! restic and rclone stations with the real binaries; configuration mistakes.

use std::path::Path;

use edgebackup_testkit::eventually;

use crate::harness::*;

fn require(tool: &str) {
    let found = std::process::Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is required for these tests (Debian package `{tool}`)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_and_rclone_stations_store_verify_and_restore() {
    require("restic");
    require("rclone");
    let world = World::new().await;
    let password = world.path("restic-password");
    std::fs::write(&password, "correct horse battery staple\n").unwrap();
    // restic second: it gets the archive file, not a feed, and is read back (`restic dump`) at once.
    let stations = format!(
        "[[stations]]\nid = \"rc\"\nkind = \"rclone\"\nuri = \"{}\"\n\n[[stations]]\nid = \"rs\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\nreadback = true\n",
        world.path("stations/rclone-remote/").display(),
        world.path("stations/restic-repo").display(),
        password.display()
    );
    let config = world.agent_config("tools", "edge-tools", &stations, "");
    let data = world.data("tools");
    copy_fixture(&data);
    std::fs::write(data.join("blob.bin"), random_bytes(3 << 20)).unwrap();
    // A preflight changes nothing: the missing remote directory and repository are named, not made.
    let (code, stdout, stderr) = agent_fn(&config, &["check-config"]).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("FAIL  stations[0] rc") && stdout.contains("does not exist"), "{stdout}");
    assert!(stdout.contains("FAIL  stations[1] rs") && stdout.contains("no repository at"), "{stdout}");
    assert!(!world.path("stations/restic-repo").exists() && !world.path("stations/rclone-remote").exists());
    let (code, stdout, stderr) = agent_fn(&config, &["check-config", "--init-stations"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("repository") && stdout.contains("created") && stdout.ends_with("configuration ok\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done = world.completed("edge-tools", 1, 30).await;
    let p = world.package(&done[0].package_id).await;
    assert_eq!(p.placements.len(), 2);
    assert!(p.placements.iter().all(|pl| pl.verified_sha256 == p.sha256), "{:?}", p.placements);
    assert!(p.tool_ref.ends_with(".tar.zst"));

    let (code, stdout, _) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("station rc") && stdout.contains("station rs"), "{stdout}");
    let expected = tree(&data);
    for station in ["rc", "rs"] {
        let out = world.path(&format!("restored-{station}/"));
        let (code, stdout, stderr) =
            agent_fn(&config, &["restore", &p.package_id, "--to", out.to_str().unwrap(), "--station", station]).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(tree(&out), expected, "restored from {station}");
        // The folder's state from the catalog, fetched through that tool alone.
        let to = world.path(&format!("state-{station}/"));
        let (code, stdout, stderr) =
            agent_fn(&config, &["restore", "--to", to.to_str().unwrap(), "--station", station]).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        let folder = to.join(data.to_string_lossy().trim_start_matches('/'));
        assert_eq!(tree(&folder), expected, "state restored from {station}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_name_the_key() {
    let world = World::new().await;
    let base = world.agent_config("cfg", "edge-cfg", &world.local_station("hot"), "");
    let text = std::fs::read_to_string(&base).unwrap();
    let cases = [
        ("package_type = \"user_data\"", "package_type = \"music\"", "folders[0].package_type"),
        ("kind = \"local\"", "kind = \"ftp\"", "stations[0].kind"),
        ("max_backoff_secs = 1", "max_backoff_secs = \"soon\"", "max_backoff_secs"),
        ("max_backoff_secs = 1", "max_backoff_secs = 1\ncompression_level = 99", "compression_level"),
        ("max_backoff_secs = 1", "max_backoff_secs = 1\nunknown_key = 1", "unknown_key"),
        ("excludes = [\"*.tmp\"]", "excludes = [\"[\"]", "folders[0].excludes[0]"),
    ];
    for (from, to, key) in cases {
        let path = world.path("bad.toml");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let (code, _, stderr) = agent_fn(&path, &["check-config"]).await;
        assert_eq!(code, 2, "{key}: {stderr}");
        assert!(stderr.contains(key), "expected {key} in: {stderr}");
    }
    // A station whose tool is missing: a clear startup error naming the tool and the station.
    let password = world.path("pw");
    std::fs::write(&password, "pw").unwrap();
    let stations = format!(
        "[[stations]]\nid = \"vault\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\n",
        world.path("repo").display(),
        password.display()
    );
    let config = world.agent_config("notool", "edge-notool", &stations, "");
    let out = agent(&config).args(["check-config"]).env("PATH", "/nonexistent").output(60).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("FAIL  stations[0] vault") && stdout.contains("`restic`"), "{stdout}");
    // `agent run` refuses to start on it, naming both.
    let out = agent(&config).args(["run"]).env("PATH", "/nonexistent").output(60).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stations[0]") && stderr.contains("vault") && stderr.contains("`restic`"), "{stderr}");
}

/// `agent check-config` as a new user meets it: one line per check, nothing created, and an
/// exit code that tells a mistake (2) from a failure (1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_is_a_preflight_that_changes_nothing() {
    require("rclone");
    let world = World::new().await;
    // No config file at all.
    let empty = world.path("empty/");
    std::fs::create_dir_all(&empty).unwrap();
    let out = edgebackup_testkit::Spec::new("agent", &empty).args(["check-config"]).output(60).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("FAIL  config: no config file"), "{stdout}");

    // Everything right: the folder, the station, the state dir the first run makes, the
    // catcher reached (its CA checked) without enrolling.
    let config = world.agent_config("pre", "edge-pre", &world.local_station("hot"), "");
    std::fs::create_dir_all(world.path("stations/hot/")).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["check-config"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    for want in [
        "ok    folders[0]",
        ".edgebackup-canary",
        "ok    stations[0] hot (local, native)",
        "note  state_dir",
        "note  catcher",
        "configuration ok",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    assert!(!world.path("pre-state/").exists(), "the state dir is not created");
    assert!(!world.data("pre").join(".edgebackup-canary").exists(), "no canary planted");

    // Mistakes: a folder that does not exist, a station directory not there (not created), an
    // rclone remote that is not configured.
    let text = std::fs::read_to_string(&config).unwrap();
    let broken = text.replace(&world.data("pre").display().to_string(), "/nonexistent/folder").replace(
        &world.path("stations/hot/").display().to_string(),
        &world.path("stations/typo/").display().to_string(),
    ) + "\n[[stations]]\nid = \"off\"\nkind = \"rclone\"\nuri = \"nosuchremote:bucket\"\n";
    let path = world.path("broken.toml");
    std::fs::write(&path, broken).unwrap();
    let (code, stdout, _) = agent_fn(&path, &["check-config"]).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("FAIL  folders[0] /nonexistent/folder: does not exist"), "{stdout}");
    assert!(stdout.contains("FAIL  stations[0] hot") && stdout.contains("--init-stations"), "{stdout}");
    assert!(
        stdout.contains("FAIL  stations[1] off") && stdout.contains("no remote named \"nosuchremote\""),
        "{stdout}"
    );
    assert!(!world.path("stations/typo/").exists(), "a typo makes no new station directory");

    // The catcher unreachable: configured right, failing now (exit 1).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let away = text.replace(&world.catcher.tls_url(), &format!("https://127.0.0.1:{port}"));
    assert_ne!(away, text, "the catcher URL is in the config");
    std::fs::write(&path, away).unwrap();
    let (code, stdout, _) = agent_fn(&path, &["check-config"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL  catcher https://127.0.0.1") && stdout.contains("unreachable"), "{stdout}");
}

fn restic(repo: &Path, password: &Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .env("RESTIC_PASSWORD_FILE", password)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "restic {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn snapshots_of(repo: &Path, password: &Path, package_id: &str) -> Vec<serde_json::Value> {
    let out = restic(repo, password, &["snapshots", "--json", "--tag", &format!("package:{package_id}")]);
    serde_json::from_slice::<Option<Vec<serde_json::Value>>>(&out.stdout).unwrap().unwrap_or_default()
}

/// A catcher, a restic repository path and its password file.
async fn restic_world() -> (World, std::path::PathBuf, std::path::PathBuf) {
    require("restic");
    let world = World::new().await;
    let password = world.path("restic-password");
    std::fs::write(&password, "correct horse battery staple\n").unwrap();
    let repo = world.path("stations/restic-repo");
    (world, repo, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_as_first_station_is_fed_while_the_archive_is_built() {
    let (world, repo, password) = restic_world().await;
    let restic_station = |password: &Path| {
        format!(
            "[[stations]]\nid = \"rs\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\n",
            repo.display(),
            password.display()
        )
    };
    let stations = format!("{}\n{}", restic_station(&password), world.local_station("hot"));
    let config = world.agent_config("feed", "edge-feed", &stations, "");
    let data = world.data("feed");
    copy_fixture(&data);
    std::fs::write(data.join("blob.bin"), random_bytes(5 << 20)).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    // restic derives its key and packs 5 MiB: slow on a loaded 2-core machine.
    let done = world.completed("edge-feed", 1, 90).await;
    let p = world.package(&done[0].package_id).await;
    assert_eq!(p.placements.len(), 2, "{:?}", p.placements);
    assert!(p.placements.iter().all(|pl| pl.verified_sha256 == p.sha256), "{:?}", p.placements);

    // One snapshot, holding exactly the package's bytes (read back through restic itself).
    assert_eq!(snapshots_of(&repo, &password, &p.package_id).len(), 1);
    let (snapshot, name) = p.tool_ref.split_once(':').expect("SNAPSHOT:FILE");
    let dumped = restic(&repo, &password, &["dump", snapshot, &format!("/{name}")]).stdout;
    assert_eq!(dumped.len() as u64, p.size_bytes);
    assert_eq!(agent::archive::sha256_of(dumped.as_slice()).unwrap().0, p.sha256);
    let (code, stdout, _) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("station rs") && stdout.contains("station hot"), "{stdout}");
    // A restic killed mid-upload leaves its lock behind; verify removes it (it is stale: its
    // process is gone) and says so, instead of failing until someone runs `restic unlock`.
    let mut upload = std::process::Command::new("restic")
        .arg("--repo")
        .arg(&repo)
        .env("RESTIC_PASSWORD_FILE", &password)
        .args(["backup", "--stdin", "--stdin-filename", "interrupted.bin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locks = repo.join("locks");
    eventually("restic's lock", 30, || async { std::fs::read_dir(&locks).ok()?.next().is_some().then_some(()) }).await;
    upload.kill().unwrap();
    upload.wait().unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("removed a stale restic lock"), "{stderr}");
    let staging = world.path("feed-state/staging");
    assert_eq!(std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0), 0, "staging left behind");

    // Start-up takes an existing local repository as it is (no key derivation); check-config
    // opens it, so a wrong password is reported there, and by the backup that meets it.
    let wrong = world.path("wrong-password");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let bad = world.agent_config("feed-bad", "edge-feed-bad", &restic_station(&wrong), "");
    let (code, stdout, _) = agent_fn(&bad, &["check-config"]).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("FAIL  stations[0] rs") && stdout.contains("wrong password"), "{stdout}");
    std::fs::write(world.data("feed-bad").join("a.txt"), b"a").unwrap();
    let (code, stdout, stderr) = agent_fn(&bad, &["backup", "--once"]).await;
    assert_ne!(code, 0, "{stdout}");
    assert!(stdout.contains("1 failed"), "{stdout}{stderr}");
    assert!(stderr.contains("station rs") && stderr.contains("wrong password"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_fails_midway_leaves_no_partial_copy() {
    let (world, repo, password) = restic_world().await;
    for (name, stations) in [
        (
            "rs",
            format!(
                "[[stations]]\nid = \"rs\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\n",
                repo.display(),
                password.display()
            ),
        ),
        ("hot", world.local_station("hot")),
    ] {
        let path = world.agent_config(name, &format!("edge-{name}"), &stations, "");
        let data = world.data(name);
        std::fs::write(data.join("first.bin"), random_bytes(24 << 20)).unwrap();
        // Opens like a file, fails on the first read: the build breaks after the station got
        // most of 24 MiB.
        std::fs::create_dir_all(data.join("not-a-file")).unwrap();
        let config = std::sync::Arc::new(agent::config::Config::load(&path, true).unwrap());
        let engine = agent::daemon::prepare(config).await.unwrap();
        let planned = agent::state::LocalPackage::planned(
            data.to_string_lossy().into_owned(),
            "user_data".into(),
            vec!["first.bin".into(), "not-a-file".into()],
        );
        let package_id = planned.package_id.clone();
        assert!(!engine.run_package(planned).await.unwrap(), "{name}: the package must fail");
        let failed = engine.state.packages().unwrap().into_iter().find(|p| p.package_id == package_id).unwrap();
        assert_eq!(failed.status, agent::state::LocalStatus::Failed);
        assert!(failed.error.contains("packaging") && failed.error.contains("not-a-file"), "{}", failed.error);
        if name == "rs" {
            assert!(snapshots_of(&repo, &password, &package_id).is_empty(), "restic saved a truncated archive");
        } else {
            let left = tree(&world.path("stations/hot/"));
            assert!(left.is_empty(), "the station holds {:?}", left.keys());
        }
    }
}

/// "N bytes read from stations" from a restore's summary.
fn fetched(stdout: &str) -> u64 {
    let at = stdout.find(" bytes read from stations").unwrap_or_else(|| panic!("no fetch count in {stdout}"));
    stdout[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

/// Seekable packages: one small file comes back from a local and an rclone station by reading
/// about its own compressed size, not the 24 MiB package it sits in; a damaged frame of the
/// first copy falls back to the next copy and names the damaged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_is_read_without_the_rest_of_its_package() {
    require("rclone");
    let world = World::new().await;
    let stations = format!(
        "{}\n[[stations]]\nid = \"rc\"\nkind = \"rclone\"\nuri = \"{}\"\n",
        world.local_station("lc"),
        world.path("stations/rclone-remote/").display()
    );
    let config = world.agent_config("seek", "edge-seek", &stations, "");
    let data = world.data("seek");
    std::fs::write(data.join("a-big.bin"), random_bytes(12 << 20)).unwrap();
    std::fs::create_dir_all(data.join("etc")).unwrap();
    std::fs::write(data.join("etc/app.conf"), "threads = 4\n".repeat(300)).unwrap();
    std::fs::set_permissions(data.join("etc/app.conf"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::write(data.join("z-big.bin"), random_bytes(12 << 20)).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done = world.completed("edge-seek", 1, 30).await;
    assert!(done[0].size_bytes > 24 << 20, "one package of everything: {:?}", done[0]);

    let conf = data.join("etc/app.conf");
    let restored = |to: &Path| to.join(data.to_string_lossy().trim_start_matches('/')).join("etc/app.conf");
    for station in ["lc", "rc"] {
        let to = world.path(&format!("one-{station}/"));
        let args = ["restore", "--to", to.to_str().unwrap(), "--path", "etc/app.conf", "--station", station];
        let (code, stdout, stderr) = agent_fn(&config, &args).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(std::fs::read(restored(&to)).unwrap(), std::fs::read(&conf).unwrap(), "from {station}");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(restored(&to)).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o640);
        let read = fetched(&stdout);
        assert!(read > 0 && read <= 1 << 20, "{station}: {read} bytes read for one small file: {stdout}");
    }

    // Damage the local copy where the small file is: the rclone copy is used, the damage named.
    let copy = world.path("stations/lc/").join(format!("edge-seek/{}.tar.zst", done[0].package_id));
    let mut bytes = std::fs::read(&copy).unwrap();
    // The small file's frame begins just after 12 MiB of incompressible data (24 frames stored
    // nearly as they are): this span covers its start.
    let at = (12 << 20) - 4096;
    for b in &mut bytes[at..at + 12_288] {
        *b ^= 0x5a;
    }
    std::fs::write(&copy, &bytes).unwrap();
    let to = world.path("one-damaged/");
    let args = ["restore", "--to", to.to_str().unwrap(), "--path", "etc/app.conf"];
    let (code, stdout, stderr) = agent_fn(&config, &args).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(std::fs::read(restored(&to)).unwrap(), std::fs::read(&conf).unwrap());
    assert!(stdout.contains(&format!("damaged copy: package {} on station lc", done[0].package_id)), "{stdout}");
}
