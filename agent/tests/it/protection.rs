//! Protected retention with the real catcher, agent and stations: an operator's shorter rule
//! waits out the protection delay while nothing expires (the copies stay on the stations),
//! another operator cancels it, and asked again it applies when due and expiry follows; a
//! deletion deletes the package's copy on its station before the catcher forgets the package.

use std::time::Duration;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;
use pb::policy_service_client::PolicyServiceClient;

use crate::harness::*;

const TIERS: [&str; 4] = ["hot", "warm", "cold", "offsite"];
const DELAY_SECS: u64 = 8;

fn catcher_config() -> String {
    let mut s =
        format!("initial_preset = \"cloud\"\nscheduler_interval_ms = 200\nprotection_delay_secs = {DELAY_SECS}\n");
    for t in TIERS {
        s.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\ntier = \"{t}\"\nkind = \"local\"\nuri = \"$DIR/stations/{t}\"\n"
        ));
    }
    s
}

async fn policy(world: &World, token: &str) -> PolicyServiceClient<edgebackup_common::client::PersonChannel> {
    PolicyServiceClient::new(world.catcher.channel_as(token).await.unwrap())
}

/// user_data kept one second in hot, then gone.
fn one_second() -> pb::RuleSet {
    let stop = |enabled: bool| pb::Stop {
        enabled,
        wait: Some(prost_types::Duration { seconds: i64::from(enabled), nanos: 0 }),
        never_delete: false,
    };
    pb::RuleSet {
        package_type: pb::PackageType::UserData as i32,
        hot: Some(stop(true)),
        warm: Some(stop(false)),
        cold: Some(stop(false)),
        offsite: Some(stop(false)),
        ..Default::default()
    }
}

async fn user_rules(world: &World, token: &str) -> pb::RuleSet {
    let request = pb::GetRuleSetRequest { package_type: pb::PackageType::UserData as i32 };
    policy(world, token).await.get_rule_set(request).await.unwrap().into_inner()
}

async fn changes(world: &World, token: &str) -> Vec<pb::PendingChange> {
    let request = pb::ListPendingChangesRequest { include_resolved: true, limit: 100 };
    policy(world, token).await.list_pending_changes(request).await.unwrap().into_inner().changes
}

fn copy_on(world: &World, tier: &str, package_id: &str) -> bool {
    world.dir.path().join(format!("stations/{tier}/edge-p/{package_id}.tar.zst")).exists()
}

