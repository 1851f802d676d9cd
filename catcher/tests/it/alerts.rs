//! Alerts end to end against real receivers: an HTTP server (the JSON webhook and the
//! Slack-compatible body) and Python's aiosmtpd with STARTTLS and AUTH required. Conditions
//! are made for real on the catcher (an agent's stream ends, a pass lapses, a package fails, a
//! copy is reported failed, a drill fails, a rule change waits, the journal is edited); each
//! alert is raised once, delivered once per transition and channel, acknowledged, resolved.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::prometheus::{logged_addr, parse, scrape};
use edgebackup_testkit::receivers::{HttpReceiver, Received, SmtpReceiver};
use pb::agent_event::Kind;
use pb::alert_service_client::AlertServiceClient;

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, Db, TestDb, assert_invalid, eventually};

fn now_ts() -> Option<prost_types::Timestamp> {
    let ms = chrono::Utc::now().timestamp_millis();
    Some(prost_types::Timestamp { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 })
}

/// The last part of a pass over `folder` that left every file with a copy.
fn clean_pass(folder: &str) -> Kind {
    Kind::FolderSnapshot(pb::FolderSnapshot {
        folder: folder.into(),
        taken_at: now_ts(),
        last: true,
        entries: 3,
        unprotected: 0,
        package_type: pb::PackageType::UserData as i32,
        ..Default::default()
    })
}

/// Starts the catcher with `toml` as its config file (`$DIR` is the test's directory).
async fn catcher_with(db: &TestDb, toml: &str, env: &[(&str, &str)]) -> Catcher {
    let path = db.dir.path().join("catcher.toml");
    std::fs::write(&path, toml.replace("$DIR", &db.dir.path().display().to_string())).unwrap();
    let mut all = vec![("CATCHER_CONFIG", path.to_str().unwrap())];
    all.extend_from_slice(env);
    Catcher::start_with(db, &all).await
}

async fn alerts(catcher: &Catcher, state: pb::AlertState) -> pb::ListAlertsResponse {
    let request = pb::ListAlertsRequest { state: state as i32, ..Default::default() };
    AlertServiceClient::new(catcher.channel().await).list_alerts(request).await.unwrap().into_inner()
}

/// The open alert of `kind` about `subject`, once there is one.
async fn raised(catcher: &Catcher, kind: pb::AlertKind, subject: &str, secs: u64) -> pb::Alert {
    eventually(&format!("an open {kind:?} alert about {subject}"), secs, || async {
        alerts(catcher, pb::AlertState::Open)
            .await
            .alerts
            .into_iter()
            .find(|a| a.kind == kind as i32 && a.subject == subject)
    })
    .await
}

/// Waits until the alert is resolved.
async fn resolved(catcher: &Catcher, id: &str, secs: u64) -> pb::Alert {
    eventually(&format!("alert {id} resolved"), secs, || async {
        alerts(catcher, pb::AlertState::Resolved).await.alerts.into_iter().find(|a| a.id == id)
    })
    .await
}

