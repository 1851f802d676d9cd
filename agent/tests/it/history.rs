//! Restore as it was at any moment: a scripted history of passes over a real tree, its exact
//! state (contents, modes, mtimes, symlinks, empty directories, hardlinks, deletions) captured
//! before each pass and compared with `agent restore --as-of` of that pass; an interrupted
//! restore that continues; a damaged copy that is named and passed over; a replaced device.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::{Spec, eventually};

use crate::harness::*;

/// What one entry is, as a restore must give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Snap {
    File { sha: String, mode: u32, mtime: (i64, i64), link: Option<String> },
    Dir { mode: u32, mtime: (i64, i64) },
    Symlink { target: String },
}

/// The tree's exact state; a hardlinked file names the first path (by name) it shares an inode with.
fn capture(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    let mut first_of_inode: BTreeMap<u64, String> = BTreeMap::new();
    let mut paths: Vec<PathBuf> = walk(root);
    paths.sort();
    for p in paths {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel == ".edgebackup-canary" {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mtime = (m.mtime(), m.mtime_nsec());
        let snap = if m.file_type().is_symlink() {
            Snap::Symlink { target: std::fs::read_link(&p).unwrap().to_string_lossy().into_owned() }
        } else if m.is_dir() {
            Snap::Dir { mode: m.mode() & 0o7777, mtime }
        } else {
            let link = if m.nlink() > 1 {
                let first = first_of_inode.entry(m.ino()).or_insert_with(|| rel.clone());
                (first != &rel).then(|| first.clone())
            } else {
                None
            };
            Snap::File { sha: sha256_file(&p), mode: m.mode() & 0o7777, mtime, link }
        };
        out.insert(rel, snap);
    }
    out
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where `agent restore --to DIR` puts a folder: DIR + its absolute path.
fn restored(to: &Path, folder: &Path) -> PathBuf {
    to.join(folder.to_string_lossy().trim_start_matches('/'))
}

async fn pass(config: &Path) {
    let (code, out, err) = agent_fn(config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "backup failed:\n{out}\n{err}");
}

async fn restore(config: &Path, to: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["restore", "--to", to.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = agent_fn(config, &args).await;
    (code, format!("{out}{err}"))
}

fn set_mtime(p: &Path, secs: i64) {
    filetime::set_file_mtime(p, filetime::FileTime::from_unix_time(secs, 123_456_789)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_at_each_pass_gives_back_exactly_that_state() {
    let world = World::new().await;
    let config = world.agent_config("h", "edge-h", &world.local_station("hot"), "[safety]\nenabled = false\n");
    let data = world.data("h");
    let d = |rel: &str| data.join(rel);
    let mut history: Vec<(String, BTreeMap<String, Snap>)> = Vec::new();
    let steps: Vec<Box<dyn Fn() + '_>> = vec![
        Box::new(|| {
            std::fs::write(d("a.txt"), b"first").unwrap();
            std::fs::create_dir_all(d("dir")).unwrap();
            std::fs::write(d("dir/secret.txt"), b"0600 secret").unwrap();
            std::fs::set_permissions(d("dir/secret.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::create_dir_all(d("empty")).unwrap();
            std::os::unix::fs::symlink("a.txt", d("link")).unwrap();
            std::fs::write(d("big.bin"), random_bytes(200 << 20)).unwrap();
            set_mtime(&d("a.txt"), 1_600_000_000);
        }),
        Box::new(|| std::fs::write(d("a.txt"), b"second, longer").unwrap()),
        Box::new(|| std::fs::remove_file(d("dir/secret.txt")).unwrap()),
        Box::new(|| std::fs::rename(d("a.txt"), d("c.txt")).unwrap()),
        Box::new(|| std::fs::set_permissions(d("c.txt"), std::fs::Permissions::from_mode(0o640)).unwrap()),
        Box::new(|| {
            // The big file changed in place: one MiB in the middle.
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(d("big.bin")).unwrap();
            f.seek(SeekFrom::Start(100 << 20)).unwrap();
            f.write_all(&random_bytes(1 << 20)).unwrap();
        }),
        Box::new(|| std::fs::hard_link(d("c.txt"), d("d.txt")).unwrap()),
        Box::new(|| {
            std::fs::create_dir_all(d("empty/inner")).unwrap();
            std::fs::remove_file(d("link")).unwrap();
        }),
        Box::new(|| std::os::unix::fs::symlink("dir", d("dirlink")).unwrap()),
        Box::new(|| {
            std::fs::write(d("dir/secret.txt"), b"back, with other contents").unwrap();
            std::fs::set_permissions(d("dir"), std::fs::Permissions::from_mode(0o750)).unwrap();
        }),
    ];
    for step in &steps {
        step();
        let state = capture(&data);
        pass(&config).await;
        history.push((now_rfc3339(), state));
        // The next pass's changes must be later than this moment (millisecond clocks).
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (i, (moment, expected)) in history.iter().enumerate() {
        let to = world.path(&format!("restore-{i}/"));
        let (code, out) = restore(&config, &to, &["--as-of", moment]).await;
        assert_eq!(code, 0, "pass {i}: {out}");
        let got = capture(&restored(&to, &data));
        assert_eq!(&got, expected, "pass {i} as of {moment}:\n{out}");
    }
    // `latest` is the last pass.
    let to = world.path("restore-latest/");
    let (code, out) = restore(&config, &to, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(&capture(&restored(&to, &data)), &history.last().unwrap().1);
    // A selection: one directory as of the first pass.
    let to = world.path("restore-dir/");
    let (code, out) = restore(&config, &to, &["--as-of", &history[0].0, "--path", "dir"]).await;
    assert_eq!(code, 0, "{out}");
    let got = capture(&restored(&to, &data));
    assert_eq!(got.keys().collect::<Vec<_>>(), ["dir", "dir/secret.txt"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_continues_and_ends_identical() {
    let world = World::new().await;
    let extra = "max_package_files = 1\n[safety]\nenabled = false\n";
    let config = world.agent_config("i", "edge-i", &world.local_station("hot"), extra);
    let data = world.data("i");
    for n in 0..40 {
        std::fs::write(data.join(format!("f{n:02}.bin")), random_bytes(3 << 20)).unwrap();
    }
    pass(&config).await;
    let expected = capture(&data);
    let to = world.path("restore/");
    let target = restored(&to, &data);
    let mut args = vec!["--config".to_owned(), config.display().to_string()];
    args.extend(["restore", "--to", to.to_str().unwrap()].map(str::to_owned));
    let mut running =
        Spec::new("agent", world.dir.path()).args(args).ready(edgebackup_testkit::Ready::Spawned).start().await;
    eventually("the restore's first files in place", 120, || async {
        let n = std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0);
        (n >= 3).then_some(())
    })
    .await;
    running.kill().await;
    let partial = capture(&target);
    assert!(partial.len() < expected.len(), "the restore was over before it could be interrupted");
    let (code, out) = restore(&config, &to, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("were already there"), "the second run skips what the first restored: {out}");
    assert_eq!(capture(&target), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_named_and_another_one_used() {
    let world = World::new().await;
    let stations = format!("{}\n{}", world.local_station("first"), world.local_station("second"));
    let config = world.agent_config("c", "edge-c", &stations, "[safety]\nenabled = false\n");
    let data = world.data("c");
    std::fs::write(data.join("precious.txt"), b"only two copies of me").unwrap();
    pass(&config).await;
    let p = world.completed("edge-c", 1, 30).await.remove(0);
    let copy = world.dir.path().join(format!("stations/first/edge-c/{}.tar.zst", p.package_id));
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&copy, bytes).unwrap();
    let to = world.path("restore/");
    let (code, out) = restore(&config, &to, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("damaged copy: package {} on station first", p.package_id)), "{out}");
    assert_eq!(std::fs::read(restored(&to, &data).join("precious.txt")).unwrap(), b"only two copies of me");
    let left: Vec<String> = capture(&restored(&to, &data)).into_keys().collect();
    assert_eq!(left, ["precious.txt"], "nothing of the damaged copy is left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_device_restores_everything_with_one_command() {
    let world = World::new().await;
    let config = world.agent_config("old", "edge-r", &world.local_station("hot"), "[safety]\nenabled = false\n");
    let data = world.data("old");
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/letter.txt"), b"dear successor").unwrap();
    pass(&config).await;
    let expected = capture(&data);
    // The new device: the same config (source, catcher, stations), a state dir of its own and a
    // fresh enrollment token (its credential is its own; the old device's went with it).
    let token = world.catcher.agent_toml("edge-r", false);
    let text = std::fs::read_to_string(&config).unwrap().replace("old-state", "new-state");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("catcher_url") && !l.starts_with("token") && !l.starts_with("catcher_ca"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = format!("{token}{text}");
    let fresh = world.path("new.toml");
    std::fs::write(&fresh, text).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let to = world.path("restore/");
    let (code, out) = restore(&fresh, &to, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(capture(&restored(&to, &data)), expected, "{out}");
}

/// A RESTORE command from the catcher to another agent: it restores the first agent's data
/// into a directory under its `restore_roots`, and refuses any target outside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_command_reaches_another_agent_and_stays_inside_its_roots() {
    let world = World::new().await;
    let a = world.agent_config("ra", "edge-ra", &world.local_station("hot"), "[safety]\nenabled = false\n");
    let data = world.data("ra");
    std::fs::write(data.join("report.txt"), b"for the other machine").unwrap();
    pass(&a).await;
    let root = world.path("b-restores/");
    std::fs::create_dir_all(&root).unwrap();
    let extra = format!("restore_roots = [\"{}\"]\n[safety]\nenabled = false\n", root.display());
    let b = world.agent_config("rb", "edge-rb", &world.local_station("hot"), &extra);
    let mut agent = Agent::start(&b).await;
    eventually("agent b connected", 30, || async { world.connected("edge-rb").await.then_some(()) }).await;

    let restore = |target: &Path| {
        pb::command_args::Kind::Restore(pb::RestoreArgs {
            source_id: "edge-ra".into(),
            target_dir: target.display().to_string(),
            ..Default::default()
        })
    };
    let into = root.join("from-a");
    // Its progress is watched live: the catcher hears the agent's reports on the stream.
    let mut status = pb::status_service_client::StatusServiceClient::new(world.channel().await);
    let mut watch = status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let done = world.command_with("edge-rb", pb::CommandKind::Restore, "", Some(restore(&into))).await;
    assert_eq!(done.state, pb::CommandState::Succeeded as i32, "{done:?}");
    let mut reports = Vec::new();
    while let Ok(Ok(Some(e))) = tokio::time::timeout(std::time::Duration::from_secs(2), watch.message()).await {
        if let Some(pb::watch_event::Kind::RestoreChanged(c)) = e.kind {
            reports.push((c.state, c.progress));
        }
    }
    let running: Vec<pb::CommandProgress> = reports
        .iter()
        .filter(|(state, _)| *state == pb::CommandState::Leased as i32)
        .filter_map(|(_, p)| p.clone())
        .collect();
    assert!(!running.is_empty(), "progress reported while it ran: {reports:?}");
    for p in running.iter().filter(|p| p.phase != pb::CommandPhase::Planning as i32) {
        assert_eq!(p.files_total, 1, "{p:?}");
        assert!(p.files_done <= 1 && p.bytes_total == 21, "{p:?}");
    }
    assert!(reports.last().is_some_and(|(state, _)| *state == pb::CommandState::Succeeded as i32), "{reports:?}");
    let copy = restored(&into, &data).join("report.txt");
    assert_eq!(std::fs::read(&copy).unwrap(), b"for the other machine");
    match done.result_details.and_then(|d| d.kind) {
        Some(pb::command_details::Kind::Restore(r)) => assert_eq!((r.files, r.skipped.len()), (1, 0), "{r:?}"),
        other => panic!("restore details expected: {other:?}"),
    }

    let elsewhere = world.path("not-a-root/");
    let refused = world.command_with("edge-rb", pb::CommandKind::Restore, "", Some(restore(&elsewhere))).await;
    assert_eq!(refused.state, pb::CommandState::Failed as i32, "{refused:?}");
    assert!(refused.result_message.contains("outside this agent's restore_roots"), "{refused:?}");
    assert!(!restored(&elsewhere, &data).exists(), "nothing written outside the roots");

    // A relative target never reaches an agent.
    let mut sources = pb::source_service_client::SourceServiceClient::new(world.channel().await);
    let request = pb::CreateCommandRequest {
        source_id: "edge-rb".into(),
        kind: pb::CommandKind::Restore as i32,
        args: Some(pb::CommandArgs { kind: Some(restore(Path::new("relative/dir"))) }),
        ..Default::default()
    };
    let err = sources.create_command(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("args.restore.target_dir:"), "{err:?}");
    assert!(agent.terminate().await.success());
}

/// On a terminal, `agent restore` draws a progress bar (bytes and files so far) and clears it
/// before the summary; piped (every other test here), it prints the summary alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_on_a_terminal_shows_its_progress() {
    let world = World::new().await;
    let config = world.agent_config("t", "edge-t", &world.local_station("hot"), "[safety]\nenabled = false\n");
    let data = world.data("t");
    // Enough to take several of the bar's redraws (at most 20 a second).
    for i in 0..20 {
        std::fs::write(data.join(format!("f{i}.bin")), random_bytes(3 << 20)).unwrap();
    }
    pass(&config).await;
    world.completed("edge-t", 1, 30).await;
    let to = world.path("restore/");
    // util-linux `script` runs the restore on a pseudo-terminal and records what it drew.
    let command = format!(
        "{} --config {} restore --to {}",
        edgebackup_testkit::bin("agent").display(),
        config.display(),
        to.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` is required for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    // The bar's own line (redrawn with `\r`): the bytes and the files so far, not the summary.
    let bars: Vec<&str> = text.split(['\r', '\n']).filter(|l| l.contains("restoring")).collect();
    assert!(!bars.is_empty(), "no bar: {text}");
    let counting = bars.iter().any(|l| l.contains(" files") && !l.contains(" 0 files") && !l.contains(" 0 B/"));
    assert!(counting, "the bar counts bytes and files as they are restored: {bars:?}");
    assert!(text.contains("restored 20 files"), "then the summary: {text}");
    assert_eq!(tree(&restored(&to, &data)), tree(&data));
}

/// Compaction end to end: a package kept only for one small current file (its other files
/// rewritten since) is found by the catcher's planner, the agent packages that file again from
/// the device, the version moves to the new package (same version, no new one), and both the
/// latest state and the state before the rewrite still restore exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_kept_for_one_file_is_compacted_and_everything_still_restores() {
    let catcher = "compaction_interval_secs = 1\ncompaction_min_age_secs = 0\ncompaction_max_live_percent = 50\n";
    let world = World::with_catcher_config(catcher).await;
    let config = world.agent_config("c", "edge-c", &world.local_station("hot"), "[safety]\nenabled = false\n");
    let data = world.data("c");
    std::fs::write(data.join("keep.txt"), b"never changes").unwrap();
    for i in 0..3 {
        std::fs::write(data.join(format!("big{i}.bin")), random_bytes(200_000)).unwrap();
    }
    pass(&config).await;
    let first_state = capture(&data);
    let mut catalog = pb::catalog_service_client::CatalogServiceClient::new(world.channel().await);
    let folder = data.to_string_lossy().trim_end_matches('/').to_owned();
    let versions = |path: &str| pb::ListVersionsRequest {
        source_id: "edge-c".into(),
        folder: folder.clone(),
        path: path.into(),
        page_size: 0,
    };
    let before = catalog.list_versions(versions("keep.txt")).await.unwrap().into_inner().versions;
    let old = before[0].entry.as_ref().unwrap().package_id.clone();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = now_rfc3339();
    for i in 0..3 {
        std::fs::write(data.join(format!("big{i}.bin")), random_bytes(200_000)).unwrap();
    }
    pass(&config).await;
    let latest_state = capture(&data);

    // The daemon takes the planner's command.
    let mut agent = Agent::start(&config).await;
    let mut sources = pb::source_service_client::SourceServiceClient::new(world.channel().await);
    let done = eventually("the compaction command answered", 60, || {
        let mut sources = sources.clone();
        async move {
            let request = pb::ListCommandsRequest {
                source_id: "edge-c".into(),
                kind: pb::CommandKind::Compact as i32,
                ..Default::default()
            };
            let list = sources.list_commands(request).await.ok()?.into_inner().commands;
            list.into_iter()
                .find(|c| c.state == pb::CommandState::Succeeded as i32 || c.state == pb::CommandState::Failed as i32)
        }
    })
    .await;
    assert_eq!(done.state, pb::CommandState::Succeeded as i32, "{done:?}");
    match done.command.as_ref().and_then(|c| c.args.as_ref()).and_then(|a| a.kind.as_ref()) {
        Some(pb::command_args::Kind::Compact(args)) => {
            assert_eq!(
                (args.paths.as_slice(), args.package_ids.as_slice()),
                (&["keep.txt".to_owned()][..], &[old.clone()][..])
            );
        }
        other => panic!("compact arguments expected: {other:?}"),
    }
    let after = eventually("keep.txt's version moved to the new package", 30, || {
        let mut catalog = catalog.clone();
        let request = versions("keep.txt");
        let old = old.clone();
        async move {
            let v = catalog.list_versions(request).await.ok()?.into_inner().versions;
            (v[0].entry.as_ref()?.package_id != old).then_some(v)
        }
    })
    .await;
    assert_eq!(after.len(), 1, "the same version, not a new one: {after:?}");
    assert_eq!(after[0].since, before[0].since);
    let coverage = catalog
        .get_coverage(pb::GetCoverageRequest { source_id: "edge-c".into(), sample: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((coverage.present_files, coverage.unprotected_files), (4, 0), "{coverage:?}");
    // Nothing more to compact: the new package's one file is all of it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let request = pb::ListCommandsRequest {
        source_id: "edge-c".into(),
        kind: pb::CommandKind::Compact as i32,
        ..Default::default()
    };
    assert_eq!(sources.list_commands(request).await.unwrap().into_inner().commands.len(), 1);
    assert!(agent.terminate().await.success());

    let to = world.path("latest/");
    let (code, out) = restore(&config, &to, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(capture(&restored(&to, &data)), latest_state, "{out}");
    let to = world.path("before/");
    let (code, out) = restore(&config, &to, &["--as-of", &between]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        capture(&restored(&to, &data)),
        first_state,
        "the old package still serves the superseded versions: {out}"
    );
}
