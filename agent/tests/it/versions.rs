//! Versions, not packages: what the agent's passes record in the catalog (every entry with its
//! metadata, deletions, special files skipped) and what retention keeps because of it — a file
//! that never changes keeps its copy through every expiry.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::{Spec, eventually};
use pb::catalog_service_client::CatalogServiceClient;

use crate::harness::*;

const TIERS: [&str; 4] = ["hot", "warm", "cold", "offsite"];

/// A catcher on the `demo` preset (or `rules`) with a local station per tier.
fn catcher_config(preset: &str) -> String {
    let mut s = format!("initial_preset = \"{preset}\"\nscheduler_interval_ms = 200\n");
    for t in TIERS {
        s.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\ntier = \"{t}\"\nkind = \"local\"\nuri = \"$DIR/stations/{t}\"\n"
        ));
    }
    s
}

fn stations(world: &World) -> String {
    TIERS.iter().map(|t| world.local_station(t)).collect::<Vec<_>>().join("\n")
}

async fn catalog(world: &World) -> CatalogServiceClient<edgebackup_common::client::PersonChannel> {
    CatalogServiceClient::new(world.channel().await)
}

async fn coverage(world: &World, source: &str) -> pb::GetCoverageResponse {
    let request = pb::GetCoverageRequest { source_id: source.into(), sample: 50 };
    catalog(world).await.get_coverage(request).await.unwrap().into_inner()
}

async fn listing(
    world: &World,
    source: &str,
    folder: &Path,
    dir: &str,
    as_of: Option<prost_types::Timestamp>,
) -> Vec<pb::FileVersion> {
    let request = pb::ListFolderRequest {
        source_id: source.into(),
        folder: folder.display().to_string().trim_end_matches('/').to_owned(),
        directory: dir.into(),
        as_of,
        ..Default::default()
    };
    catalog(world).await.list_folder(request).await.unwrap().into_inner().entries
}

fn entry(v: &pb::FileVersion) -> &pb::FileEntry {
    v.entry.as_ref().expect("an entry")
}

fn copy_on(world: &World, tier: &str, source: &str, package_id: &str) -> bool {
    world.dir.path().join(format!("stations/{tier}/{source}/{package_id}.tar.zst")).exists()
}

/// The scenario under the demo preset (user data: 10 s hot, 30 s warm, 60 s cold, 90 s
/// offsite) on real stations: `stable.txt` never changes, `changing.txt` is rewritten every
/// 15 s. At 190 s the first package's rules would delete it; it holds the only copy of
/// `stable.txt`, so it stays (offsite, verified), while packages holding only superseded
/// versions of `changing.txt` expire once those are 190 s old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_never_changes_survives_every_expiry_under_the_demo_preset() {
    let world = World::with_catcher_config(&catcher_config("demo")).await;
    let config = world.agent_config("v", "edge-v", &stations(&world), "mover = true\nbackup_stations = [\"hot\"]");
    let data = world.data("v");
    std::fs::write(data.join("stable.txt"), b"I never change").unwrap();
    std::fs::write(data.join("changing.txt"), b"version 0").unwrap();
    let mut agent = Agent::start(&config).await;
    let first = world.completed("edge-v", 1, 60).await.remove(0);
    let started = tokio::time::Instant::now();

    // Rewrite changing.txt every 15 s until a package holding only its old versions expired.
    let mut version = 0;
    let expired_other = loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        version += 1;
        std::fs::write(data.join("changing.txt"), format!("version {version}")).unwrap();
        let all = world.packages("edge-v").await;
        if let Some(p) = all.iter().find(|p| p.status == pb::PackageStatus::Expired as i32) {
            break p.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(330), "no superseded package expired in 330 s");
    };
    assert_ne!(expired_other.package_id, first.package_id, "the package holding stable.txt expired");
    assert!(started.elapsed() > Duration::from_secs(190), "expired before its superseded versions' retention");

    // Long past its own expiry, the first package is kept, offsite, with its copy on disk.
    let kept = world.package(&first.package_id).await;
    assert_eq!(kept.status, pb::PackageStatus::Completed as i32, "{kept:?}");
    assert_eq!(kept.tier, pb::Tier::Offsite as i32, "it moved down the tiers like any package");
    assert!(copy_on(&world, "offsite", "edge-v", &first.package_id), "its copy is on the offsite station");
    let verified = kept.placements.iter().filter(|pl| pl.status == pb::PlacementStatus::Verified as i32).count();
    assert!(verified >= 1, "{kept:?}");
    let retained = world.journal("package.retained").await;
    assert!(retained.iter().any(|e| e.package_id == first.package_id), "the hold is journaled");
    // Every present file has a verified copy, and the one-shot check agrees.
    let c = coverage(&world, "edge-v").await;
    assert_eq!((c.present_files, c.unprotected_files), (2, 0), "{c:?}");
    let stable = listing(&world, "edge-v", &data, "", None).await;
    let stable = stable.iter().find(|v| entry(v).path == "stable.txt").expect("stable.txt listed");
    assert_eq!(entry(stable).package_id, first.package_id);
    let check = Spec::new("ebk", world.dir.path())
        .args(["status", "--check", "--catcher", &world.catcher.url()])
        .output(30)
        .await;
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(agent.terminate().await.success());
}

