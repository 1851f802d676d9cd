//! The catalog over the real stream and API: folder snapshots become versions (as of a moment,
//! versions of a path, coverage), a package holding a present file cannot be deleted, and bad
//! snapshots or requests are refused naming the field.

use edgebackup_proto::v1 as pb;
use pb::agent_event::Kind;
use pb::catalog_service_client::CatalogServiceClient;

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, TestDb, assert_invalid};

crate::both_databases!(
    snapshots_become_versions_and_bad_ones_are_refused,
    packages_keep_the_agents_times,
    file_names_are_found_across_the_fleet
);

const FOLDER: &str = "/srv/data";
const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 })
}

fn file(path: &str, mode: u32, package_id: &str) -> pb::FileEntry {
    pb::FileEntry {
        path: path.into(),
        kind: pb::EntryKind::File as i32,
        size_bytes: 5,
        sha256: if package_id.is_empty() { String::new() } else { SHA.into() },
        mode,
        modified_at: ts(1_700_000_000_123),
        package_id: package_id.into(),
        ..Default::default()
    }
}

fn snapshot(at: i64, changed: Vec<pb::FileEntry>, deleted: &[&str]) -> Kind {
    Kind::FolderSnapshot(pb::FolderSnapshot {
        folder: FOLDER.into(),
        taken_at: ts(at),
        changed,
        deleted: deleted.iter().map(|d| d.to_string()).collect(),
        last: true,
        ..Default::default()
    })
}

async fn coverage(c: &mut CatalogServiceClient<edgebackup_common::client::PersonChannel>) -> pb::GetCoverageResponse {
    let request = pb::GetCoverageRequest { source_id: "edge-cat".into(), sample: 0 };
    c.get_coverage(request).await.unwrap().into_inner()
}