/// A mover agent backing up to hot that has made two packages of one file: `first` holds only a
/// superseded version (the cloud rules keep it for years), `second` the current one.
async fn two_versions(world: &World) -> (Agent, pb::Package, pb::Package) {
    let stations = TIERS.iter().map(|t| world.local_station(t)).collect::<Vec<_>>().join("\n");
    let config = world.agent_config("p", "edge-p", &stations, "mover = true\nbackup_stations = [\"hot\"]");
    let data = world.data("p");
    std::fs::write(data.join("a.txt"), b"version 1").unwrap();
    let agent = Agent::start(&config).await;
    let first = world.completed("edge-p", 1, 60).await.remove(0);
    std::fs::write(data.join("a.txt"), b"version 2, longer").unwrap();
    let second = world.completed("edge-p", 2, 60).await.into_iter().find(|p| p.package_id != first.package_id).unwrap();
    (agent, first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_rule_waits_can_be_cancelled_and_applies_when_due() {
    let world = World::with_catcher_config(&catcher_config()).await;
    let (mut agent, first, second) = two_versions(&world).await;
    assert!(copy_on(&world, "hot", &first.package_id));
    let ann = world.catcher.person_token("ann", "operator").unwrap();
    let bob = world.catcher.person_token("bob", "operator").unwrap();
    let vera = world.catcher.person_token("vera", "viewer").unwrap();
    let cloud = user_rules(&world, &vera).await;

    // Held, not applied: the answer says so and the rules in force are unchanged.
    let ask = pb::UpdateRuleSetRequest { rule_set: Some(one_second()), reason: "save space".into() };
    let out = policy(&world, &ann).await.update_rule_set(ask.clone()).await.unwrap().into_inner();
    let held = out.pending.expect("a pending change");
    assert_eq!(out.snapshot_id, 0, "nothing applied at once");
    assert_eq!(out.rule_set.as_ref(), Some(&cloud), "the rule set in force is the old one");
    assert_eq!(held.requested_by, "token:ann (operator)");
    let Some(pb::pending_change::Change::RuleSet(change)) = &held.change else { panic!("{held:?}") };
    assert!(change.shortened.iter().any(|l| l == "hot wait 7d -> 1s"), "{:?}", change.shortened);
    let delay = held.effective_at.unwrap().seconds - held.created_at.unwrap().seconds;
    assert_eq!(delay, DELAY_SECS as i64);
    // A viewer sees it and cannot cancel it.
    let listed = changes(&world, &vera).await;
    assert_eq!(listed.iter().map(|c| c.change_id).collect::<Vec<_>>(), [held.change_id]);
    let cancel = pb::CancelPendingChangeRequest { change_id: held.change_id, reason: "not today".into() };
    let refused = policy(&world, &vera).await.cancel_pending_change(cancel.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // Nothing expires early: the superseded package and its copy stay.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.package(&first.package_id).await.status, pb::PackageStatus::Completed as i32);
    assert!(copy_on(&world, "hot", &first.package_id));
    let cancelled = policy(&world, &bob).await.cancel_pending_change(cancel.clone()).await.unwrap().into_inner();
    assert_eq!(cancelled.state, pb::PendingChangeState::Cancelled as i32);
    assert_eq!((cancelled.resolved_by.as_str(), cancelled.outcome.as_str()), ("token:bob (operator)", "not today"));
    let again = policy(&world, &bob).await.cancel_pending_change(cancel).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    // Past its effective time it still never applied.
    tokio::time::sleep(Duration::from_secs(DELAY_SECS)).await;
    assert_eq!(user_rules(&world, &vera).await, cloud);
    assert_eq!(world.package(&first.package_id).await.status, pb::PackageStatus::Completed as i32);
    assert!(copy_on(&world, "hot", &first.package_id));
    let created = world.journal("pending_change.created").await;
    assert!(created.iter().any(|e| e.actor == "token:ann (operator)"), "{created:?}");
    let journaled = world.journal("pending_change.cancelled").await;
    assert!(journaled.iter().any(|e| e.actor == "token:bob (operator)"), "{journaled:?}");

    // Asked again and left alone, it applies when due; expiry follows on the stations.
    let out = policy(&world, &ann).await.update_rule_set(ask).await.unwrap().into_inner();
    let second_ask = out.pending.expect("held again").change_id;
    let applied = eventually("the change applied", DELAY_SECS + 10, || async {
        let all = changes(&world, &vera).await;
        all.into_iter().find(|c| c.change_id == second_ask && c.state == pb::PendingChangeState::Applied as i32)
    })
    .await;
    assert_eq!(applied.resolved_by, "catcher");
    assert_eq!(user_rules(&world, &vera).await.hot.unwrap().wait.unwrap().seconds, 1);
    let updated = world.journal("rules.updated").await;
    assert!(updated.iter().any(|e| e.actor == "token:ann (operator)"), "the rule change is ann's: {updated:?}");
    assert!(!world.journal("pending_change.applied").await.is_empty());
    eventually("the superseded package expired and its copy deleted", 30, || async {
        let p = world.package(&first.package_id).await;
        (p.status == pb::PackageStatus::Expired as i32 && !copy_on(&world, "hot", &first.package_id)).then_some(())
    })
    .await;
    // The package holding the file's current version stays, with its copy.
    assert_eq!(world.package(&second.package_id).await.status, pb::PackageStatus::Completed as i32);
    assert!(copy_on(&world, "hot", &second.package_id));
    assert!(agent.terminate().await.success());
}

/// A deletion someone asked for waits out the delay, then the mover deletes the package's copy
/// on its station before the catcher forgets the package: no stored copy is left orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_deletion_deletes_the_copies_before_the_record() {
    use pb::package_service_client::PackageServiceClient;
    let world = World::with_catcher_config(&catcher_config()).await;
    let (mut agent, first, second) = two_versions(&world).await;
    assert!(copy_on(&world, "hot", &first.package_id));
    let ada = world.catcher.person_token("ada", "admin").unwrap();
    let packages = || async { PackageServiceClient::new(world.catcher.channel_as(&ada).await.unwrap()) };

    let ask = pb::DeletePackageRequest { package_id: first.package_id.clone(), reason: "tidy".into() };
    let held = packages().await.delete_package(ask).await.unwrap().into_inner().pending.expect("held");
    let id = held.change_id;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(copy_on(&world, "hot", &first.package_id), "nothing deleted before the delay");
    let get = |package_id: String| pb::GetPackageRequest { package_id, ..Default::default() };
    assert!(packages().await.get_package(get(first.package_id.clone())).await.is_ok());

    // When due: the copy goes from the station, then the record; the change is applied.
    eventually("the deletion applied", DELAY_SECS + 30, || async {
        let all = changes(&world, &ada).await;
        all.into_iter().find(|c| c.change_id == id && c.state == pb::PendingChangeState::Applied as i32)
    })
    .await;
    assert!(!copy_on(&world, "hot", &first.package_id), "the copy was deleted from the station");
    let gone = packages().await.get_package(get(first.package_id.clone())).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    let started = world.journal("package.expiry_started").await;
    assert!(started.iter().any(|e| e.package_id == first.package_id), "{started:?}");
    // The package holding the current version is untouched.
    assert!(copy_on(&world, "hot", &second.package_id));
    assert!(agent.terminate().await.success());
}
