//! Alerts from real conditions with the real agent: it is killed (silent, then its folder's RPO
//! lapses), its panic brake trips, a station it moves to is broken, a copy is damaged and a
//! restore drill finds it. Each alert reaches a real HTTP receiver once when raised and once
//! when the condition clears.

use std::collections::BTreeMap;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;
use edgebackup_testkit::receivers::HttpReceiver;
use pb::alert_service_client::AlertServiceClient;

use crate::harness::*;

fn alerting(hook: &HttpReceiver, extra: &str) -> String {
    format!(
        "alert_interval_secs = 1\nnotification_retry_secs = 1\nscheduler_interval_ms = 200\nprotection_delay_secs = 0\n{extra}\n\
         [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/hook")
    )
}

async fn open_alert(world: &World, kind: pb::AlertKind, subject: &str) -> pb::Alert {
    eventually(&format!("an open {kind:?} alert about {subject}"), 90, || async {
        let request = pb::ListAlertsRequest { state: pb::AlertState::Open as i32, ..Default::default() };
        let list = AlertServiceClient::new(world.channel().await).list_alerts(request).await.ok()?.into_inner();
        list.alerts.into_iter().find(|a| a.kind == kind as i32 && a.subject == subject)
    })
    .await
}

async fn resolved(world: &World, id: &str) {
    eventually(&format!("alert {id} resolved"), 90, || async {
        let request = pb::ListAlertsRequest { state: pb::AlertState::Resolved as i32, ..Default::default() };
        let list = AlertServiceClient::new(world.channel().await).list_alerts(request).await.ok()?.into_inner();
        list.alerts.iter().any(|a| a.id == id).then_some(())
    })
    .await;
}

/// Webhook deliveries per (alert id, event).
fn deliveries(hook: &HttpReceiver) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in hook.got() {
        let id = r.body["alert"]["id"].as_str().unwrap_or_default().to_owned();
        *out.entry((id, r.body["event"].as_str().unwrap_or_default().to_owned())).or_default() += 1;
    }
    out
}

