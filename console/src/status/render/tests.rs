//! Screen snapshots: the live view drawn on ratatui's `TestBackend` at fixed sizes, compared as text.

use edgebackup_proto::v1::{self as pb, watch_event::Kind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::status::app::App;
use crate::status::client::Link;
use crate::status::model::Fleet;
use crate::status::model::tests::ts;
use crate::status::sections::Theme;

/// 2025-06-01T12:00:00Z
pub const NOW: i64 = 1_748_779_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const MIB: u64 = 1024 * 1024;

fn dur(secs: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: secs, nanos: 0 })
}

fn on(days: i64) -> Option<pb::Stop> {
    Some(pb::Stop { enabled: true, wait: dur(days * 86_400), never_delete: false })
}

fn tier(tier: pb::Tier, package_count: u64, total_bytes: u64) -> pb::TierStats {
    pb::TierStats { tier: tier as i32, package_count, total_bytes, incoming_next_hour: 0, outgoing_next_hour: 0 }
}

#[allow(clippy::too_many_arguments)]
fn package(
    n: u8,
    path: &str,
    source: &str,
    package_type: pb::PackageType,
    status: pb::PackageStatus,
    tier: pb::Tier,
    progress: u32,
    sha: &str,
    created_ago: i64,
) -> pb::Package {
    pb::Package {
        package_id: format!("01973000-0000-7000-8000-00000000000{n}"),
        source_id: source.into(),
        path: path.into(),
        package_type: package_type as i32,
        size_bytes: MIB + u64::from(n),
        sha256: sha.into(),
        status: status as i32,
        progress_percent: progress,
        tier: tier as i32,
        created_at: ts(NOW - created_ago),
        ..Default::default()
    }
}