/// Webhook requests per (alert id, event).
fn by_transition(got: &[Received]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in got {
        let key = (
            r.body["alert"]["id"].as_str().unwrap_or("").to_owned(),
            r.body["event"].as_str().unwrap_or("").to_owned(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// A CA and a certificate for 127.0.0.1 from it, for the SMTP server's STARTTLS.
fn smtp_certs(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca = catcher::auth::ca::Authority::load_or_create(&dir.join("smtp-ca")).unwrap();
    let (cert, key) = ca.issue_server(&["127.0.0.1".to_owned()], Duration::from_secs(3600)).unwrap();
    let paths = (dir.join("smtp.crt"), dir.join("smtp.key"), dir.join("smtp-ca.pem"));
    std::fs::write(&paths.0, cert).unwrap();
    std::fs::write(&paths.1, key).unwrap();
    std::fs::write(&paths.2, ca.cert_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_raised_delivered_acknowledged_and_resolved_once_per_channel() {
    let db = TestDb::new(Db::Sqlite).await;
    let hook = HttpReceiver::start().await;
    let (cert, key, ca) = smtp_certs(db.dir.path());
    let smtp = SmtpReceiver::start(db.dir.path(), &cert, &key, "alerts", "s3cret pw").await;
    // Secrets come from files: the webhook URL (it may carry a token) and the SMTP password.
    std::fs::write(db.dir.path().join("hook.url"), hook.url("/hooks/T0K3N?x=1")).unwrap();
    std::fs::write(db.dir.path().join("smtp.pw"), "s3cret pw\n").unwrap();
    let toml = format!(
        r#"alert_interval_secs = 1
alert_agent_silent_secs = 2
notification_retry_secs = 1
rpo_by_source = {{ "edge-a" = 4 }}

[[channels]]
name = "hook"
kind = "webhook"
url_file = "$DIR/hook.url"

[[channels]]
name = "chat"
kind = "slack"
url = "{slack}"
kinds = ["agent_silent"]

[[channels]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_username = "alerts"
smtp_password_file = "$DIR/smtp.pw"
ca_file = "{ca}"
from = "Edge Backup <backup@example.com>"
to = ["ops@example.com", "oncall@example.com"]
"#,
        slack = hook.url("/slack/SL4CK"),
        port = smtp.port,
        ca = ca.display(),
    );
    let metrics_env = [("CATCHER_METRICS_LISTEN", "127.0.0.1:0"), ("CATCHER_METRICS_PER_SOURCE", "true")];
    let catcher = catcher_with(&db, &toml, &metrics_env).await;

    // A pass that leaves every file with a copy is the folder's recovery point.
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-a", &[pb::Capability::Backup]).await;
    agent.send(1, clean_pass("/data")).await;
    agent.wait_ack(1).await;
    let mut api = AlertServiceClient::new(catcher.channel().await);
    let points = api.get_recovery_points(pb::GetRecoveryPointsRequest::default()).await.unwrap().into_inner();
    let p = points.points.iter().find(|p| p.source_id == "edge-a").expect("edge-a's folder");
    assert_eq!((p.folder.as_str(), p.state), ("/data", pb::RpoState::Held as i32), "{points:?}");
    assert_eq!(p.rpo.as_ref().map(|d| d.seconds), Some(4), "the source's own RPO");
    assert!(p.last_backup_at.is_some() && p.unprotected_files == 0);
    assert!(p.age.as_ref().unwrap().seconds < 4, "{p:?}");

    // The agent goes away: silent after 2 s, its folder past its RPO after 4 s.
    drop(agent);
    let silent = raised(&catcher, pb::AlertKind::AgentSilent, "edge-a", 20).await;
    assert_eq!(silent.source_id, "edge-a");
    assert!(silent.message.contains("has not been connected since"), "{}", silent.message);
    let rpo = raised(&catcher, pb::AlertKind::RpoBreached, "edge-a:/data", 20).await;
    assert!(
        rpo.message.contains("no complete, verified backup since") && rpo.message.contains("RPO 4s"),
        "{}",
        rpo.message
    );
    let breached = api
        .get_recovery_points(pb::GetRecoveryPointsRequest { breached_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(breached.points.len(), 1, "{breached:?}");
    assert_eq!(breached.breached, 1);

    // Delivered: the JSON webhook (both), Slack (only the kind it carries), email (both).
    eventually("both raises at the webhook", 20, || async {
        let got = by_transition(&hook.got().into_iter().filter(|r| r.path == "/hooks/T0K3N").collect::<Vec<_>>());
        (got.get(&(silent.id.clone(), "raised".into())) == Some(&1)
            && got.get(&(rpo.id.clone(), "raised".into())) == Some(&1))
        .then_some(())
    })
    .await;
    let webhook = hook.got().into_iter().find(|r| r.path == "/hooks/T0K3N").unwrap();
    assert_eq!(webhook.content_type, "application/json");
    assert_eq!(webhook.idempotency_key, webhook.body["id"].as_str().unwrap(), "the notification id rides along");
    assert!(webhook.body["alert"]["raised_at"].as_str().is_some_and(|t| t.contains('T')), "{}", webhook.body);
    eventually("the Slack message", 20, || async {
        hook.got()
            .into_iter()
            .find(|r| r.path == "/slack/SL4CK")
            .filter(|r| r.body["text"].as_str().is_some_and(|t| t.contains("RAISED agent_silent edge-a")))
    })
    .await;
    let mails = eventually("two emails", 30, || async { (smtp.mails().len() >= 2).then(|| smtp.mails()) }).await;
    for m in &mails {
        assert!(m.tls && m.authenticated, "over STARTTLS, authenticated: {m:?}");
        assert_eq!(m.from, "backup@example.com");
        assert_eq!(m.to, ["ops@example.com", "oncall@example.com"]);
    }
    assert!(
        mails.iter().any(|m| m.data.contains("Subject: [Edge Backup] RAISED rpo_breached edge-a:/data")),
        "{mails:?}"
    );

    // The status bar's counts.
    let mut c = catcher.clients().await;
    let status = eventually("the status counting both", 10, || async {
        let s = c.status.clone().get_status(pb::GetStatusRequest {}).await.ok()?.into_inner();
        (s.alerts_open == 2 && s.rpo_breached == 1).then_some(s)
    })
    .await;
    assert_eq!(status.alerts_unacknowledged, 2);
    // The same in /metrics, read by a real Prometheus parser (per source: asked for).
    let addr = eventually("the metrics address", 10, || async {
        logged_addr(&catcher.log_text(), "metrics served at /metrics")
    })
    .await;
    let m = eventually("the alerts in /metrics", 10, || async {
        let m = parse(&scrape(&addr).await.1);
        (m.get("edgebackup_alerts_open{kind=\"agent_silent\"}") == Some(&1.0)).then_some(m)
    })
    .await;
    assert_eq!(m["edgebackup_alerts_open{kind=\"rpo_breached\"}"], 1.0);
    assert_eq!(m["edgebackup_alerts_open{kind=\"journal_broken\"}"], 0.0);
    assert_eq!(m["edgebackup_rpo_folders{state=\"breached\"}"], 1.0);
    assert!(m["edgebackup_notifications_total{channel=\"hook\",outcome=\"delivered\"}"] >= 2.0, "{m:?}");
    assert_eq!(m["edgebackup_source_connected{source=\"edge-a\"}"], 0.0);
    assert!(m["edgebackup_source_rpo_age_seconds{source=\"edge-a\"}"] >= 4.0, "{m:?}");
    let last = m["edgebackup_source_last_backup_timestamp_seconds{source=\"edge-a\"}"];
    assert_eq!(last as i64, p.last_backup_at.as_ref().unwrap().seconds, "the folder's recovery point");

    // Acknowledging: operators may, once, with a bounded note; viewers may not.
    let viewer = catcher.person("vera", pb::Role::Viewer).await;
    let operator = catcher.person("otto", pb::Role::Operator).await;
    let ack = |id: &str, note: &str| pb::AcknowledgeAlertRequest { id: id.into(), note: note.into() };
    let mut as_viewer = AlertServiceClient::new(catcher.channel_as(Some(&viewer)).await);
    let denied = as_viewer.acknowledge_alert(ack(&silent.id, "")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(!as_viewer.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts.is_empty());
    let mut as_operator = AlertServiceClient::new(catcher.channel_as(Some(&operator)).await);
    assert_invalid(as_operator.acknowledge_alert(ack(&silent.id, &"x".repeat(501))).await, "note");
    assert_invalid(as_operator.acknowledge_alert(ack("", "")).await, "id");
    let missing = as_operator.acknowledge_alert(ack("0199aaaa-0000-7000-8000-000000000000", "")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let acked = as_operator.acknowledge_alert(ack(&silent.id, "device in repair")).await.unwrap().into_inner();
    assert_eq!((acked.acknowledged_by.as_str(), acked.note.as_str()), ("token:otto (operator)", "device in repair"));
    assert_eq!(acked.state, pb::AlertState::Open as i32, "acknowledged, still open");
    let twice = as_operator.acknowledge_alert(ack(&silent.id, "")).await.unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition, "{twice:?}");
    let journaled = c.journal_of_type("alert.acknowledged").await;
    assert_eq!(journaled.len(), 1);
    assert!(journaled[0].details_json.contains("device in repair"), "{journaled:?}");
    let bad_state = pb::ListAlertsRequest { state: 9, ..Default::default() };
    assert_invalid(api.list_alerts(bad_state).await, "state");

    // The agent is back and passes again: both clear, and each resolve is delivered once.
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-a", &[pb::Capability::Backup]).await;
    agent.send(2, clean_pass("/data")).await;
    agent.wait_ack(2).await;
    let silent_done = resolved(&catcher, &silent.id, 20).await;
    assert_eq!(silent_done.acknowledged_by, "token:otto (operator)", "the acknowledgement stays on record");
    resolved(&catcher, &rpo.id, 20).await;
    eventually("both resolves at the webhook", 20, || async {
        let got = by_transition(&hook.got().into_iter().filter(|r| r.path == "/hooks/T0K3N").collect::<Vec<_>>());
        (got.get(&(silent.id.clone(), "resolved".into())) == Some(&1)
            && got.get(&(rpo.id.clone(), "resolved".into())) == Some(&1))
        .then_some(())
    })
    .await;
    eventually("four emails", 30, || async { (smtp.mails().len() >= 4).then_some(()) }).await;
    // A few more evaluation rounds change nothing: once per transition and channel.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hooks = by_transition(&hook.got().into_iter().filter(|r| r.path == "/hooks/T0K3N").collect::<Vec<_>>());
    assert_eq!(hooks.len(), 4, "{hooks:?}");
    assert!(hooks.values().all(|n| *n == 1), "{hooks:?}");
    let slack: Vec<_> = hook.got().into_iter().filter(|r| r.path == "/slack/SL4CK").collect();
    assert_eq!(slack.len(), 2, "raised and resolved agent_silent only: {slack:?}");
    assert_eq!(smtp.mails().len(), 4);
    let raised = c.journal_of_type("alert.raised").await;
    assert_eq!(raised.len(), 2);
    let rpo_raised = raised.iter().find(|e| e.details_json.contains("rpo_breached")).unwrap();
    assert!(rpo_raised.details_json.contains(r#""folder":"/data""#), "{rpo_raised:?}");
    // A viewer's journal hides the folder.
    let request = pb::QueryJournalRequest { event_type: "alert.raised".into(), limit: 10, ..Default::default() };
    let seen = pb::journal_service_client::JournalServiceClient::new(catcher.channel_as(Some(&viewer)).await)
        .query_journal(request)
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(seen.iter().all(|e| !e.details_json.contains("/data")), "{seen:?}");
    assert_eq!(c.journal_of_type("alert.resolved").await.len(), 2);

    // Channels, without their secrets; a test through each.
    let channels = api.list_channels(pb::ListChannelsRequest {}).await.unwrap().into_inner().channels;
    let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["hook", "chat", "mail"]);
    assert!(
        channels.iter().all(|c| ["T0K3N", "SL4CK", "s3cret"].iter().all(|secret| !c.target.contains(secret))),
        "{channels:?}"
    );
    assert_eq!(channels[0].delivered, 4);
    let tested = api.test_channel(pb::TestChannelRequest { name: "mail".into() }).await.unwrap().into_inner();
    assert!(tested.delivered, "{tested:?}");
    eventually("the test email", 20, || async { smtp.mails().iter().any(|m| m.data.contains("TEST")).then_some(()) })
        .await;
    let unknown = api.test_channel(pb::TestChannelRequest { name: "nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert_eq!(c.journal_of_type("alert.channel_tested").await.len(), 1);
    assert!(
        !catcher.log_text().contains("T0K3N") && !catcher.log_text().contains("s3cret"),
        "secrets are never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_each_transition_once_even_across_a_catcher_kill() {
    let db = TestDb::new(Db::Sqlite).await;
    let mut hook = HttpReceiver::reserved().await;
    let backup = HttpReceiver::start().await;
    let toml = format!(
        r#"alert_interval_secs = 1
alert_agent_silent_secs = 1
alert_channel_failures = 2
notification_retry_secs = 1
alerts_disabled = ["rpo_breached"]

[[channels]]
name = "hook"
kind = "webhook"
url = "{hook}"

[[channels]]
name = "backup"
kind = "webhook"
url = "{backup}"
"#,
        hook = hook.url("/hook"),
        backup = backup.url("/backup"),
    );
    let mut catcher = catcher_with(&db, &toml, &[]).await;
    let agent = ScriptedAgent::enroll(&catcher, "edge-d", &[pb::Capability::Backup]).await;
    drop(agent);
    let silent = raised(&catcher, pb::AlertKind::AgentSilent, "edge-d", 20).await;
    eventually("the raise at the backup receiver", 20, || async {
        by_transition(&backup.got()).contains_key(&(silent.id.clone(), "raised".into())).then_some(())
    })
    .await;
    // "hook" keeps failing: its own alert goes to the other channel.
    let failing = raised(&catcher, pb::AlertKind::ChannelFailing, "hook", 30).await;
    assert!(failing.message.contains("keeps failing"), "{}", failing.message);
    eventually("the channel's alert at the backup receiver", 20, || async {
        by_transition(&backup.got()).contains_key(&(failing.id.clone(), "raised".into())).then_some(())
    })
    .await;
    let mut api = AlertServiceClient::new(catcher.channel().await);
    let channels = api.list_channels(pb::ListChannelsRequest {}).await.unwrap().into_inner().channels;
    assert!(channels[0].pending >= 1 && !channels[0].last_error.is_empty(), "{channels:?}");

    // Killed while the notification waits: it is in the database, so it survives.
    catcher.kill().await;
    catcher.restart_same_port().await;
    hook.up().await;
    eventually("the raise delivered to the receiver once it is back", 60, || async {
        by_transition(&hook.got()).contains_key(&(silent.id.clone(), "raised".into())).then_some(())
    })
    .await;
    let failing_done = resolved(&catcher, &failing.id, 30).await;
    assert!(failing_done.resolved_at.is_some());
    eventually("the channel's recovery at the backup receiver", 20, || async {
        by_transition(&backup.got()).contains_key(&(failing.id.clone(), "resolved".into())).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_hook = by_transition(&hook.got());
    assert_eq!(at_hook.len(), 1, "only the agent's alert (the channel's own is not sent to it): {at_hook:?}");
    assert_eq!(at_hook[&(silent.id.clone(), "raised".into())], 1, "exactly once");
    let at_backup = by_transition(&backup.got());
    assert!(at_backup.values().all(|n| *n == 1), "{at_backup:?}");
    assert_eq!(at_backup.len(), 3, "agent raised, channel raised and resolved: {at_backup:?}");
    // Still silent after the restart: the same alert, not a second one.
    let open = alerts(&catcher, pb::AlertState::Open).await.alerts;
    assert_eq!(open.iter().filter(|a| a.kind == pb::AlertKind::AgentSilent as i32).count(), 1, "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_packages_damaged_copies_drills_pending_changes_and_a_broken_journal_raise_alerts() {
    let db = TestDb::new(Db::Sqlite).await;
    let hook = HttpReceiver::start().await;
    let toml = format!(
        r#"alert_interval_secs = 1
notification_retry_secs = 1
alerts_disabled = ["rpo_breached", "agent_silent"]

[[channels]]
name = "hook"
kind = "webhook"
url = "{}"
"#,
        hook.url("/hook")
    );
    let mut catcher = catcher_with(&db, &toml, &[("CATCHER_PROTECTION_DELAY_SECS", "3600")]).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-f", &[pb::Capability::Backup, pb::Capability::Mover]).await;
    let sha = "ab".repeat(32);

    // A package that failed for good.
    let bad = uuid::Uuid::now_v7().to_string();
    agent.send(1, ingest(&bad, "/srv/a.bin", 10, "")).await;
    let fail = pb::Fail { package_id: bad.clone(), error: "disk read error".into(), retryable: false };
    agent.send(2, Kind::Fail(fail)).await;
    // A package stored, but its copy on one station failed to write.
    let ok = uuid::Uuid::now_v7().to_string();
    agent.send(3, ingest(&ok, "/srv/b.bin", 10, "")).await;
    let mut done = complete(&ok, &sha, 10, "hot-a");
    if let Kind::Complete(c) = &mut done {
        c.placements.push(pb::PlacementReport {
            station_id: "hot-b".into(),
            status: pb::PlacementStatus::Failed as i32,
            verified_sha256: String::new(),
            error: "no space left on device".into(),
        });
    }
    agent.send(4, done).await;
    agent.wait_ack(4).await;
    let failed = raised(&catcher, pb::AlertKind::PackageFailed, "edge-f", 20).await;
    assert!(failed.message.contains("1 package(s) of edge-f failed") && failed.message.contains("disk read error"));
    let station = raised(&catcher, pb::AlertKind::StationFailing, "hot-b", 20).await;
    assert!(station.message.contains("no space left on device"), "{}", station.message);

    // A restore drill that fails.
    let mut c = catcher.clients().await;
    let drill = pb::CreateCommandRequest {
        source_id: "edge-f".into(),
        kind: pb::CommandKind::RestoreDrill as i32,
        args: Some(pb::CommandArgs {
            kind: Some(pb::command_args::Kind::RestoreDrill(pb::RestoreDrillArgs { sample: 1, ..Default::default() })),
        }),
        ..Default::default()
    };
    c.sources.create_command(drill.clone()).await.unwrap();
    let cmd = agent.wait_command(20).await;
    let answer = |seq: u64, id: &str, success: bool| {
        let result = pb::CommandResult {
            command_id: id.into(),
            success,
            message: if success { "1 package restored intact".into() } else { "hot-b: sha256 mismatch".into() },
            details: Some(pb::CommandDetails {
                kind: Some(pb::command_details::Kind::RestoreDrill(pb::CopyChecks {
                    checks: vec![pb::CopyCheck {
                        package_id: ok.clone(),
                        station_id: if success { "hot-a" } else { "hot-b" }.into(),
                        ok: success,
                        problem: if success { String::new() } else { "sha256 mismatch".into() },
                        ..Default::default()
                    }],
                })),
            }),
            ..Default::default()
        };
        (seq, Kind::CommandResult(result))
    };
    let (seq, result) = answer(5, &cmd.command_id, false);
    agent.send(seq, result).await;
    agent.wait_ack(5).await;
    let drill_failed = raised(&catcher, pb::AlertKind::RestoreDrillFailed, "drill", 20).await;
    assert!(drill_failed.message.contains("sha256 mismatch"), "{}", drill_failed.message);

    // A rule change that deletes data sooner waits: an alert while it waits.
    let rules = c.policy.list_rule_sets(pb::ListRuleSetsRequest {}).await.unwrap().into_inner().rule_sets;
    let mut user = rules.into_iter().find(|r| r.package_type == pb::PackageType::UserData as i32).unwrap();
    user.hot = Some(pb::Stop {
        enabled: true,
        wait: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
        never_delete: false,
    });
    c.update_rules(user).await.unwrap();
    let pending = c.policy.list_pending_changes(pb::ListPendingChangesRequest::default()).await.unwrap().into_inner();
    let change_id = pending.changes[0].change_id;
    let pending_alert = raised(&catcher, pb::AlertKind::PendingChange, &change_id.to_string(), 20).await;
    assert!(pending_alert.message.contains("unless cancelled"), "{}", pending_alert.message);

    // Each clears: the package completes after all, the copy measures intact, a drill passes,
    // the change is cancelled.
    agent.send(6, complete(&bad, &sha, 10, "hot-a")).await;
    let seq = 7;
    let heal = pb::ReportCopyChecksRequest {
        checks: vec![pb::CopyCheck {
            package_id: ok.clone(),
            station_id: "hot-b".into(),
            ok: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let agent_ch = crate::harness::agent_channel(&catcher, "edge-f", true).await;
    pb::package_service_client::PackageServiceClient::new(agent_ch).report_copy_checks(heal).await.unwrap();
    c.sources.create_command(drill).await.unwrap();
    // The failed drill also ordered hot-b's copy written again (a MOVE): not answered here.
    let cmd = loop {
        let cmd = agent.wait_command(20).await;
        if cmd.kind == pb::CommandKind::RestoreDrill as i32 {
            break cmd;
        }
    };
    let (_, result) = answer(seq, &cmd.command_id, true);
    agent.send(seq, result).await;
    agent.wait_ack(seq).await;
    c.policy
        .cancel_pending_change(pb::CancelPendingChangeRequest { change_id, reason: "not now".into() })
        .await
        .unwrap();
    for a in [&failed, &station, &drill_failed, &pending_alert] {
        resolved(&catcher, &a.id, 30).await;
    }
    eventually("every raise and resolve at the webhook", 20, || async {
        let got = by_transition(&hook.got());
        [&failed, &station, &drill_failed, &pending_alert]
            .iter()
            .all(|a| ["raised", "resolved"].iter().all(|e| got.get(&(a.id.clone(), (*e).to_owned())) == Some(&1)))
            .then_some(())
    })
    .await;
    assert!(by_transition(&hook.got()).values().all(|n| *n == 1), "{:?}", by_transition(&hook.got()));

    // A folder whose first pass left files without a copy: no recovery point yet, judged from
    // that pass (not breached at once).
    let mut partial = clean_pass("/logs");
    if let Kind::FolderSnapshot(s) = &mut partial {
        s.unprotected = 2;
    }
    let other = ScriptedAgent::enroll(&catcher, "edge-g", &[pb::Capability::Backup]).await;
    other.send(1, partial).await;
    let api = AlertServiceClient::new(catcher.channel().await);
    let request = pb::GetRecoveryPointsRequest { source_id: "edge-g".into(), ..Default::default() };
    let logs = eventually("edge-b's folder", 10, || async {
        let r = api.clone().get_recovery_points(request.clone()).await.ok()?.into_inner();
        r.points.into_iter().find(|p| p.folder == "/logs")
    })
    .await;
    assert_eq!((logs.state, logs.unprotected_files), (pb::RpoState::Held as i32, 2), "{logs:?}");
    assert!(logs.last_backup_at.is_none() && logs.age.as_ref().unwrap().seconds < 60, "{logs:?}");

    // Someone edits the journal behind the catcher's back: found when it verifies at start.
    let db_file = db.url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
    let set_error = |value: &str| {
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                      c.execute('UPDATE journal SET error=? WHERE sequence=3', (sys.argv[2],)); c.commit()";
        let edit = std::process::Command::new("python3").args(["-c", script, &db_file, value]).status();
        assert!(edit.expect("python3 runs").success());
    };
    let mut c = catcher.clients().await;
    let original = c.journal.query_journal(pb::QueryJournalRequest { limit: 1000, ..Default::default() }).await;
    let original = original.unwrap().into_inner().events.into_iter().find(|e| e.sequence == 3).unwrap().error;
    catcher.terminate().await;
    set_error("nothing happened");
    catcher.restart().await;
    let broken = raised(&catcher, pb::AlertKind::JournalBroken, "journal", 30).await;
    assert!(broken.message.contains("breaks at event 3"), "{}", broken.message);
    eventually("the journal alert at the webhook", 20, || async {
        by_transition(&hook.got()).contains_key(&(broken.id.clone(), "raised".into())).then_some(())
    })
    .await;
    // Put back (a restore of the database): the next whole check finds the chain intact again.
    catcher.terminate().await;
    set_error(&original);
    catcher.restart().await;
    resolved(&catcher, &broken.id, 30).await;
    eventually("the journal alert's resolve at the webhook", 20, || async {
        by_transition(&hook.got()).contains_key(&(broken.id.clone(), "resolved".into())).then_some(())
    })
    .await;
}
