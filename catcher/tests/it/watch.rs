//! The live Watch stream: snapshot, deltas, and a re-sync for a subscriber that fell behind.

use edgebackup_proto::v1 as pb;
use pb::watch_event::Kind;

use crate::harness::{Catcher, TestDb};

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

    let id = c.packages.ingest_package(ingest_req(0)).await.unwrap().into_inner().package_id;
    let (mut package, mut journal, mut status, mut source) = (false, false, false, false);
    while !(package && journal && status && source) {
        match next(&mut w).await {
            Kind::PackageChanged(p) if p.package_id == id => package = true,
            // Source deltas carry the live in-flight count, not a placeholder.
            Kind::SourceChanged(s) if s.source_id == "edge-w" && s.in_flight == 1 => source = true,
            Kind::JournalAppended(j) if j.package_id == id => journal = true,
            Kind::StatusChanged(s) if s.statuses.as_ref().is_some_and(|x| x.pending == 1) => status = true,
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
    let slow = tonic::transport::Endpoint::from_shared(catcher.url())
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let slow = edgebackup_common::client::as_person(slow, Some(&catcher.admin_token)).unwrap();
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