/// A small fleet with one of everything: packages in each state, a client stopped for safety,
/// rule sets with skipped and forever stops, a cache TTL, and journal events.
pub fn fixture() -> (Fleet, i64) {
    use pb::{PackageStatus as S, PackageType as T, Tier};
    let mut app_log = package(
        1,
        "/var/log/app/app.log",
        "edge-01",
        T::AppLogs,
        S::Completed,
        Tier::Hot,
        100,
        "9f86d081884c7d65",
        DAY,
    );
    app_log.next_transition_at = ts(NOW + 2 * HOUR);
    let mut report = package(
        2,
        "/home/ana/report.pdf",
        "edge-02",
        T::UserData,
        S::Completed,
        Tier::Hot,
        100,
        "e3b0c44298fc1c14",
        5 * HOUR,
    );
    report.next_transition_at = ts(NOW + 30 * MIN);
    let mut invoices = package(
        3,
        "/data/invoices/2024 Q3.xlsx",
        "edge-01",
        T::BusinessData,
        S::Failed,
        Tier::Unspecified,
        30,
        "",
        2 * HOUR,
    );
    invoices.last_error = "upload timed out: station hot-1".into();
    let photo = package(
        4,
        "/home/ana/photos/2025/06/01/IMG_0001.jpg",
        "edge-02",
        T::UserData,
        S::InProgress,
        Tier::Unspecified,
        55,
        "",
        42_000,
    );
    let status = pb::GetStatusResponse {
        replicas: Vec::new(),
        replica_id: String::new(),
        version: "0.1.0".into(),
        started_at: ts(NOW - 3 * HOUR),
        database: "sqlite".into(),
        clients_connected: 1,
        clients_total: 2,
        clients_stopped_for_safety: 1,
        tiers: vec![
            tier(Tier::Unspecified, 2, 2 * MIB),
            pb::TierStats { outgoing_next_hour: 1, ..tier(Tier::Hot, 2, 3 * MIB) },
            pb::TierStats { incoming_next_hour: 1, ..tier(Tier::Warm, 5, 1536 * MIB) },
            tier(Tier::Cold, 12, 40 * 1024 * MIB),
            tier(Tier::Offsite, 30, 1300 * 1024 * MIB),
        ],
        statuses: Some(pb::StatusCounts { pending: 0, in_progress: 1, completed: 49, failed: 1, expired: 3 }),
        journal_head: 12,
        stations: 4,
        commands_open: 0,
        now: ts(NOW),
        type_tiers: Vec::new(),
        last_restore_drill: None,
        alerts_open: 2,
        alerts_unacknowledged: 1,
        rpo_breached: 1,
        rpo_held: 2,
    };
    let sources = vec![
        pb::Source {
            source_id: "edge-01".into(),
            label: "shop floor".into(),
            hostname: "edge-01".into(),
            agent_version: "0.1.0".into(),
            connected: true,
            safety_state: pb::SafetyState::Ok as i32,
            last_seen_at: ts(NOW - 3_000),
            in_flight: 1,
            ..Default::default()
        },
        pb::Source {
            source_id: "edge-02".into(),
            hostname: "edge-02".into(),
            agent_version: "0.1.0".into(),
            connected: false,
            safety_state: pb::SafetyState::StoppedForSafety as i32,
            safety_reason: "mass rename detected: 312 files in 10 s".into(),
            last_seen_at: ts(NOW - 7 * MIN),
            in_flight: 1,
            ..Default::default()
        },
    ];
    let rule_sets = vec![
        pb::RuleSet {
            package_type: T::UserData as i32,
            hot: on(1),
            warm: on(7),
            cold: on(30),
            offsite: on(365),
            ..Default::default()
        },
        pb::RuleSet { package_type: T::AppLogs as i32, hot: on(1), warm: on(7), offsite: on(90), ..Default::default() },
        pb::RuleSet {
            package_type: T::AuditLogs as i32,
            warm: on(30),
            cold: on(365),
            offsite: Some(pb::Stop { enabled: true, wait: None, never_delete: true }),
            ..Default::default()
        },
        pb::RuleSet {
            package_type: T::BusinessData as i32,
            hot: on(7),
            warm: on(30),
            cold: on(365),
            offsite: on(3650),
            replicate_to_all: true,
            ..Default::default()
        },
        pb::RuleSet { package_type: T::Cache as i32, cache_ttl: dur(6 * 3600), ..Default::default() },
    ];
    let journal = vec![
        pb::JournalEvent {
            sequence: 12,
            at: ts(NOW - 2 * HOUR),
            actor: "agent:edge-01".into(),
            event_type: "package.failed".into(),
            source_id: "edge-01".into(),
            package_id: invoices.package_id.clone(),
            status_before: "in_progress".into(),
            status_after: "failed".into(),
            error: "upload timed out".into(),
            ..Default::default()
        },
        pb::JournalEvent {
            sequence: 11,
            at: ts(NOW - 3 * HOUR),
            actor: "agent:edge-02".into(),
            event_type: "source.stopped_for_safety".into(),
            r#type: pb::JournalEventType::SourceStoppedForSafety as i32,
            source_id: "edge-02".into(),
            ..Default::default()
        },
        pb::JournalEvent {
            sequence: 10,
            at: ts(NOW - 5 * HOUR),
            actor: "api".into(),
            event_type: "rules.updated".into(),
            ..Default::default()
        },
    ];
    let restore = |id: &str, agent: &str, state: pb::CommandState, progress, message: &str| pb::CommandInfo {
        command: Some(pb::Command {
            command_id: id.into(),
            kind: pb::CommandKind::Restore as i32,
            args: Some(pb::CommandArgs {
                kind: Some(pb::command_args::Kind::Restore(pb::RestoreArgs {
                    source_id: "edge-02".into(),
                    target_dir: "/srv/restores/r1".into(),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        }),
        source_id: agent.into(),
        state: state as i32,
        created_at: ts(NOW - HOUR),
        progress,
        progress_at: ts(NOW - 2_000),
        result_message: message.into(),
        ..Default::default()
    };
    let running = pb::CommandProgress {
        phase: pb::CommandPhase::Transferring as i32,
        files_done: 120,
        files_total: 480,
        bytes_done: 3 << 30,
        bytes_total: 12 << 30,
        ..Default::default()
    };
    let restores = vec![
        restore(
            "0199a000-0000-7000-8000-00000000aa01",
            "edge-02",
            pb::CommandState::Succeeded,
            None,
            "restored 3 files (12 KiB)",
        ),
        restore("0199a000-0000-7000-8000-00000000bb02", "edge-01", pb::CommandState::Leased, Some(running), ""),
    ];
    let rule_sets_before = rule_sets.clone();
    let mut fleet = Fleet::new(50);
    fleet.apply(pb::WatchEvent {
        kind: Some(Kind::Snapshot(pb::FleetSnapshot {
            status: Some(status),
            sources,
            rule_sets,
            packages: vec![app_log, report, invoices, photo],
            journal,
            stations: vec![
                station("hot-nas", Tier::Hot, pb::StationKind::Local, "/srv/backup/hot"),
                station("warm-s3", Tier::Warm, pb::StationKind::S3, "s3:edge-warm"),
                station("cold-restic", Tier::Cold, pb::StationKind::Restic, "/mnt/cold/restic"),
                station("offsite-b2", Tier::Offsite, pb::StationKind::Rclone, "b2:edge-offsite"),
            ],
            restores,
            pending_changes: vec![pending_change(&rule_sets_before)],
            alerts: alerts(),
        })),
    });
    fleet.recovery_points = Some(recovery_points());
    (fleet, NOW)
}

/// edge-02 silent and its photos behind their RPO (one acknowledged), and a resolved drill failure.
fn alerts() -> Vec<pb::Alert> {
    let alert = |id: &str, kind: pb::AlertKind, subject: &str, message: &str| pb::Alert {
        id: id.into(),
        kind: kind as i32,
        subject: subject.into(),
        source_id: subject.split(':').next().unwrap_or_default().into(),
        state: pb::AlertState::Open as i32,
        message: message.into(),
        raised_at: ts(NOW - 2 * HOUR),
        ..Default::default()
    };
    vec![
        pb::Alert {
            acknowledged_at: ts(NOW - HOUR),
            acknowledged_by: "token:ann (operator)".into(),
            note: "device in repair until Monday".into(),
            ..alert(
                "0199b000-0000-7000-8000-0000000000a2",
                pb::AlertKind::AgentSilent,
                "edge-02",
                "edge-02 has not been connected since 2026-12-04 08:00:00 UTC",
            )
        },
        alert(
            "0199b000-0000-7000-8000-0000000000a3",
            pb::AlertKind::RpoBreached,
            "edge-02:/home/ana/photos",
            "/home/ana/photos of edge-02: no complete, verified backup since 2026-12-03 10:00:00 UTC (RPO 1d)",
        ),
        pb::Alert {
            state: pb::AlertState::Resolved as i32,
            resolved_at: ts(NOW - 3 * HOUR),
            raised_at: ts(NOW - 5 * HOUR),
            ..alert(
                "0199b000-0000-7000-8000-0000000000a1",
                pb::AlertKind::RestoreDrillFailed,
                "drill",
                "the restore drill failed",
            )
        },
    ]
}

fn recovery_points() -> pb::GetRecoveryPointsResponse {
    use pb::PackageType as T;
    let secs = |s: i64| Some(prost_types::Duration { seconds: s, nanos: 0 });
    let point = |source: &str, folder: &str, ty: T, age_h: i64, state: pb::RpoState| pb::RecoveryPoint {
        source_id: source.into(),
        folder: folder.into(),
        package_type: ty as i32,
        rpo: secs(86_400),
        last_backup_at: ts(NOW - age_h * HOUR),
        last_pass_at: ts(NOW - age_h * HOUR),
        age: secs(age_h * 3600),
        state: state as i32,
        unprotected_files: 0,
    };
    pb::GetRecoveryPointsResponse {
        points: vec![
            point("edge-01", "/srv/app/logs", T::AppLogs, 1, pb::RpoState::Held),
            point("edge-01", "/srv/reports", T::BusinessData, 2, pb::RpoState::Held),
            point("edge-02", "/home/ana/photos", T::UserData, 31, pb::RpoState::Breached),
        ],
        held: 2,
        breached: 1,
        worst_age: secs(31 * 3600),
    }
}

/// An operator's shorter user_data rule, held for the protection delay.
fn pending_change(rule_sets: &[pb::RuleSet]) -> pb::PendingChange {
    let before = rule_sets[0];
    let after = pb::RuleSet { hot: on(1), ..before };
    pb::PendingChange {
        change_id: 7,
        change: Some(pb::pending_change::Change::RuleSet(pb::RuleSetChange {
            before: Some(before),
            after: Some(after),
            shortened: vec!["hot wait 7d -> 1d".into()],
            origin: "update".into(),
        })),
        state: pb::PendingChangeState::Pending as i32,
        requested_by: "token:ann (operator)".into(),
        reason: "save space".into(),
        created_at: ts(NOW - HOUR),
        effective_at: ts(NOW + 23 * HOUR),
        ..Default::default()
    }
}

fn live_app() -> App {
    let mut app = App::new("http://127.0.0.1:50051".into(), 50);
    app.fleet = fixture().0;
    app.link = Link::Live;
    app
}

/// The screen as text, one line per row, trailing spaces trimmed.
fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    let mut max = 0;
    terminal.draw(|f| max = super::draw(f, app, NOW, Theme { color: false })).expect("draw");
    app.clamp_scroll(max);
    let buffer = terminal.backend().buffer();
    let mut lines = Vec::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol().to_owned()).collect();
        lines.push(line.trim_end().to_owned());
    }
    lines.join("\n")
}

fn press(app: &mut App, codes: &[KeyCode]) {
    for c in codes {
        app.on_key(KeyEvent::new(*c, KeyModifiers::NONE));
    }
}

/// Compares a screen with its snapshot in `screens/`; `UPDATE_SCREENS=1` rewrites the snapshots
/// instead (review the diff before committing it).
#[track_caller]
fn assert_screen(actual: &str, (expected, file): (&str, &str)) {
    if std::env::var_os("UPDATE_SCREENS").is_some() {
        let path = format!("{}/src/status/render/screens/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, format!("{actual}\n")).unwrap();
        return;
    }
    let expected = expected.strip_prefix('\n').unwrap_or(expected).trim_end_matches('\n');
    assert!(actual == expected, "screen differs\n--- expected\n{expected}\n--- actual\n{actual}\n---");
}

#[test]
fn overview_at_80x24() {
    let mut app = live_app();
    assert_screen(&screen(&mut app, 80, 24), OVERVIEW_80X24);
}

#[test]
fn packages_at_80x24() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('2')]);
    assert_screen(&screen(&mut app, 80, 24), PACKAGES_80X24);
}