async fn snapshots_become_versions_and_bad_ones_are_refused(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut catalog = CatalogServiceClient::new(catcher.channel().await);
    let p1 = uuid::Uuid::now_v7().to_string();
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-cat", &[pb::Capability::Backup]).await;
    // Passes ten and nine minutes ago (the agent's clock).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (t1, t2) = (now - 600_000, now - 540_000);
    let dir =
        pb::FileEntry { path: "dir".into(), kind: pb::EntryKind::Directory as i32, mode: 0o750, ..Default::default() };
    let link = pb::FileEntry {
        path: "dir/link".into(),
        kind: pb::EntryKind::Symlink as i32,
        target: "../a.txt".into(),
        mode: 0o777,
        ..Default::default()
    };
    agent.send(1, ingest(&p1, FOLDER, 5, "")).await;
    agent.send(2, complete(&p1, SHA, 5, "hot")).await;
    let ranged = pb::FileEntry {
        range: Some(pb::PackRange { offset: 4096, length: 700, skip: 1024 }),
        ..file("a.txt", 0o600, &p1)
    };
    agent.send(3, snapshot(t1, vec![ranged, dir, link], &[])).await;
    // A chmod (reported without the range: the bytes are where they were) and a deletion a
    // minute later; a part sent twice changes nothing.
    agent.send(4, snapshot(t2, vec![file("a.txt", 0o640, &p1)], &["dir/link"])).await;
    agent.send(5, snapshot(t2, vec![file("a.txt", 0o640, &p1)], &["dir/link"])).await;
    agent.wait_ack(5).await;
    assert!(agent.rejections().is_empty(), "{:?}", agent.rejections());

    let list = |directory: &str, as_of: Option<prost_types::Timestamp>| pb::ListFolderRequest {
        source_id: "edge-cat".into(),
        folder: FOLDER.into(),
        directory: directory.into(),
        as_of,
        ..Default::default()
    };
    let paths = |r: pb::ListFolderResponse| -> Vec<(String, u32)> {
        r.entries.into_iter().map(|v| v.entry.unwrap()).map(|e| (e.path, e.mode)).collect()
    };
    let now = catalog.list_folder(list("", None)).await.unwrap().into_inner();
    assert_eq!(paths(now), [("a.txt".to_owned(), 0o640), ("dir".to_owned(), 0o750)]);
    let then = catalog.list_folder(list("", ts(t1 + 1))).await.unwrap().into_inner();
    assert_eq!(paths(then), [("a.txt".to_owned(), 0o600), ("dir".to_owned(), 0o750)]);
    let inside_then = catalog.list_folder(list("dir", ts(t1 + 1))).await.unwrap().into_inner();
    assert_eq!(inside_then.entries[0].entry.as_ref().unwrap().target, "../a.txt");
    assert!(catalog.list_folder(list("dir", None)).await.unwrap().into_inner().entries.is_empty(), "deleted");
    let before = catalog.list_folder(list("", ts(t1 - 1))).await.unwrap().into_inner();
    assert!(before.entries.is_empty(), "nothing before the first pass");

    let request = pb::ListVersionsRequest {
        source_id: "edge-cat".into(),
        folder: FOLDER.into(),
        path: "a.txt".into(),
        page_size: 0,
    };
    let versions = catalog.list_versions(request).await.unwrap().into_inner().versions;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0].since, ts(t2));
    for v in &versions {
        let range = v.entry.as_ref().unwrap().range;
        assert_eq!(range, Some(pb::PackRange { offset: 4096, length: 700, skip: 1024 }), "where the bytes are");
    }
    assert!(versions[0].until.is_none() && versions[1].until == ts(t2) && !versions[1].deleted);

    // The whole state, a page at a time.
    let state = |token: &str| pb::ListStateRequest {
        source_id: "edge-cat".into(),
        folder: FOLDER.into(),
        page_size: 1,
        page_token: token.into(),
        ..Default::default()
    };
    let first = catalog.list_state(state("")).await.unwrap().into_inner();
    assert_eq!(first.next_page_token, "a.txt");
    let second = catalog.list_state(state(&first.next_page_token)).await.unwrap().into_inner();
    assert_eq!(second.entries[0].entry.as_ref().unwrap().path, "dir");
    assert!(second.next_page_token.is_empty());
    let folders = catalog.list_folders(pb::ListFoldersRequest { source_id: "edge-cat".into() }).await.unwrap();
    assert_eq!(folders.into_inner().folders, [FOLDER]);

    // Covered; then a file no package holds is not.
    let c = coverage(&mut catalog).await;
    assert_eq!((c.present_files, c.unprotected_files), (1, 0));
    agent.send(6, snapshot(t2 + 1000, vec![file("b.txt", 0o644, "")], &[])).await;
    agent.wait_ack(6).await;
    let c = coverage(&mut catalog).await;
    assert_eq!((c.present_files, c.unprotected_files), (2, 1));
    assert_eq!(c.unprotected[0].entry.as_ref().unwrap().path, "b.txt");

    // The package holding a present file's only recorded version cannot be deleted.
    let mut clients = catcher.clients().await;
    let deleted =
        clients.packages.delete_package(pb::DeletePackageRequest { package_id: p1.clone(), reason: "x".into() }).await;
    assert_eq!(deleted.unwrap_err().code(), tonic::Code::FailedPrecondition);

    // Bad snapshots are refused, naming the field, and change nothing.
    let mut bad = vec![
        (snapshot(t2, vec![file("../escape", 0o600, &p1)], &[]), "folder_snapshot.changed[0].path"),
        (
            snapshot(
                t2,
                vec![pb::FileEntry {
                    range: Some(pb::PackRange { offset: u64::MAX, length: 2, skip: 0 }),
                    ..file("a.txt", 0o600, &p1)
                }],
                &[],
            ),
            "folder_snapshot.changed[0].range",
        ),
        (
            snapshot(
                t2,
                vec![pb::FileEntry {
                    range: Some(pb::PackRange { offset: 0, length: 9, skip: 0 }),
                    ..file("n", 0o600, "")
                }],
                &[],
            ),
            "folder_snapshot.changed[0].range",
        ),
        (snapshot(t2, vec![file("x", 0o17777, "")], &[]), "folder_snapshot.changed[0].mode"),
        (snapshot(t2, Vec::new(), &["/abs"]), "folder_snapshot.deleted[0]"),
        (
            snapshot(t2, vec![pb::FileEntry { path: "k".into(), ..Default::default() }], &[]),
            "folder_snapshot.changed[0].kind",
        ),
        (
            Kind::FolderSnapshot(pb::FolderSnapshot {
                folder: "relative".into(),
                taken_at: ts(t2),
                ..Default::default()
            }),
            "folder_snapshot.folder",
        ),
        (
            Kind::FolderSnapshot(pb::FolderSnapshot { folder: FOLDER.into(), ..Default::default() }),
            "folder_snapshot.taken_at",
        ),
    ];
    let mut thief = ScriptedAgent::enroll(&catcher, "edge-thief", &[pb::Capability::Backup]).await;
    bad.push((snapshot(t2, vec![file("stolen", 0o600, &p1)], &[]), "folder_snapshot.changed[0].package_id"));
    let n = bad.len() as u64;
    for (i, (kind, _)) in bad.iter().enumerate() {
        thief.send(i as u64 + 1, kind.clone()).await;
    }
    thief.wait_ack(n).await;
    let rejected = thief.rejections();
    assert_eq!(rejected.len(), bad.len(), "{rejected:?}");
    for (r, (_, field)) in rejected.iter().zip(&bad) {
        assert!(r.message.starts_with(&format!("{field}:")), "expected {field}: {r:?}");
    }
    let folders = catalog.list_folders(pb::ListFoldersRequest { source_id: "edge-thief".into() }).await.unwrap();
    assert!(folders.into_inner().folders.is_empty(), "a refused part recorded nothing");

    // Bad requests, too.
    let mut r = list("", None);
    r.folder = "relative".into();
    assert_invalid(catalog.list_folder(r).await, "folder");
    let mut r = list("../up", None);
    r.page_size = 5;
    assert_invalid(catalog.list_folder(r).await, "directory");
    let mut r = list("", None);
    r.page_size = 20_000;
    assert_invalid(catalog.list_folder(r).await, "page_size");
    let request = pb::ListVersionsRequest { source_id: "edge-cat".into(), folder: FOLDER.into(), ..Default::default() };
    assert_invalid(catalog.list_versions(request).await, "path");
    let request = pb::ListStateRequest { folder: FOLDER.into(), ..Default::default() };
    assert_invalid(catalog.list_state(request).await, "source_id");
}