/// Every entry is recorded with its metadata: modes, symlinks with their targets, empty
/// directories, hardlinks; special files are skipped with the reason journaled; deletions and
/// metadata-only changes make new versions; the folder as of an earlier moment is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_record_entries_metadata_and_deletions_as_versions() {
    let world = World::new().await;
    let config = world.agent_config("m", "edge-m", &world.local_station("hot"), "");
    let data = world.data("m");
    std::fs::create_dir_all(data.join("empty/inner")).unwrap();
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/secret.txt"), b"for my eyes only").unwrap();
    std::fs::set_permissions(data.join("docs/secret.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(data.join("docs/report.txt"), b"quarterly").unwrap();
    std::os::unix::fs::symlink("docs/report.txt", data.join("latest")).unwrap();
    std::fs::hard_link(data.join("docs/report.txt"), data.join("docs/report-copy.txt")).unwrap();
    let fifo = data.join("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut agent = Agent::start(&config).await;
    world.completed("edge-m", 1, 60).await;

    let top = eventually("the folder's entries in the catalog", 30, || async {
        let top = listing(&world, "edge-m", &data, "", None).await;
        (top.len() >= 3).then_some(top)
    })
    .await;
    let names: Vec<(&str, i32)> = top.iter().map(|v| (entry(v).path.as_str(), entry(v).kind)).collect();
    assert_eq!(
        names,
        [
            ("docs", pb::EntryKind::Directory as i32),
            ("empty", pb::EntryKind::Directory as i32),
            ("latest", pb::EntryKind::Symlink as i32)
        ],
        "the fifo is not an entry"
    );
    assert_eq!(entry(&top[2]).target, "docs/report.txt");
    let inner = listing(&world, "edge-m", &data, "empty", None).await;
    assert_eq!(inner.iter().map(|v| entry(v).path.as_str()).collect::<Vec<_>>(), ["empty/inner"]);
    let docs = listing(&world, "edge-m", &data, "docs", None).await;
    let by_name = |name: &str| docs.iter().find(|v| entry(v).path == name).map(entry).cloned().expect(name);
    let secret = by_name("docs/secret.txt");
    assert_eq!((secret.kind, secret.mode), (pb::EntryKind::File as i32, 0o600));
    assert_eq!(secret.sha256, sha256_file(&data.join("docs/secret.txt")));
    assert!(!secret.package_id.is_empty());
    // Of a file's two names the first by path holds the bytes, the other is a hardlink to it.
    let primary = by_name("docs/report-copy.txt");
    assert!(primary.kind == pb::EntryKind::File as i32 && !primary.package_id.is_empty(), "{primary:?}");
    let link = by_name("docs/report.txt");
    assert_eq!((link.kind, link.target.as_str()), (pb::EntryKind::Hardlink as i32, "docs/report-copy.txt"));
    let skipped = eventually("the skipped fifo journaled", 30, || async {
        world.journal("folder.entries_skipped").await.into_iter().find(|e| e.source_id == "edge-m")
    })
    .await;
    assert!(skipped.details_json.contains("pipe") && skipped.details_json.contains("fifo"), "{skipped:?}");

    // A moment to come back to, then a chmod and a deletion.
    let before = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::set_permissions(data.join("docs/secret.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::remove_file(data.join("latest")).unwrap();
    std::fs::write(data.join("trigger.txt"), b"a change the watcher sees").unwrap();
    eventually("the symlink's deletion in the catalog", 30, || async {
        let top = listing(&world, "edge-m", &data, "", None).await;
        top.iter().all(|v| entry(v).path != "latest").then_some(())
    })
    .await;
    let request = pb::ListVersionsRequest {
        source_id: "edge-m".into(),
        folder: data.display().to_string().trim_end_matches('/').to_owned(),
        path: "docs/secret.txt".into(),
        page_size: 10,
    };
    let versions = eventually("the chmod as a new version", 30, || {
        let request = request.clone();
        async {
            let v = catalog(&world).await.list_versions(request).await.unwrap().into_inner().versions;
            (v.len() == 2).then_some(v)
        }
    })
    .await;
    assert_eq!(versions.iter().map(|v| entry(v).mode).collect::<Vec<_>>(), [0o640, 0o600], "newest first");
    assert_eq!(entry(&versions[0]).package_id, entry(&versions[1]).package_id, "same bytes, same package");
    assert!(versions[0].until.is_none() && versions[1].until.is_some());
    let then = listing(&world, "edge-m", &data, "", Some(before)).await;
    assert!(then.iter().any(|v| entry(v).path == "latest"), "the symlink is there as of before: {then:?}");
    let c = coverage(&world, "edge-m").await;
    assert_eq!(c.unprotected_files, 0, "{c:?}");
    assert!(agent.terminate().await.success());
}

/// A file whose package could not be stored anywhere is present without a verified copy:
/// coverage names it and `ebk status --check` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_while_a_present_file_has_no_verified_copy() {
    let world = World::new().await;
    let config = world.agent_config("u", "edge-u", &world.local_station("hot"), "");
    let mut agent = Agent::start(&config).await;
    eventually("the agent connected", 30, || async { world.connected("edge-u").await.then_some(()) }).await;
    // The station breaks after the agent checked it: a file where its directory was.
    let station = world.dir.path().join("stations/hot");
    std::fs::remove_dir_all(&station).unwrap();
    std::fs::write(&station, b"a file where the station's directory should be").unwrap();
    std::fs::write(world.data("u").join("orphan.txt"), b"no station will take me").unwrap();
    let c = eventually("the file reported without a copy", 60, || async {
        let c = coverage(&world, "edge-u").await;
        (c.unprotected_files == 1).then_some(c)
    })
    .await;
    assert_eq!(entry(&c.unprotected[0]).path, "orphan.txt");
    assert!(entry(&c.unprotected[0]).package_id.is_empty());
    let check = Spec::new("ebk", world.dir.path())
        .args(["status", "--check", "--format", "ai", "--catcher", &world.catcher.url()])
        .output(30)
        .await;
    assert_eq!(check.status.code(), Some(1), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("unprotected_files=1"));
    assert!(agent.terminate().await.success());
}