#[test]
fn packages_at_120x40() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('2')]);
    assert_screen(&screen(&mut app, 120, 40), PACKAGES_120X40);
}

#[test]
fn filtered_packages_while_typing() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('/'), KeyCode::Char('a'), KeyCode::Char('n'), KeyCode::Char('a')]);
    let typing = screen(&mut app, 80, 24);
    assert!(typing.ends_with(" filter: ana▏  Enter keeps · Esc clears"), "{typing}");
    press(&mut app, &[KeyCode::Enter]);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("2 of 4 packages match \"ana\""), "{s}");
    assert!(s.contains("report.pdf") && !s.contains("app.log"), "{s}");
    assert!(s.ends_with("Esc clears · filter \"ana\""), "{s}");
}

fn station(id: &str, tier: pb::Tier, kind: pb::StationKind, uri: &str) -> pb::Station {
    pb::Station { station_id: id.into(), tier: tier as i32, kind: kind as i32, uri: uri.into() }
}

#[test]
fn alerts_at_100x30() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('7')]);
    assert_screen(&screen(&mut app, 100, 30), ALERTS_100X30);
}

#[test]
fn clients_rules_projections_journal_at_80x24() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('3')]);
    assert_screen(&screen(&mut app, 80, 24), CLIENTS_80X24);
    press(&mut app, &[KeyCode::Char('4')]);
    assert_screen(&screen(&mut app, 80, 24), RULES_80X24);
    press(&mut app, &[KeyCode::Char('5')]);
    assert_screen(&screen(&mut app, 80, 24), PROJECTIONS_80X24);
    press(&mut app, &[KeyCode::Char('6')]);
    assert_screen(&screen(&mut app, 80, 24), JOURNAL_80X24);
}