/// Packages carry the agent's times (made an hour ago, sent after an outage), never the
/// catcher's receipt time, and never a time ahead of the catcher's.
async fn packages_keep_the_agents_times(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut clients = catcher.clients().await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-late", &[pb::Capability::Backup]).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (old, future) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    agent.send_at(1, ts(now - 3_600_000), ingest(&old, FOLDER, 5, "")).await;
    agent.send_at(2, ts(now - 3_540_000), complete(&old, SHA, 5, "hot")).await;
    agent.send_at(3, ts(now + 86_400_000), ingest(&future, FOLDER, 5, "")).await;
    agent.send_at(4, ts(now + 86_400_000), complete(&future, SHA, 5, "hot")).await;
    agent.wait_ack(4).await;
    let get = |id: &str| pb::GetPackageRequest { package_id: id.into(), ..Default::default() };
    let p = clients.packages.get_package(get(&old)).await.unwrap().into_inner();
    assert_eq!(p.created_at, ts(now - 3_600_000));
    assert_eq!(p.completed_at, ts(now - 3_540_000));
    assert_eq!(p.tier_entered_at, ts(now - 3_540_000), "tier waits count from when the agent finished");
    let f = clients.packages.get_package(get(&future)).await.unwrap().into_inner();
    let millis =
        |t: Option<prost_types::Timestamp>| t.map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)).unwrap();
    assert!(millis(f.created_at) <= now + 60_000 && millis(f.completed_at) <= now + 60_000, "clamped: {f:?}");
}

