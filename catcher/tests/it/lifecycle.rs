//! The scheduler moves packages through the tiers as metadata (no stations configured).

use edgebackup_proto::v1 as pb;

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, TestDb, eventually};

fn secs(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: n, nanos: 0 })
}

fn stop(enabled: bool, wait: i64) -> Option<pb::Stop> {
    Some(pb::Stop { enabled, wait: enabled.then(|| secs(wait)).flatten(), never_delete: false })
}

async fn package_of(c: &mut crate::harness::Clients, id: &str) -> pb::Package {
    c.packages
        .get_package(pb::GetPackageRequest { package_id: id.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

async fn tiers_advance_and_expire(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    let fast = pb::RuleSet {
        package_type: pb::PackageType::UserData as i32,
        hot: stop(true, 1),
        warm: stop(true, 1),
        cold: stop(true, 1),
        offsite: stop(true, 1),
        ..Default::default()
    };
    c.policy.update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(fast), reason: "fast".into() }).await.unwrap();
    let forever = pb::RuleSet {
        package_type: pb::PackageType::AuditLogs as i32,
        hot: stop(false, 0),
        warm: stop(true, 1),
        cold: stop(true, 1),
        offsite: Some(pb::Stop { enabled: true, wait: None, never_delete: true }),
        ..Default::default()
    };
    c.policy
        .update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(forever), reason: "forever".into() })
        .await
        .unwrap();
    let cache = pb::RuleSet { package_type: pb::PackageType::Cache as i32, cache_ttl: secs(1), ..Default::default() };
    c.policy.update_rule_set(pb::UpdateRuleSetRequest { rule_set: Some(cache), reason: "ttl".into() }).await.unwrap();

    let agent = ScriptedAgent::enroll(&catcher, "edge-life", &[]).await;
    let mut agent = agent;
    let sha = "b".repeat(64);
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let types = [pb::PackageType::UserData, pb::PackageType::AuditLogs, pb::PackageType::Cache];
    let mut seq = 0;
    for (id, t) in ids.iter().zip(types) {
        let mut k = ingest(id, "f", 10, &sha);
        if let pb::agent_event::Kind::Ingest(i) = &mut k {
            i.package_type = t as i32;
        }
        seq += 1;
        agent.send(seq, k).await;
        seq += 1;
        agent.send(seq, complete(id, &sha, 10, "hot-1")).await;
    }
    agent.wait_ack(seq).await;
    let user = package_of(&mut c, &ids[0]).await;
    assert_eq!(user.tier, pb::Tier::Hot as i32);
    let audit = package_of(&mut c, &ids[1]).await;
    assert_eq!(audit.tier, pb::Tier::Warm as i32, "audit_logs skip hot");

    // projections over the next 10 s include the hot -> warm move of the user package
    let proj = c
        .status
        .get_projections(pb::GetProjectionsRequest { window: secs(10), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let hot_warm =
        proj.groups.iter().find(|g| g.from_tier == pb::Tier::Hot as i32 && g.to_tier == pb::Tier::Warm as i32);
    assert!(hot_warm.is_some_and(|g| g.package_ids.contains(&ids[0])), "{proj:?}");
    assert!(crate::projections::assert_buckets_match(&db).await > 0, "completed packages are bucketed by due day");

    for id in [&ids[0], &ids[2]] {
        eventually("the package to reach offsite", 20, || {
            let mut c = c.packages.clone();
            let id = id.clone();
            async move {
                let p = c
                    .get_package(pb::GetPackageRequest { package_id: id, ..Default::default() })
                    .await
                    .unwrap()
                    .into_inner();
                (p.status == pb::PackageStatus::Expired as i32).then_some(p)
            }
        })
        .await;
    }
    let kept = eventually("the kept-forever package", 20, || {
        let mut c = c.packages.clone();
        let id = ids[1].clone();
        async move {
            let p = c
                .get_package(pb::GetPackageRequest { package_id: id, ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            (p.tier == pb::Tier::Offsite as i32 && p.next_transition_at.is_none()).then_some(p)
        }
    })
    .await;
    assert_eq!(kept.status, pb::PackageStatus::Completed as i32, "never_delete keeps the package offsite");

    let moves = c
        .journal
        .query_journal(pb::QueryJournalRequest { package_id: ids[0].clone(), limit: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let path: Vec<(String, String)> = moves
        .iter()
        .rev()
        .filter(|e| e.actor == "scheduler")
        .map(|e| (e.status_before.clone(), e.status_after.clone()))
        .collect();
    let expect = [("hot", "warm"), ("warm", "cold"), ("cold", "offsite"), ("offsite", "expired")];
    assert_eq!(path, expect.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec());
    let s = c.status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    let offsite = s.tiers.iter().find(|t| t.tier == pb::Tier::Offsite as i32).unwrap();
    assert_eq!(offsite.package_count, 1);
    assert_eq!(s.statuses.unwrap().expired, 2);
    let placements = package_of(&mut c, &ids[0]).await.placements;
    assert!(placements.iter().all(|p| p.status == pb::PlacementStatus::Deleted as i32), "{placements:?}");
    // Every move and expiry kept the projections' day buckets exact.
    crate::projections::assert_buckets_match(&db).await;
}

crate::both_databases!(tiers_advance_and_expire);