#[test]
fn scrolling_keeps_the_table_header_and_stops_at_the_end() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('2'), KeyCode::End]);
    let s = screen(&mut app, 80, 8);
    assert_screen(&s, PACKAGES_SCROLLED_80X8);
    assert_eq!(app.scroll[1], 2, "clamped to rows (5) minus visible rows (3)");
}

#[test]
fn a_lost_catcher_is_announced_and_the_last_data_stays() {
    let mut app = live_app();
    app.link = Link::Down {
        reason: "Unavailable: tcp connect error: Connection refused (os error 111)".into(),
        attempt: 3,
        retry_at: NOW + 4_000,
    };
    assert_screen(&screen(&mut app, 80, 24), OFFLINE_80X24);
}

#[test]
fn before_the_first_snapshot_it_says_what_it_waits_for() {
    let mut app = App::new("http://127.0.0.1:50051".into(), 50);
    let s = screen(&mut app, 80, 24);
    assert!(s.starts_with(" Edge Backup · http://127.0.0.1:50051"), "{s}");
    assert!(
        s.contains("connecting…") && s.contains("waiting for the first snapshot from http://127.0.0.1:50051"),
        "{s}"
    );
}

#[test]
fn paused_shows_held_updates_and_help_lists_the_keys() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('p')]);
    app.on_feed(crate::status::client::Feed::Event(Box::new(pb::WatchEvent {
        kind: Some(Kind::PackageDeleted("01973000-0000-7000-8000-000000000001".into())),
    })));
    let s = screen(&mut app, 80, 24);
    assert!(s.lines().next().unwrap().ends_with("paused · 1 updates held"), "{s}");
    press(&mut app, &[KeyCode::Char('?')]);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("filter packages (Enter keeps, Esc clears)"), "{s}");
    // At 80 columns the prose wraps instead of being cut: every word is on the screen.
    for word in ["happens.", "GetProjections", "packages.", "backoff."] {
        assert!(s.contains(word), "{word}: {s}");
    }
}

