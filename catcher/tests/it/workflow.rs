//! The seed prototype's whole workflow through the gRPC API, on SQLite and PostgreSQL.

use edgebackup_proto::v1 as pb;
use sha2::Digest;
use tonic::Code;

use crate::harness::{Catcher, TestDb, assert_invalid};

/// The seed's mock-data manifest, copied into tests/fixtures.
fn manifest() -> Vec<(String, u64, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mock-data/MANIFEST.json"))
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["size_bytes"].as_u64().unwrap(),
                f["checksum"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn days(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: n * 86_400, nanos: 0 })
}

async fn seed_workflow(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;

    // register
    let src = c
        .sources
        .register_source(pb::RegisterSourceRequest { source_id: "edge-01".into(), label: "Front desk".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((src.source_id.as_str(), src.label.as_str(), src.connected), ("edge-01", "Front desk", false));

    // ingest the mock-data manifest
    let mut ids = Vec::new();
    for (path, size, sha) in manifest() {
        let r = c
            .packages
            .ingest_package(pb::IngestPackageRequest {
                source_id: "edge-01".into(),
                path: format!("mock-data/{path}"),
                size_bytes: size,
                sha256: sha.clone(),
                package_type: pb::PackageType::UserData as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.created);
        assert_eq!(r.package.as_ref().unwrap().status, pb::PackageStatus::Pending as i32);
        ids.push((r.package_id, size, sha));
    }
    // idempotent replay of the same package id
    let again = c
        .packages
        .ingest_package(pb::IngestPackageRequest {
            source_id: "edge-01".into(),
            package_id: ids[0].0.clone(),
            path: "mock-data/sample.txt".into(),
            size_bytes: ids[0].1,
            sha256: ids[0].2.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);

    // progress, then complete all but the last, which fails
    for (i, (id, _, sha)) in ids.iter().enumerate() {
        let p = c
            .packages
            .update_package(pb::UpdatePackageRequest {
                package_id: id.clone(),
                progress_percent: Some(40),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((p.status, p.progress_percent), (pb::PackageStatus::InProgress as i32, 40));
        let backwards = c
            .packages
            .update_package(pb::UpdatePackageRequest {
                package_id: id.clone(),
                progress_percent: Some(10),
                ..Default::default()
            })
            .await;
        assert_invalid(backwards, "progress_percent");
        if i + 1 < ids.len() {
            let completed = |placements: Vec<pb::PlacementReport>| pb::UpdatePackageRequest {
                package_id: id.clone(),
                progress_percent: Some(100),
                sha256: Some(sha.clone()),
                status: Some(pb::PackageStatus::Completed as i32),
                placements,
                ..Default::default()
            };
            // Completed means stored: without a verified copy it is refused and nothing changes.
            let failed = pb::PlacementReport {
                station_id: "hot-1".into(),
                status: pb::PlacementStatus::Failed as i32,
                error: "disk full".into(),
                ..Default::default()
            };
            for placements in [Vec::new(), vec![failed]] {
                let refused = c.packages.update_package(completed(placements)).await.unwrap_err();
                assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
                assert!(refused.message().starts_with("placements: no verified copy"), "{refused:?}");
                assert_eq!(c.package(id).await.status, pb::PackageStatus::InProgress as i32);
            }
            let verified = pb::PlacementReport {
                station_id: "hot-1".into(),
                status: pb::PlacementStatus::Verified as i32,
                verified_sha256: sha.clone(),
                error: String::new(),
            };
            let done = c.packages.update_package(completed(vec![verified])).await.unwrap().into_inner();
            assert_eq!(done.status, pb::PackageStatus::Completed as i32);
            assert_eq!(done.tier, pb::Tier::Hot as i32);
            assert!(done.next_transition_at.is_some());
        }
    }
    let (last_id, _, _) = ids.last().unwrap().clone();
    // completing with another checksum is a precondition failure and changes nothing
    let wrong = c
        .packages
        .update_package(pb::UpdatePackageRequest {
            package_id: last_id.clone(),
            sha256: Some("0".repeat(64)),
            status: Some(pb::PackageStatus::Completed as i32),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition, "{wrong:?}");
    let failed = c
        .packages
        .update_package(pb::UpdatePackageRequest {
            package_id: last_id.clone(),
            status: Some(pb::PackageStatus::Failed as i32),
            error: Some("disk full".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((failed.status, failed.last_error.as_str()), (pb::PackageStatus::Failed as i32, "disk full"));

    // packages: filters and pagination
    let all = c
        .packages
        .list_packages(pb::ListPackagesRequest { page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.packages.len(), 2);
    let mut seen: Vec<String> = all.packages.iter().map(|p| p.package_id.clone()).collect();
    let mut token = all.next_page_token;
    while !token.is_empty() {
        let page = c
            .packages
            .list_packages(pb::ListPackagesRequest { page_size: 2, page_token: token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.packages.iter().map(|p| p.package_id.clone()));
        token = page.next_page_token;
    }
    let mut expected: Vec<String> = ids.iter().map(|i| i.0.clone()).collect();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "pages cover every package once, newest first");
    let completed = c
        .packages
        .list_packages(pb::ListPackagesRequest { status: pb::PackageStatus::Completed as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.packages.len(), ids.len() - 1);
    let hot = c
        .packages
        .list_packages(pb::ListPackagesRequest {
            tier: pb::Tier::Hot as i32,
            source_id: "edge-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hot.packages.len(), ids.len() - 1);
    let none = c
        .packages
        .list_packages(pb::ListPackagesRequest { package_type: pb::PackageType::Cache as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(none.packages.is_empty());
    let got = c.package(&ids[0].0.clone()).await;
    assert_eq!(got.sha256, ids[0].2);

    // tiers: counted incrementally
    let tiers = c.status.get_tier_summary(pb::GetTierSummaryRequest { samples: 3 }).await.unwrap().into_inner();
    let hot = tiers.tiers.iter().find(|t| t.stats.as_ref().unwrap().tier == pb::Tier::Hot as i32).unwrap();
    let total_bytes: u64 = manifest()[..ids.len() - 1].iter().map(|m| m.1).sum();
    assert_eq!(hot.stats.as_ref().unwrap().package_count, ids.len() as u64 - 1);
    assert_eq!(hot.stats.as_ref().unwrap().total_bytes, total_bytes);
    assert_eq!(hot.samples.len(), 3);

    // sources
    let sources = c.sources.list_sources(pb::ListSourcesRequest {}).await.unwrap().into_inner().sources;
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].in_flight, 1, "the failed package is still in flight");

    // rules: invalid updates rejected with the field, valid one accepted and snapshotted
    let rules = c.policy.list_rule_sets(pb::ListRuleSetsRequest {}).await.unwrap().into_inner().rule_sets;
    assert_eq!(rules.len(), 6);
    let mut user = *rules.iter().find(|r| r.package_type == pb::PackageType::UserData as i32).unwrap();
    assert_eq!(user.hot.as_ref().unwrap().wait, days(7));
    let snapshots_before = c.snapshot_count().await;
    let mut bad = user;
    bad.warm.as_mut().unwrap().enabled = false;
    assert_invalid(c.update_rules(bad).await, "rule_set.cold.enabled");
    let mut bad = user;
    bad.hot.as_mut().unwrap().wait = Some(prost_types::Duration { seconds: 0, nanos: 0 });
    assert_invalid(c.update_rules(bad).await, "rule_set.hot.wait");
    let mut bad = user;
    bad.cold.as_mut().unwrap().never_delete = true;
    assert_invalid(c.update_rules(bad).await, "rule_set.cold.never_delete");
    let mut bad = user;
    bad.offsite = None;
    assert_invalid(c.update_rules(bad).await, "rule_set.offsite");
    let mut cache = *rules.iter().find(|r| r.package_type == pb::PackageType::Cache as i32).unwrap();
    cache.cache_ttl = Some(prost_types::Duration { seconds: 0, nanos: 0 });
    assert_invalid(c.update_rules(cache).await, "rule_set.cache_ttl");
    let after_rejects = c.snapshot_count().await;
    assert_eq!(after_rejects, snapshots_before, "rejected updates write nothing");

    user.hot.as_mut().unwrap().wait = days(2);
    let updated = c
        .policy
        .update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(user), reason: "shorter hot stay".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.replanned_packages, ids.len() as u64 - 1);
    let first = c.package(&ids[0].0.clone()).await;
    let stay = first.next_transition_at.unwrap().seconds - first.tier_entered_at.unwrap().seconds;
    assert_eq!(stay, 2 * 86_400, "packages are re-planned with the new wait");

    // snapshots: list, get, export, restore
    let snaps =
        c.policy.list_config_snapshots(pb::ListConfigSnapshotsRequest::default()).await.unwrap().into_inner().snapshots;
    assert_eq!(snaps.len(), snapshots_before + 1);
    assert_eq!(snaps[0].snapshot_id, updated.snapshot_id);
    let initial = snaps.last().unwrap().snapshot_id;
    let got =
        c.policy.get_config_snapshot(pb::GetConfigSnapshotRequest { snapshot_id: initial }).await.unwrap().into_inner();
    assert_eq!(got.rule_sets.len(), 6);
    let export = c
        .policy
        .export_config_snapshot(pb::ExportConfigSnapshotRequest { snapshot_id: initial })
        .await
        .unwrap()
        .into_inner();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(export.config_json.as_bytes())), export.sha256);
    let restored = c
        .policy
        .restore_config_snapshot(pb::RestoreConfigSnapshotRequest { snapshot_id: initial, reason: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(restored.snapshot_id > updated.snapshot_id);
    let user_now = c
        .policy
        .get_rule_set(pb::GetRuleSetRequest { package_type: pb::PackageType::UserData as i32 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user_now.hot.unwrap().wait, days(7), "restore brings the old rules back");
    let missing = c
        .policy
        .restore_config_snapshot(pb::RestoreConfigSnapshotRequest { snapshot_id: 9999, reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // presets
    let presets = c.policy.list_presets(pb::ListPresetsRequest {}).await.unwrap().into_inner().presets;
    assert_eq!(presets.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["cloud", "onprem", "cost", "demo"]);
    assert_invalid(
        c.policy.apply_preset(pb::ApplyPresetRequest { name: "fastest".into(), reason: String::new() }).await,
        "name",
    );

    // journal: events recorded, restore journaled, chain verifies
    let journal = c
        .journal
        .query_journal(pb::QueryJournalRequest { limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let types: Vec<&str> = journal.iter().map(|e| e.event_type.as_str()).collect();
    for t in [
        "source.registered",
        "package.ingested",
        "package.started",
        "package.completed",
        "package.failed",
        "rules.updated",
        "config.restored",
        "config.snapshot",
    ] {
        assert!(types.contains(&t), "journal has {t}: {types:?}");
    }
    // every event carries its typed kind; the typed filter and the spelled one agree
    assert!(journal.iter().all(|e| e.r#type != pb::JournalEventType::Unspecified as i32), "typed: {types:?}");
    let query = |q: pb::QueryJournalRequest| {
        let mut j = c.journal.clone();
        async move { j.query_journal(q).await.map(|r| r.into_inner().events) }
    };
    let typed = query(pb::QueryJournalRequest {
        r#type: pb::JournalEventType::PackageCompleted as i32,
        limit: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let spelled =
        query(pb::QueryJournalRequest { event_type: "package.completed".into(), limit: 1000, ..Default::default() })
            .await
            .unwrap();
    assert!(!typed.is_empty() && typed.iter().all(|e| e.event_type == "package.completed"));
    assert_eq!(typed.len(), spelled.len());
    // Packages ingested and completed by hand are journaled as the person who did it.
    let ingested =
        query(pb::QueryJournalRequest { event_type: "package.ingested".into(), limit: 1000, ..Default::default() })
            .await
            .unwrap();
    for e in typed.iter().chain(&ingested) {
        assert_eq!(e.actor, "token:admin (admin)", "{e:?}");
    }
    let unknown =
        query(pb::QueryJournalRequest { event_type: "source.safety_stopped".into(), ..Default::default() }).await;
    assert_invalid(unknown, "event_type");
    assert_eq!(
        types.iter().filter(|t| **t == "package.ingested").count(),
        ids.len(),
        "the replayed ingest was not journaled twice"
    );
    let for_pkg = c
        .journal
        .query_journal(pb::QueryJournalRequest { package_id: ids[0].0.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(for_pkg.iter().all(|e| e.package_id == ids[0].0) && for_pkg.len() >= 3);
    let mut export = c.journal.export_journal(pb::ExportJournalRequest::default()).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(e) = export.message().await.unwrap() {
        n += 1;
        assert_eq!(e.sequence, n);
    }
    assert_eq!(n as usize, journal.len());
    let verify = c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner();
    assert!(verify.ok, "{verify:?}");
    assert_eq!(verify.checked, n);

    // resume list: the failed package
    let resume = c
        .packages
        .get_resume_list(pb::GetResumeListRequest { source_id: "edge-01".into() })
        .await
        .unwrap()
        .into_inner()
        .packages;
    assert_eq!(resume.iter().map(|p| p.package_id.clone()).collect::<Vec<_>>(), vec![last_id.clone()]);

    // projections: everything completed leaves hot for warm within 8 days, none within 1 day
    let p = c
        .status
        .get_projections(pb::GetProjectionsRequest { days: 8, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.groups.len(), 1);
    assert_eq!((p.groups[0].from_tier, p.groups[0].to_tier), (pb::Tier::Hot as i32, pb::Tier::Warm as i32));
    assert_eq!(p.groups[0].count, ids.len() as u64 - 1);
    assert_eq!(p.groups[0].package_ids.len(), ids.len() - 1);
    let p = c
        .status
        .get_projections(pb::GetProjectionsRequest { days: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(p.groups.is_empty());
    assert_invalid(c.status.get_projections(pb::GetProjectionsRequest::default()).await, "days");

    // status
    let s = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!((s.clients_total, s.clients_connected), (1, 0));
    let st = s.statuses.unwrap();
    assert_eq!((st.completed, st.failed), (ids.len() as u64 - 1, 1));
    assert_eq!(s.journal_head, n);
    assert_eq!(s.database, if db.url.starts_with("sqlite") { "sqlite" } else { "postgres" });
    // Per-type cells add up to their tier, exactly.
    assert!(!s.type_tiers.is_empty());
    for t in &s.tiers {
        let cells = s.type_tiers.iter().filter(|c| c.tier == t.tier);
        let (n, bytes) = cells.fold((0, 0), |(n, b), c| (n + c.package_count, b + c.total_bytes));
        assert_eq!((n, bytes), (t.package_count, t.total_bytes), "tier {:?}", t.tier);
    }

    // delete
    c.packages
        .delete_package(pb::DeletePackageRequest { package_id: last_id.clone(), reason: "test".into() })
        .await
        .unwrap();
    let gone =
        c.packages.get_package(pb::GetPackageRequest { package_id: last_id, ..Default::default() }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let s = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(s.statuses.unwrap().failed, 0, "counters follow deletions");
}

/// Bad input of every kind: InvalidArgument naming the field, and nothing written.
async fn bad_input_changes_nothing(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    let head = || async {
        catcher.clients().await.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().journal_head
    };
    let before = head().await;
    let sha = "a".repeat(64);
    let ingest = |f: &dyn Fn(&mut pb::IngestPackageRequest)| {
        let mut r = pb::IngestPackageRequest {
            source_id: "s".into(),
            path: "p".into(),
            size_bytes: 1,
            sha256: sha.clone(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.source_id.clear())).await, "source_id");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.source_id = "x".repeat(257))).await, "source_id");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.path.clear())).await, "path");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.path = "p".repeat(1025))).await, "path");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.sha256.clear())).await, "sha256");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.sha256 = "ABC".into())).await, "sha256");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.sha256 = "A".repeat(64))).await, "sha256");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.package_type = 42)).await, "package_type");
    assert_invalid(c.packages.ingest_package(ingest(&|r| r.package_id = "not-a-uuid".into())).await, "package_id");
    assert_invalid(
        c.packages.update_package(pb::UpdatePackageRequest { package_id: String::new(), ..Default::default() }).await,
        "package_id",
    );
    let missing = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        c.packages
            .update_package(pb::UpdatePackageRequest {
                package_id: missing.clone(),
                progress_percent: Some(5),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_invalid(
        c.packages
            .update_package(pb::UpdatePackageRequest {
                package_id: missing,
                progress_percent: Some(101),
                ..Default::default()
            })
            .await,
        "progress_percent",
    );
    assert_invalid(
        c.packages.list_packages(pb::ListPackagesRequest { page_size: 1001, ..Default::default() }).await,
        "page_size",
    );
    assert_invalid(
        c.packages.list_packages(pb::ListPackagesRequest { page_token: "garbage".into(), ..Default::default() }).await,
        "page_token",
    );
    assert_invalid(c.packages.list_packages(pb::ListPackagesRequest { tier: 9, ..Default::default() }).await, "tier");
    assert_invalid(
        c.sources.register_source(pb::RegisterSourceRequest { source_id: String::new(), label: String::new() }).await,
        "source_id",
    );
    assert_invalid(
        c.sources
            .create_command(pb::CreateCommandRequest { source_id: "s".into(), kind: 0, ..Default::default() })
            .await,
        "kind",
    );
    assert_invalid(
        c.policy.update_rule_set(pb::UpdateRuleSetRequest { rule_set: None, reason: String::new() }).await,
        "rule_set",
    );
    assert_invalid(c.policy.get_rule_set(pb::GetRuleSetRequest { package_type: 0 }).await, "package_type");
    assert_invalid(c.policy.get_config_snapshot(pb::GetConfigSnapshotRequest { snapshot_id: 0 }).await, "snapshot_id");
    assert_invalid(
        c.journal.query_journal(pb::QueryJournalRequest { package_id: "x".into(), ..Default::default() }).await,
        "package_id",
    );
    assert_invalid(
        c.status.get_projections(pb::GetProjectionsRequest { days: 4000, ..Default::default() }).await,
        "days",
    );
    assert_invalid(c.status.get_tier_summary(pb::GetTierSummaryRequest { samples: 51 }).await, "samples");
    // an oversized message is refused before it reaches a handler, and the catcher keeps serving
    let huge = c.packages.ingest_package(ingest(&|r| r.path = "p".repeat(5 * 1024 * 1024))).await.unwrap_err();
    assert_ne!(huge.code(), Code::Ok);
    assert_eq!(head().await, before, "rejected input wrote nothing");
    let s = c.sources.list_sources(pb::ListSourcesRequest {}).await.unwrap().into_inner();
    assert!(s.sources.is_empty());
}

/// `path_prefix` is a literal, case-sensitive prefix: LIKE's wildcards in it match themselves.
async fn path_prefix_is_literal(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    for path in ["/x_y/f", "/xzy/f", "/X_y/g", "/x%/h", "/xa/h", "/x\\z/i"] {
        let request = pb::IngestPackageRequest { source_id: "edge-p".into(), path: path.into(), ..Default::default() };
        c.packages.ingest_package(request).await.unwrap();
    }
    for (prefix, want) in [
        ("/x_y", vec!["/x_y/f"]),
        ("/x%", vec!["/x%/h"]),
        ("/x\\", vec!["/x\\z/i"]),
        ("/x", vec!["/x%/h", "/x\\z/i", "/x_y/f", "/xa/h", "/xzy/f"]),
    ] {
        let request = pb::ListPackagesRequest { path_prefix: prefix.into(), ..Default::default() };
        let list = c.packages.list_packages(request).await.unwrap().into_inner();
        let mut got: Vec<String> = list.packages.into_iter().map(|p| p.path).collect();
        got.sort();
        assert_eq!(got, want, "prefix {prefix}");
    }
}

/// The dashboard's search box asks the catcher: id or checksum prefix, source, path substring
/// (case-insensitive, wildcards literal), paged like any listing; the journal's text search too.
async fn search_finds_packages_and_events_the_page_does_not_hold(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    let mut ids = Vec::new();
    for (source, path) in [("edge-a", "/srv/Audit_Logs/2026"), ("edge-b", "/srv/audit%/x"), ("edge-c", "/home/notes")] {
        let request = pb::IngestPackageRequest {
            source_id: source.into(),
            path: path.into(),
            size_bytes: 1,
            sha256: sha2::Sha256::digest(path.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
            ..Default::default()
        };
        ids.push(c.packages.ingest_package(request).await.unwrap().into_inner().package);
    }
    let search = |query: &str, page_size: u32, page_token: String| pb::ListPackagesRequest {
        query: query.into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let found = |list: pb::ListPackagesResponse| {
        let mut paths: Vec<String> = list.packages.into_iter().map(|p| p.path).collect();
        paths.sort();
        paths
    };
    let list = |q: &str| {
        let mut packages = c.packages.clone();
        let request = search(q, 0, String::new());
        async move { found(packages.list_packages(request).await.unwrap().into_inner()) }
    };
    let notes = ids[2].as_ref().unwrap();
    assert_eq!(list(&notes.package_id).await, ["/home/notes"], "a whole id");
    assert_eq!(list(&notes.package_id[..13].to_uppercase()).await, ["/home/notes"], "an id prefix, any case");
    assert_eq!(list(&notes.sha256[..12]).await, ["/home/notes"], "a checksum prefix");
    assert_eq!(list("edge-b").await, ["/srv/audit%/x"], "a source");
    assert_eq!(list("AUDIT").await, ["/srv/Audit_Logs/2026", "/srv/audit%/x"], "a path word, any case");
    assert_eq!(list("audit%").await, ["/srv/audit%/x"], "% is literal");
    assert_eq!(list("t_l").await, ["/srv/Audit_Logs/2026"], "_ is literal");
    assert!(list("nothing-like-it").await.is_empty());
    // Paging through a search makes progress and ends.
    let first = c.packages.list_packages(search("/srv", 1, String::new())).await.unwrap().into_inner();
    assert_eq!(first.packages.len(), 1);
    let second = c.packages.list_packages(search("/srv", 1, first.next_page_token.clone())).await.unwrap().into_inner();
    assert_eq!(second.packages.len(), 1);
    assert_ne!(first.packages[0].package_id, second.packages[0].package_id);
    assert!(second.next_page_token.is_empty(), "two matches, two pages: {second:?}");
    // Bad search text is refused with the field named.
    let blank = c.packages.list_packages(search("   ", 0, String::new())).await.unwrap_err();
    assert_eq!((blank.code(), blank.message().contains("query")), (Code::InvalidArgument, true), "{blank:?}");
    let long = c.packages.list_packages(search(&"x".repeat(257), 0, String::new())).await.unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);

    // The journal: "rules" finds rules.* events by a part of their type; "edge-b" its events.
    let preset = pb::ApplyPresetRequest { name: "demo".into(), ..Default::default() };
    c.policy.apply_preset(preset).await.unwrap();
    let text = |t: &str| pb::QueryJournalRequest { text: t.into(), ..Default::default() };
    let events = c.journal.query_journal(text("RULES")).await.unwrap().into_inner().events;
    assert!(!events.is_empty() && events.iter().all(|e| e.event_type.starts_with("rules.")), "{events:?}");
    let events = c.journal.query_journal(text("edge-b")).await.unwrap().into_inner().events;
    assert!(!events.is_empty() && events.iter().all(|e| e.source_id == "edge-b"), "{events:?}");
    let bad = c.journal.query_journal(text(&"y".repeat(300))).await.unwrap_err();
    assert_eq!((bad.code(), bad.message().contains("text")), (Code::InvalidArgument, true), "{bad:?}");
}

crate::both_databases!(
    seed_workflow,
    bad_input_changes_nothing,
    path_prefix_is_literal,
    search_finds_packages_and_events_the_page_does_not_hold
);