/// Waits until the receiver got the alert's raise and resolve, each exactly once.
async fn delivered_both(hook: &HttpReceiver, a: &pb::Alert) {
    eventually(&format!("{:?} raised and resolved at the receiver", a.kind), 60, || async {
        let d = deliveries(hook);
        (d.get(&(a.id.clone(), "raised".into())) == Some(&1) && d.get(&(a.id.clone(), "resolved".into())) == Some(&1))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_its_lapsed_rpo_and_its_tripped_brake_are_alerted_until_cleared() {
    let hook = HttpReceiver::start().await;
    let world = World::with_catcher_config(&alerting(
        &hook,
        "alert_agent_silent_secs = 3\nrpo_by_source = { \"edge-r\" = 8 }\nalerts_disabled = [\"pending_change\"]",
    ))
    .await;
    let safety = "[safety]\nenabled = true\ncanary = true\n";
    let config = world.agent_config("r", "edge-r", &world.local_station("hot"), safety);
    let data = world.data("r");
    std::fs::write(data.join("report.txt"), b"quarterly numbers\n".repeat(100)).unwrap();
    let mut agent = Agent::start(&config).await;
    let folder = data.display().to_string().trim_end_matches('/').to_owned();

    // Passes keep the folder's recovery point fresh.
    let mut api = AlertServiceClient::new(world.channel().await);
    let held = eventually("edge-r's folder backed up within its RPO", 60, || async {
        let r = api.clone().get_recovery_points(pb::GetRecoveryPointsRequest::default()).await.ok()?.into_inner();
        r.points
            .into_iter()
            .find(|p| p.folder == folder && p.state == pb::RpoState::Held as i32 && p.last_backup_at.is_some())
    })
    .await;
    assert_eq!(held.package_type, pb::PackageType::UserData as i32);
    let first_backup = held.last_backup_at.unwrap().seconds;
    // An idle folder's passes still move it (nothing changed, nothing to upload).
    eventually("a later recovery point from an idle pass", 30, || async {
        let r = api.clone().get_recovery_points(pb::GetRecoveryPointsRequest::default()).await.ok()?.into_inner();
        r.points
            .into_iter()
            .find(|p| p.folder == folder && p.last_backup_at.as_ref().is_some_and(|t| t.seconds > first_backup))
    })
    .await;
    assert_eq!(world.packages("edge-r").await.len(), 1, "no package for an idle pass");

    // Killed: silent after 3 s, its folder past its 8 s RPO after that.
    agent.kill().await;
    let silent = open_alert(&world, pb::AlertKind::AgentSilent, "edge-r").await;
    let rpo = open_alert(&world, pb::AlertKind::RpoBreached, &format!("edge-r:{folder}")).await;
    let points = api.get_recovery_points(pb::GetRecoveryPointsRequest { breached_only: true, ..Default::default() });
    let points = points.await.unwrap().into_inner();
    assert_eq!(points.breached, 1, "{points:?}");
    assert!(points.worst_age.unwrap().seconds >= 8);

    // Back: both clear.
    let agent = Agent::start(&config).await;
    resolved(&world, &silent.id).await;
    resolved(&world, &rpo.id).await;
    delivered_both(&hook, &silent).await;
    delivered_both(&hook, &rpo).await;

    // The canary is touched: the brake trips, the alert stays until an operator resumes.
    world.completed("edge-r", 1, 60).await;
    std::fs::write(data.join(".edgebackup-canary"), b"encrypted!").unwrap();
    let tripped = open_alert(&world, pb::AlertKind::SafetyTripped, "edge-r").await;
    assert!(tripped.message.contains("canary"), "{}", tripped.message);
    let r = world.command("edge-r", pb::CommandKind::Resume, "").await;
    assert_eq!(r.state, pb::CommandState::Succeeded as i32, "{r:?}");
    resolved(&world, &tripped.id).await;
    delivered_both(&hook, &tripped).await;
    assert!(deliveries(&hook).values().all(|n| *n == 1), "once per transition: {:?}", deliveries(&hook));
    drop(agent);
}

/// A restore drill of the warm tier, answered.
async fn drill(world: &World) -> pb::CommandInfo {
    let args = pb::command_args::Kind::RestoreDrill(pb::RestoreDrillArgs {
        tier: pb::Tier::Warm as i32,
        sample: 1,
        ..Default::default()
    });
    world.command_with("edge-m", pb::CommandKind::RestoreDrill, "", Some(args)).await
}

const TIERS: [&str; 4] = ["hot", "warm", "cold", "offsite"];

/// A mover agent backing up one folder to hot and moving between all four stations.
fn mover(world: &World) -> std::path::PathBuf {
    let mut text = format!(
        "source_id = \"edge-m\"\n{}state_dir = \"{}\"\nmax_backoff_secs = 1\nmover = true\nbackup_stations = [\"hot\"]\n\n\
         [schedule]\ninterval_secs = 1\ndebounce_ms = 200\n\n[[folders]]\npath = \"{}\"\npackage_type = \"user_data\"\n\n",
        world.catcher.agent_toml("edge-m", true),
        world.path("m-state/").display(),
        world.path("m-data/").display(),
    );
    for t in TIERS {
        let uri = world.path(&format!("stations/{t}/"));
        text.push_str(&format!("[[stations]]\nid = \"{t}\"\nkind = \"local\"\nuri = \"{}\"\n\n", uri.display()));
    }
    let path = world.path("m.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hop_and_a_damaged_copy_found_by_a_drill_are_alerted_until_cleared() {
    let hook = HttpReceiver::start().await;
    let mut toml = alerting(&hook, "alert_move_failures = 2\nalerts_disabled = [\"rpo_breached\", \"agent_silent\"]");
    for t in TIERS {
        toml.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\ntier = \"{t}\"\nkind = \"local\"\nuri = \"$DIR/stations/{t}\"\n"
        ));
    }
    let world = World::with_catcher_config(&toml).await;
    // user_data leaves hot after a second and stays in warm.
    let stop = |secs: i64| {
        Some(pb::Stop {
            enabled: true,
            wait: Some(prost_types::Duration { seconds: secs, nanos: 0 }),
            never_delete: false,
        })
    };
    let rules = pb::RuleSet {
        package_type: pb::PackageType::UserData as i32,
        hot: stop(1),
        warm: stop(86_400),
        cold: stop(86_400),
        offsite: stop(86_400),
        ..Default::default()
    };
    let request = pb::UpdateRuleSetRequest { rule_set: Some(rules), reason: "test".into() };
    pb::policy_service_client::PolicyServiceClient::new(world.channel().await).update_rule_set(request).await.unwrap();
    // The warm station is broken: a file where its directory should be.
    let warm = world.path("stations/warm");
    std::fs::remove_dir_all(&warm).ok();
    std::fs::write(&warm, b"not a directory").unwrap();
    let config = mover(&world);
    std::fs::write(world.path("m-data/ledger.txt"), b"balance 42\n".repeat(500)).unwrap();
    let _agent = Agent::start(&config).await;
    let p = world.completed("edge-m", 1, 60).await.remove(0);

    let failing = open_alert(&world, pb::AlertKind::MoveFailing, "warm").await;
    assert!(failing.message.contains("failed 2 or more times"), "{}", failing.message);
    let station = open_alert(&world, pb::AlertKind::StationFailing, "warm").await;

    // Repaired: the next retry moves it, and both clear.
    std::fs::remove_file(&warm).unwrap();
    std::fs::create_dir_all(&warm).unwrap();
    eventually("the package in warm", 120, || async {
        (world.package(&p.package_id).await.tier == pb::Tier::Warm as i32).then_some(())
    })
    .await;
    resolved(&world, &failing.id).await;
    resolved(&world, &station.id).await;
    delivered_both(&hook, &failing).await;
    delivered_both(&hook, &station).await;

    // The warm copy is damaged; a drill finds it.
    let copy = world.dir.path().join(format!("stations/warm/edge-m/{}.tar.zst", p.package_id));
    let good = std::fs::read(&copy).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&copy, &bad).unwrap();
    let failed = drill(&world).await;
    assert_eq!(failed.state, pb::CommandState::Failed as i32, "{failed:?}");
    let drill_alert = open_alert(&world, pb::AlertKind::RestoreDrillFailed, "drill").await;
    let damaged = open_alert(&world, pb::AlertKind::StationFailing, "warm").await;
    assert_ne!(damaged.id, station.id, "a new alert for a new condition");

    // The copy is put right and measured again (`agent verify` reports it intact, so it counts
    // again); the next drill passes and everything clears.
    std::fs::write(&copy, &good).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    resolved(&world, &damaged.id).await;
    let passed = drill(&world).await;
    assert_eq!(passed.state, pb::CommandState::Succeeded as i32, "{passed:?}");
    resolved(&world, &drill_alert.id).await;
    delivered_both(&hook, &drill_alert).await;
    delivered_both(&hook, &damaged).await;
    assert!(deliveries(&hook).values().all(|n| *n == 1), "once per transition: {:?}", deliveries(&hook));
}
