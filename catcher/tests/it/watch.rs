//! The live Watch stream: snapshot, deltas, and a re-sync for a subscriber that fell behind.

use edgebackup_proto::v1 as pb;
use pb::watch_event::Kind;

use crate::harness::{Catcher, TestDb, eventually};

async fn next(s: &mut tonic::Streaming<pb::WatchEvent>) -> Kind {
    tokio::time::timeout(std::time::Duration::from_secs(15), s.message())
        .await
        .expect("watch event in time")
        .unwrap()
        .unwrap()
        .kind
        .unwrap()
}

fn ingest_req(i: usize) -> pb::IngestPackageRequest {
    pb::IngestPackageRequest { source_id: "edge-w".into(), path: format!("f{i}"), size_bytes: 0, ..Default::default() }
}

async fn snapshot_then_deltas(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    let mut w = c.status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let Kind::Snapshot(s) = next(&mut w).await else { panic!("snapshot first") };
    assert!(s.packages.is_empty() && s.rule_sets.len() == 6 && s.status.is_some());
    // The stream names the replica serving it, as GetStatus does.
    let here = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().replica_id;
    assert!(!here.is_empty());
    assert_eq!(s.status.as_ref().unwrap().replica_id, here);

    let id = c.packages.ingest_package(ingest_req(0)).await.unwrap().into_inner().package_id;
    let (mut package, mut journal, mut status, mut source) = (false, false, false, false);
    while !(package && journal && status && source) {
        match next(&mut w).await {
            Kind::PackageChanged(p) if p.package_id == id => package = true,
            // Source deltas carry the live in-flight count, not a placeholder.
            Kind::SourceChanged(s) if s.source_id == "edge-w" && s.in_flight == 1 => source = true,
            Kind::JournalAppended(j) if j.package_id == id => journal = true,
            Kind::StatusChanged(s) if s.statuses.as_ref().is_some_and(|x| x.pending == 1) => {
                assert_eq!(s.replica_id, here, "a status delta names the replica");
                status = true
            }
            _ => {}
        }
    }
    c.packages
        .update_package(pb::UpdatePackageRequest {
            package_id: id.clone(),
            progress_percent: Some(55),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        if let Kind::PackageChanged(p) = next(&mut w).await
            && p.progress_percent == 55
        {
            break;
        }
    }

    // The count is kept incrementally: deletes (which emit no source delta) still count.
    let second = c.packages.ingest_package(ingest_req(1)).await.unwrap().into_inner().package_id;
    c.packages.delete_package(pb::DeletePackageRequest { package_id: id, reason: "test".into() }).await.unwrap();
    c.packages.delete_package(pb::DeletePackageRequest { package_id: second, reason: "test".into() }).await.unwrap();
    for i in 2..5 {
        c.packages.ingest_package(ingest_req(i)).await.unwrap();
    }
    let stored = c.sources.list_sources(pb::ListSourcesRequest::default()).await.unwrap().into_inner().sources;
    assert_eq!(stored[0].in_flight, 3);
    loop {
        if let Kind::SourceChanged(s) = next(&mut w).await
            && s.source_id == "edge-w"
            && s.in_flight >= 3
        {
            assert_eq!(s.in_flight, 3, "live count agrees with the stored packages");
            break;
        }
    }
}

async fn a_lagging_subscriber_is_resynced(db: TestDb) {
    let catcher = Catcher::start_with(&db, &[("CATCHER_WATCH_BUFFER", "16")]).await;
    let mut c = catcher.clients().await;
    // Tiny HTTP/2 windows make the catcher's sends block as soon as we stop reading.
    let slow = tiny_windows(catcher.url(), &catcher.admin_token).await;
    let mut w = pb::status_service_client::StatusServiceClient::new(slow)
        .watch(pb::WatchRequest { package_limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let Kind::Snapshot(_) = next(&mut w).await else { panic!("snapshot first") };
    // Do not read while a burst of changes goes by.
    for i in 0..400 {
        c.packages.ingest_package(ingest_req(i)).await.unwrap();
    }
    let mut latest = None;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(3), w.message()).await {
            Ok(Ok(Some(e))) => {
                if let Some(Kind::Snapshot(s)) = e.kind {
                    latest = Some(s);
                }
            }
            Ok(other) => panic!("watch ended: {other:?}"),
            Err(_) => break, // quiet: caught up
        }
    }
    let s = latest.expect("a subscriber that fell behind gets a fresh snapshot");
    assert_eq!(s.packages.len(), 400, "the re-sync snapshot is complete");
}

crate::both_databases!(snapshot_then_deltas, a_lagging_subscriber_is_resynced);

/// A connection of its own whose HTTP/2 windows are so small that nothing gets through unless
/// read.
async fn tiny_windows(url: String, token: &str) -> edgebackup_common::client::PersonChannel {
    let ch = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    edgebackup_common::client::as_person(ch, Some(token)).unwrap()
}

/// A Watch stream on a connection of its own that the caller never reads.
async fn stalled_watch(url: String, token: String) -> Result<tonic::Streaming<pb::WatchEvent>, tonic::Status> {
    let ch = tiny_windows(url, &token).await;
    let request = pb::WatchRequest { package_limit: 10_000, journal_limit: 1000 };
    pb::status_service_client::StatusServiceClient::new(ch).watch(request).await.map(tonic::Response::into_inner)
}

/// The scenario: 40 Watch streams with package_limit=10000 that never read took the
/// catcher from 17 MB to 822 MB (677 MB after they closed). Now each holds at most one
/// snapshot, one credential at most `watch_streams_per_credential` streams, and all of them
/// together what `watch_total_bytes` allows: the rest are refused, precisely, until the
/// others read or close; and their memory is returned to the system when they close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_subscribers_that_never_read_hold_bounded_memory() {
    /// How far above the baseline the catcher may stay once they closed: its caches, the
    /// reading dashboard's queue, malloc's allowed slack (measured 6-30 MB on 2 cores; before
    /// freed memory was returned it stayed ~135 MB up).
    const RETURNED_WITHIN_KIB: u64 = 48 << 10;
    use prost::Message;
    let db = TestDb::new(crate::harness::Db::Sqlite).await;
    const TOTAL: u64 = 128 << 20;
    let catcher =
        Catcher::start_with(&db, &[("CATCHER_WATCH_BUFFER", "256"), ("CATCHER_WATCH_TOTAL_BYTES", &TOTAL.to_string())])
            .await;
    let c = catcher.clients().await;
    let ingest = |i: usize| pb::IngestPackageRequest {
        source_id: format!("edge-{:02}", i % 40),
        path: format!("/srv/data/projects/2026/customer-{:05}/report-{i:06}.pdf", i % 977),
        size_bytes: 1 << 20,
        sha256: format!("{i:064x}"),
        ..Default::default()
    };
    let mut seeding = tokio::task::JoinSet::new();
    for w in 0..16 {
        let mut packages = c.packages.clone();
        seeding.spawn(async move {
            for i in (w..10_000).step_by(16) {
                packages.ingest_package(ingest(i)).await.unwrap();
            }
        });
    }
    seeding.join_all().await;
    let mut status = c.status.clone();
    let reader = status.watch(pb::WatchRequest { package_limit: 10_000, journal_limit: 1000 }).await.unwrap();
    let first = reader.into_inner().message().await.unwrap().unwrap();
    let snapshot_bytes = first.encoded_len() as u64;
    drop(first);
    let before = catcher.rss_kib();

    let mut tokens = Vec::new();
    for n in 0..5 {
        tokens.push(catcher.person(&format!("wall-{n}"), pb::Role::Viewer).await);
    }
    // One dashboard that reads, throughout.
    let mut reader = c.status.clone().watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    let newest = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = newest.clone();
    let reading = tokio::spawn(async move {
        while let Ok(Some(e)) = reader.message().await {
            let id = match e.kind {
                Some(Kind::PackageChanged(p)) => p.path,
                Some(Kind::Snapshot(s)) => s.packages.first().map(|p| p.path.clone()).unwrap_or_default(),
                _ => continue,
            };
            *seen.lock().unwrap() = id;
        }
    });

    let stall = async |n: usize| {
        let mut opening = tokio::task::JoinSet::new();
        for token in tokens.iter().cycle().take(n).cloned() {
            opening.spawn(stalled_watch(catcher.url(), token));
        }
        let (mut stalled, mut over_total) = (Vec::new(), 0);
        while let Some(r) = opening.join_next().await {
            match r.unwrap() {
                Ok(s) => stalled.push(s),
                Err(e) if e.code() == tonic::Code::ResourceExhausted && e.message().contains("watch_total_bytes") => {
                    over_total += 1;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        (stalled, over_total)
    };
    let (stalled, over_total) = stall(40).await;
    eprintln!("{} stalled subscribers admitted, {over_total} refused over watch_total_bytes", stalled.len());
    assert!(stalled.len() >= 4 && over_total > 0, "{} admitted", stalled.len());
    // Changes go by that none of them reads; the hub laps them.
    for i in 10_000..11_000 {
        c.packages.clone().ingest_package(ingest(i)).await.unwrap();
    }
    let last = ingest(10_999).path;
    eventually("the reading subscriber saw every change", 20, || async {
        (*newest.lock().unwrap() == last).then_some(())
    })
    .await;
    let during = catcher.rss_kib();
    let started = std::time::Instant::now();
    status.get_status(pb::GetStatusRequest {}).await.unwrap();
    let get_status = started.elapsed();
    let grown = during.saturating_sub(before) * 1024;
    eprintln!("snapshot {snapshot_bytes} B; RSS {before} -> {during} KiB with them; GetStatus {get_status:?}");
    // What the total allows (each snapshot counted at its measured cost) and a fixed overhead
    // (database caches, the reading dashboard, runtime).
    let bound = TOTAL + (128 << 20);
    assert!(grown < bound, "grew {grown} B with stalled subscribers; bound {bound} B");
    // A credential holds its share of streams (small ones fit each subscriber's own floor,
    // whatever the total).
    let one = catcher.person("wall-one", pb::Role::Viewer).await;
    let mut eight = Vec::new();
    for _ in 0..8 {
        let ch = catcher.channel_as(Some(&one)).await;
        let mut client = pb::status_service_client::StatusServiceClient::new(ch);
        eight.push(client.watch(pb::WatchRequest::default()).await.expect("within the credential's share"));
    }
    let ch = catcher.channel_as(Some(&one)).await;
    let refused =
        pb::status_service_client::StatusServiceClient::new(ch).watch(pb::WatchRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("per credential"), "{refused:?}");
    drop(eight);

    drop(stalled);
    // Closed streams give their memory back to the system, not only to malloc's free lists
    // (`workers::memory`): RSS returns to about where it was before they came.
    let settled = |what: &'static str| {
        eventually(what, 20, || async {
            let now = catcher.rss_kib();
            (now < before + RETURNED_WITHIN_KIB).then_some(now)
        })
    };
    let mut after = vec![settled("memory returned to the system when they closed").await];
    // Closed streams leave nothing behind: each further round of the same load stays within
    // the bound while it lasts and gives its memory back when it ends.
    let mut peaks = vec![during];
    for _ in 0..3 {
        let (again, _) = stall(40).await;
        assert!(!again.is_empty(), "places and memory are free again");
        let peak = catcher.rss_kib();
        peaks.push(peak);
        assert!(peak.saturating_sub(before) * 1024 < bound, "grew {peak} KiB from {before} KiB in a later round");
        drop(again);
        after.push(settled("memory returned to the system after a further round").await);
    }
    eprintln!("RSS {before} KiB before; with them, per round: {peaks:?} KiB; after they closed: {after:?} KiB");
    reading.abort();
}