/// At 160 columns the packages table uses the room: the id's tail, the size and the stations.
#[test]
fn packages_at_160_columns_tell_packages_apart() {
    let mut app = live_app();
    press(&mut app, &[KeyCode::Char('2')]);
    let s = screen(&mut app, 160, 30);
    let header = s.lines().find(|l| l.contains("path")).unwrap();
    for col in ["id", "size", "copies on"] {
        assert!(header.contains(col), "{col}: {header}");
    }
    assert!(s.contains("00000001") && s.contains("1.0 MiB"), "{s}");
}

/// The live view's projections are the catcher's, over every package (not the 50 it holds).
#[test]
fn live_projections_come_from_the_catcher() {
    let mut app = live_app();
    let group = pb::ProjectionGroup {
        from_tier: pb::Tier::Hot as i32,
        to_tier: pb::Tier::Warm as i32,
        count: 743,
        total_bytes: 743 * MIB,
        earliest: ts(NOW + 90_000),
        ..Default::default()
    };
    let answer = pb::GetProjectionsResponse { groups: vec![group], ..Default::default() };
    app.on_feed(crate::status::client::Feed::Projections(Box::new(answer)));
    press(&mut app, &[KeyCode::Char('5')]);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("from all packages") && s.contains("743") && s.contains("in 1m 30s"), "{s}");
}

#[test]
fn tiny_and_odd_sizes_do_not_break() {
    let mut app = live_app();
    for (w, h) in [(1, 1), (10, 2), (20, 3), (40, 10), (80, 24), (200, 60)] {
        for section in ['1', '2', '3', '4', '5', '6', '7'] {
            press(&mut app, &[KeyCode::Char(section)]);
            let s = screen(&mut app, w, h);
            assert_eq!(s.split('\n').count(), usize::from(h));
            assert!(s.split('\n').all(|l| l.chars().count() <= usize::from(w)));
        }
    }
}

const OVERVIEW_80X24: (&str, &str) = (include_str!("screens/overview_80x24.txt"), "overview_80x24.txt");

const PACKAGES_80X24: (&str, &str) = (include_str!("screens/packages_80x24.txt"), "packages_80x24.txt");

const PACKAGES_120X40: (&str, &str) = (include_str!("screens/packages_120x40.txt"), "packages_120x40.txt");

const CLIENTS_80X24: (&str, &str) = (include_str!("screens/clients_80x24.txt"), "clients_80x24.txt");

const RULES_80X24: (&str, &str) = (include_str!("screens/rules_80x24.txt"), "rules_80x24.txt");

const PROJECTIONS_80X24: (&str, &str) = (include_str!("screens/projections_80x24.txt"), "projections_80x24.txt");

const JOURNAL_80X24: (&str, &str) = (include_str!("screens/journal_80x24.txt"), "journal_80x24.txt");

const PACKAGES_SCROLLED_80X8: (&str, &str) =
    (include_str!("screens/packages_scrolled_80x8.txt"), "packages_scrolled_80x8.txt");

const OFFLINE_80X24: (&str, &str) = (include_str!("screens/offline_80x24.txt"), "offline_80x24.txt");
const ALERTS_100X30: (&str, &str) = (include_str!("screens/alerts_100x30.txt"), "alerts_100x30.txt");