/// SearchFiles: a substring of the path, case-insensitive, in one source or every one; deleted
/// entries on request; LIKE's wildcards taken literally; pages that walk every match once.
async fn file_names_are_found_across_the_fleet(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut catalog = CatalogServiceClient::new(catcher.channel().await);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let p1 = uuid::Uuid::now_v7().to_string();
    let mut one = ScriptedAgent::enroll(&catcher, "edge-s1", &[pb::Capability::Backup]).await;
    one.send(1, ingest(&p1, FOLDER, 5, "")).await;
    one.send(2, complete(&p1, SHA, 5, "hot")).await;
    let names =
        ["docs/Report-2026.pdf", "docs/notes.txt", "img/100%_done.png", "img/1000_done.png", "a_b.txt", "axb.txt"];
    one.send(3, snapshot(now - 60_000, names.iter().map(|n| file(n, 0o644, &p1)).collect(), &[])).await;
    one.send(4, snapshot(now - 30_000, Vec::new(), &["docs/notes.txt"])).await;
    one.wait_ack(4).await;
    let p2 = uuid::Uuid::now_v7().to_string();
    let mut two = ScriptedAgent::enroll(&catcher, "edge-s2", &[pb::Capability::Backup]).await;
    two.send(1, ingest(&p2, FOLDER, 5, "")).await;
    two.send(2, complete(&p2, SHA, 5, "hot")).await;
    two.send(3, snapshot(now - 60_000, vec![file("REPORT.md", 0o600, &p2)], &[])).await;
    two.wait_ack(3).await;
    assert!(one.rejections().is_empty() && two.rejections().is_empty());

    let search = |source: &str, query: &str, deleted: bool| pb::SearchFilesRequest {
        source_id: source.into(),
        query: query.into(),
        include_deleted: deleted,
        ..Default::default()
    };
    let found = |r: pb::SearchFilesResponse| -> Vec<(String, String, bool)> {
        r.matches.into_iter().map(|v| (v.source_id, v.entry.unwrap().path, v.deleted)).collect()
    };
    let fleet = catalog.search_files(search("", "report", false)).await.unwrap().into_inner();
    assert_eq!(
        found(fleet),
        [("edge-s1".into(), "docs/Report-2026.pdf".into(), false), ("edge-s2".into(), "REPORT.md".into(), false)]
    );
    let only = catalog.search_files(search("edge-s2", "rep", false)).await.unwrap().into_inner();
    assert_eq!(found(only).len(), 1);
    assert!(catalog.search_files(search("", "notes", false)).await.unwrap().into_inner().matches.is_empty());
    let gone = catalog.search_files(search("edge-s1", "notes", true)).await.unwrap().into_inner();
    assert_eq!(found(gone), [("edge-s1".into(), "docs/notes.txt".into(), true)], "its last version, marked deleted");
    let percent = catalog.search_files(search("", "100%_", false)).await.unwrap().into_inner();
    assert_eq!(found(percent).len(), 1, "% and _ are literal");
    let under = catalog.search_files(search("", "a_b", false)).await.unwrap().into_inner();
    assert_eq!(found(under), [("edge-s1".into(), "a_b.txt".into(), false)]);

    // Pages of one walk every match exactly once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::SearchFilesRequest { page_size: 2, page_token: token, ..search("", ".t", true) };
        let page = catalog.search_files(request).await.unwrap().into_inner();
        token = page.next_page_token.clone();
        seen.extend(found(page).into_iter().map(|(s, p, _)| format!("{s}:{p}")));
        if token.is_empty() {
            break;
        }
    }
    let all = found(catalog.search_files(search("", ".t", true)).await.unwrap().into_inner());
    assert_eq!(seen, all.into_iter().map(|(s, p, _)| format!("{s}:{p}")).collect::<Vec<_>>());
    assert_eq!(seen.len(), 3, "{seen:?}");

    assert_invalid(catalog.search_files(search("", "x", false)).await, "query");
    assert_invalid(catalog.search_files(search("", &"y".repeat(257), false)).await, "query");
    assert_invalid(catalog.search_files(search("bad\u{1}id", "report", false)).await, "source_id");
    let r = pb::SearchFilesRequest { page_token: "garbage".into(), ..search("", "report", false) };
    assert_invalid(catalog.search_files(r).await, "page_token");
    let r = pb::SearchFilesRequest { page_size: 5000, ..search("", "report", false) };
    assert_invalid(catalog.search_files(r).await, "page_size");
}
