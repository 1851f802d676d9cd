//! Packages really move: hot → warm → cold → offsite → expired through four local-directory
//! stations, moved and verified by a mover agent, with the files checked on disk at each step.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;
use pb::policy_service_client::PolicyServiceClient;
use pb::status_service_client::StatusServiceClient;

use crate::harness::*;

const TIERS: [&str; 4] = ["hot", "warm", "cold", "offsite"];

fn catcher_stations() -> String {
    let mut s = String::from("scheduler_interval_ms = 200\ncommand_lease_secs = 5\nprotection_delay_secs = 0\n");
    for t in TIERS {
        s.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\ntier = \"{t}\"\nkind = \"local\"\nuri = \"$DIR/stations/{t}\"\n"
        ));
    }
    s
}

/// An agent that backs up three folders (user data, business data, cache) to the hot station
/// and moves packages between all four.
fn mover_config(world: &World) -> PathBuf {
    let mut text = format!(
        "source_id = \"edge-l\"\n{}state_dir = \"{}\"\nmax_backoff_secs = 1\nmover = true\nbackup_stations = [\"hot\"]\n\n[schedule]\ninterval_secs = 1\ndebounce_ms = 200\n\n",
        world.catcher.agent_toml("edge-l", true),
        world.path("l-state/").display()
    );
    for (folder, kind) in [("user", "user_data"), ("business", "business_data"), ("cache", "cache")] {
        let path = world.path(&format!("l-{folder}/"));
        std::fs::create_dir_all(&path).unwrap();
        text.push_str(&format!("[[folders]]\npath = \"{}\"\npackage_type = \"{kind}\"\n\n", path.display()));
    }
    for t in TIERS {
        text.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\nkind = \"local\"\nuri = \"{}\"\n\n",
            world.path(&format!("stations/{t}/")).display()
        ));
    }
    let config = world.path("l.toml");
    std::fs::write(&config, text).unwrap();
    config
}

fn secs(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: n, nanos: 0 })
}

fn stop(wait: i64, never_delete: bool) -> Option<pb::Stop> {
    Some(pb::Stop { enabled: true, wait: secs(wait), never_delete })
}

async fn fast_rules(world: &World) {
    let mut policy = PolicyServiceClient::new(world.channel().await);
    let rules = [
        pb::RuleSet {
            package_type: pb::PackageType::UserData as i32,
            hot: stop(2, false),
            warm: stop(2, false),
            cold: stop(2, false),
            offsite: stop(2, false),
            replicate_to_all: false,
            cache_ttl: None,
            rpo: None,
        },
        pb::RuleSet {
            package_type: pb::PackageType::BusinessData as i32,
            hot: stop(1, false),
            warm: stop(1, false),
            cold: stop(1, false),
            offsite: stop(1, true),
            replicate_to_all: true,
            cache_ttl: None,
            rpo: None,
        },
        pb::RuleSet {
            package_type: pb::PackageType::Cache as i32,
            hot: Some(pb::Stop { enabled: false, wait: None, never_delete: false }),
            warm: Some(pb::Stop { enabled: false, wait: None, never_delete: false }),
            cold: Some(pb::Stop { enabled: false, wait: None, never_delete: false }),
            offsite: Some(pb::Stop { enabled: false, wait: None, never_delete: false }),
            replicate_to_all: false,
            cache_ttl: secs(2),
            rpo: None,
        },
    ];
    for r in rules {
        let request = pb::UpdateRuleSetRequest { rule_set: Some(r), reason: "test".into() };
        policy.update_rule_set(request).await.unwrap();
    }
}

fn copy_in(world: &World, tier: &str, package_id: &str) -> PathBuf {
    world.dir.path().join(format!("stations/{tier}/edge-l/{package_id}.tar.zst"))
}

fn holders(world: &World, package_id: &str) -> Vec<&'static str> {
    TIERS.into_iter().filter(|t| copy_in(world, t, package_id).exists()).collect()
}

async fn package_of_path(world: &World, folder: &Path) -> pb::Package {
    eventually("a completed package of the folder", 60, || async {
        let path = folder.display().to_string();
        let done = [pb::PackageStatus::Completed as i32, pb::PackageStatus::Expired as i32];
        world
            .packages("edge-l")
            .await
            .into_iter()
            .find(|p| p.path.trim_end_matches('/') == path.trim_end_matches('/') && done.contains(&p.status))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_move_through_every_tier_with_verified_copies() {
    let world = World::with_catcher_config(&catcher_stations()).await;
    fast_rules(&world).await;
    let config = mover_config(&world);
    let user = world.path("l-user/");
    std::fs::write(user.join("doc.txt"), b"a document that travels").unwrap();
    std::fs::write(world.path("l-business/invoice.txt"), b"keep me everywhere").unwrap();
    std::fs::write(world.path("l-cache/tmp.bin"), b"short lived").unwrap();
    let _agent = Agent::start(&config).await;

    // user data: each tier in turn holds the copy (verified there), then it is deleted at expiry.
    let p = package_of_path(&world, &user).await;
    let id = p.package_id.clone();
    // What the projections promise for this package...
    let planned = world.package(&id).await.next_transition_at.expect("a planned move out of hot");
    let request = pb::GetProjectionsRequest { window: secs(60), ..Default::default() };
    let projections =
        StatusServiceClient::new(world.channel().await).get_projections(request).await.unwrap().into_inner();
    assert!(
        projections.groups.iter().any(|g| g.from_tier == pb::Tier::Hot as i32
            && g.to_tier == pb::Tier::Warm as i32
            && g.package_ids.contains(&id)),
        "{projections:?}"
    );
    let mut seen: Vec<&str> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = world.package(&id).await;
        let name = match pb::Tier::try_from(now.tier).unwrap_or(pb::Tier::Unspecified) {
            pb::Tier::Hot => "hot",
            pb::Tier::Warm => "warm",
            pb::Tier::Cold => "cold",
            pb::Tier::Offsite => "offsite",
            _ => "",
        };
        if !name.is_empty() && seen.last() != Some(&name) {
            // Entering a tier means a verified copy is already there.
            assert!(
                copy_in(&world, name, &id).exists(),
                "in {name} without a copy there; copies: {:?}",
                holders(&world, &id)
            );
            let pl = now.placements.iter().find(|pl| pl.station_id == name).expect("placement");
            assert_eq!(pl.status, pb::PlacementStatus::Verified as i32);
            assert_eq!(pl.verified_sha256, now.sha256);
            seen.push(name);
        }
        if name == "offsite" && user.join("doc.txt").exists() {
            // It holds the only copy of a file still on the device: kept, never planned to
            // expire (journaled as it reached the end of its route).
            eventually("the package retained at the end of its route", 30, || async {
                let kept = world.journal("package.retained").await;
                kept.iter().any(|e| e.package_id == id).then_some(())
            })
            .await;
            let kept = world.package(&id).await;
            assert_eq!(kept.status, pb::PackageStatus::Completed as i32, "{kept:?}");
            assert!(kept.next_transition_at.is_none(), "held until the file changes: {kept:?}");
            // The cold copy goes once the move is done; the offsite one stays.
            eventually("only the offsite copy left", 30, || async {
                (holders(&world, &id) == ["offsite"]).then_some(())
            })
            .await;
            // Deleted on the device: retention now counts from the deletion, then expires it.
            std::fs::remove_file(user.join("doc.txt")).unwrap();
        }
        if now.status == pb::PackageStatus::Expired as i32 {
            assert!(!user.join("doc.txt").exists(), "expired while its file was still present");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not expired within 120 s; seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, TIERS, "every tier, in order");
    eventually("no copy left on any station", 30, || async { holders(&world, &id).is_empty().then_some(()) }).await;
    let moved = world.journal("package.tier_changed").await;
    assert!(moved.iter().filter(|e| e.package_id == id && e.details_json.contains("moved")).count() >= 3);
    // ...is what then happened: it left hot after its planned time, within a few seconds.
    let left_hot = moved.iter().find(|e| e.package_id == id && e.status_before == "hot").expect("left hot");
    let at = left_hot.at.as_ref().unwrap();
    let (at_ms, planned_ms) = (
        at.seconds * 1000 + i64::from(at.nanos / 1_000_000),
        planned.seconds * 1000 + i64::from(planned.nanos / 1_000_000),
    );
    assert!(at_ms >= planned_ms && at_ms - planned_ms < 5_000, "planned {planned_ms}, happened {at_ms}");
    let expired = world.journal("package.expired").await;
    assert!(expired.iter().any(|e| e.package_id == id && e.details_json.contains("deleted")));

    // business data: replicated to every tier and never deleted offsite.
    let b = package_of_path(&world, &world.path("l-business/")).await;
    eventually("the business package copied to every tier", 60, || async {
        let now = world.package(&b.package_id).await;
        (now.tier == pb::Tier::Offsite as i32 && holders(&world, &b.package_id) == TIERS).then_some(())
    })
    .await;

    // cache: deleted from the hot station after its TTL, the first package and one made only now,
    // after business data reached offsite: the scheduler and the mover have worked since then.
    let c = package_of_path(&world, &world.path("l-cache/")).await;
    std::fs::write(world.path("l-cache/later.bin"), b"made after business data reached offsite").unwrap();
    let cache = world.path("l-cache/").display().to_string();
    eventually("both cache packages expired and deleted", 60, || async {
        let all = world.packages("edge-l").await;
        let cached: Vec<_> =
            all.iter().filter(|p| p.path.trim_end_matches('/') == cache.trim_end_matches('/')).collect();
        let gone = |p: &&pb::Package| {
            p.status == pb::PackageStatus::Expired as i32 && holders(&world, &p.package_id).is_empty()
        };
        (cached.len() >= 2 && cached.iter().all(gone) && cached.iter().any(|p| p.package_id == c.package_id))
            .then_some(())
    })
    .await;

    // Business data is still all there.
    let now = world.package(&b.package_id).await;
    assert_eq!(now.status, pb::PackageStatus::Completed as i32, "never deleted");
    assert!(now.next_transition_at.is_none(), "stays forever");
    assert_eq!(holders(&world, &b.package_id), TIERS);
    // And comes back from the offsite copy alone.
    let business = world.path("l-business/");
    let to = world.path("restored-offsite/");
    let (code, out, err) = agent_fn(
        &config,
        &[
            "restore",
            "--to",
            to.to_str().unwrap(),
            "--station",
            "offsite",
            "--folder",
            business.to_str().unwrap().trim_end_matches('/'),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let restored = to.join(business.to_string_lossy().trim_start_matches('/'));
    assert_eq!(std::fs::read(restored.join("invoice.txt")).unwrap(), b"keep me everywhere", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_hop_is_retried_and_never_loses_the_source_copy() {
    let world = World::with_catcher_config(&catcher_stations()).await;
    fast_rules(&world).await;
    let config = mover_config(&world);
    // The warm station is unusable: a file where its directory should be.
    let warm = world.dir.path().join("stations/warm");
    std::fs::remove_dir_all(&warm).ok();
    std::fs::write(&warm, b"not a directory").unwrap();
    let user = world.path("l-user/");
    std::fs::write(user.join("doc.txt"), b"precious").unwrap();
    let _agent = Agent::start(&config).await;
    let p = package_of_path(&world, &user).await;

    let failed = eventually("a failed move", 60, || async {
        let now = world.package(&p.package_id).await;
        now.placements
            .iter()
            .any(|pl| pl.station_id == "warm" && pl.status == pb::PlacementStatus::Failed as i32)
            .then_some(now)
    })
    .await;
    assert_eq!(failed.tier, pb::Tier::Hot as i32, "stays in hot while the hop fails");
    assert!(failed.last_error.contains("warm"), "{}", failed.last_error);
    assert!(copy_in(&world, "hot", &p.package_id).exists(), "the source copy is untouched");
    assert!(!world.journal("package.move_failed").await.is_empty());

    // Fixed: the retry (after its backoff) completes the hop.
    std::fs::remove_file(&warm).unwrap();
    std::fs::create_dir_all(&warm).unwrap();
    eventually("the move to succeed once warm exists", 90, || async {
        let now = world.package(&p.package_id).await;
        (now.tier >= pb::Tier::Warm as i32 || now.status == pb::PackageStatus::Expired as i32).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mover_killed_mid_move_is_replaced_by_another_attempt() {
    let world = World::with_catcher_config(&catcher_stations()).await;
    fast_rules(&world).await;
    let config = mover_config(&world);
    let user = world.path("l-user/");
    std::fs::write(user.join("big.bin"), random_bytes(120 << 20)).unwrap();
    let mut agent = Agent::start(&config).await;
    let p = package_of_path(&world, &user).await;
    // Kill the mover while the copy to warm is being made.
    eventually("a move to warm under way", 60, || async {
        let now = world.package(&p.package_id).await;
        now.placements
            .iter()
            .any(|pl| pl.station_id == "warm" && pl.status == pb::PlacementStatus::InProgress as i32)
            .then_some(())
    })
    .await;
    agent.kill().await;
    let at_kill = world.package(&p.package_id).await;
    assert_eq!(at_kill.tier, pb::Tier::Hot as i32);
    assert!(copy_in(&world, "hot", &p.package_id).exists());

    let _agent = Agent::start(&config).await;
    let moved = eventually("the move redone by the restarted mover", 120, || async {
        let now = world.package(&p.package_id).await;
        (now.tier >= pb::Tier::Warm as i32).then_some(now)
    })
    .await;
    let pl = moved.placements.iter().find(|pl| pl.station_id == "warm").unwrap();
    assert_eq!(pl.verified_sha256, moved.sha256);
    assert!(moved.tier > pb::Tier::Warm as i32 || copy_in(&world, "warm", &p.package_id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_and_restic_stations_in_the_chain() {
    for tool in ["rclone", "restic"] {
        let found = std::process::Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is required (Debian package `{tool}`)");
    }
    // hot: local; warm: an rclone remote; cold: a restic repository; offsite: local.
    let kinds = [("hot", "local"), ("warm", "rclone"), ("cold", "restic"), ("offsite", "local")];
    let mut catcher = String::from("scheduler_interval_ms = 200\ncommand_lease_secs = 5\nprotection_delay_secs = 0\n");
    for (t, kind) in kinds {
        catcher.push_str(&format!(
            "[[stations]]\nid = \"{t}\"\ntier = \"{t}\"\nkind = \"{kind}\"\nuri = \"$DIR/stations/{t}\"\n"
        ));
    }
    let world = World::with_catcher_config(&catcher).await;
    fast_rules(&world).await;
    let password = world.path("restic-password");
    std::fs::write(&password, "tiers all the way down\n").unwrap();
    let user = world.path("l-user/");
    let mut text = format!(
        "source_id = \"edge-l\"\n{}state_dir = \"{}\"\nmax_backoff_secs = 1\nmover = true\nbackup_stations = [\"hot\"]\n\n[schedule]\ninterval_secs = 1\ndebounce_ms = 200\n\n[[folders]]\npath = \"{}\"\n\n",
        world.catcher.agent_toml("edge-l", true),
        world.path("l-state/").display(),
        user.display()
    );
    for (t, kind) in kinds {
        let uri = world.path(&format!("stations/{t}/"));
        text.push_str(&format!("[[stations]]\nid = \"{t}\"\nkind = \"{kind}\"\nuri = \"{}\"\n", uri.display()));
        if kind == "restic" {
            text.push_str(&format!("password_file = \"{}\"\n", password.display()));
        }
        text.push('\n');
    }
    let config = world.path("l.toml");
    std::fs::write(&config, text).unwrap();
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("ledger.csv"), b"2026-11-24,42\n".repeat(1000)).unwrap();
    let _agent = Agent::start(&config).await;
    let p = package_of_path(&world, &user).await;

    // Through every tier with a verified copy, then expired with every copy deleted.
    let mut verified_at = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let now = world.package(&p.package_id).await;
        for pl in &now.placements {
            if pl.status == pb::PlacementStatus::Verified as i32 {
                assert_eq!(pl.verified_sha256, now.sha256, "{pl:?}");
                verified_at.insert(pl.station_id.clone());
            }
        }
        if now.tier == pb::Tier::Offsite as i32 && user.join("ledger.csv").exists() {
            // Kept while the file is on the device; deleted there, it may expire.
            std::fs::remove_file(user.join("ledger.csv")).unwrap();
        }
        if now.status == pb::PackageStatus::Expired as i32 {
            assert!(!user.join("ledger.csv").exists(), "expired while its file was still present");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not expired within 180 s: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(verified_at.into_iter().collect::<Vec<_>>(), ["cold", "hot", "offsite", "warm"]);
    let rclone_copy = world.dir.path().join(format!("stations/warm/edge-l/{}.tar.zst", p.package_id));
    assert!(!rclone_copy.exists(), "the rclone copy was deleted after the move");
    let snapshots = std::process::Command::new("restic")
        .args(["--repo", world.dir.path().join("stations/cold").to_str().unwrap(), "snapshots", "--json"])
        .args(["--tag", &format!("package:{}", p.package_id)])
        .env("RESTIC_PASSWORD_FILE", &password)
        .output()
        .unwrap();
    assert!(snapshots.status.success(), "{}", String::from_utf8_lossy(&snapshots.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&snapshots.stdout).unwrap_or_default();
    assert!(list.is_empty(), "the restic snapshot was forgotten after the move: {list:?}");
}

async fn drill(world: &World, tier: pb::Tier) -> pb::CommandInfo {
    let mut c = pb::source_service_client::SourceServiceClient::new(world.channel().await);
    let request = pb::CreateCommandRequest {
        source_id: "edge-l".into(),
        kind: pb::CommandKind::RestoreDrill as i32,
        package_id: String::new(),
        args: Some(pb::CommandArgs {
            kind: Some(pb::command_args::Kind::RestoreDrill(pb::RestoreDrillArgs {
                tier: tier as i32,
                sample: 1,
                ..Default::default()
            })),
        }),
    };
    let id = c.create_command(request).await.unwrap().into_inner().command.unwrap().command_id;
    eventually("the drill command's result", 60, || {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            let list = c.list_commands(pb::ListCommandsRequest { source_id: "edge-l".into(), ..Default::default() });
            list.await.ok()?.into_inner().commands.into_iter().find(|i| {
                i.command.as_ref().is_some_and(|c| c.command_id == id)
                    && (i.state == pb::CommandState::Succeeded as i32 || i.state == pb::CommandState::Failed as i32)
            })
        }
    })
    .await
}

async fn last_drill(world: &World) -> Option<pb::RestoreDrillSummary> {
    let mut s = StatusServiceClient::new(world.channel().await);
    s.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().last_restore_drill
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drills_find_a_corrupt_copy_and_it_is_re_sent() {
    let world = World::with_catcher_config(&catcher_stations()).await;
    fast_rules(&world).await;
    let config = mover_config(&world);
    std::fs::write(world.path("l-business/ledger.txt"), b"balance 42\n".repeat(500)).unwrap();
    let _agent = Agent::start(&config).await;
    let p = package_of_path(&world, &world.path("l-business/")).await;
    eventually("the business package on a station", 60, || async {
        let now = world.package(&p.package_id).await;
        (now.tier == pb::Tier::Offsite as i32 && holders(&world, &p.package_id) == TIERS).then_some(())
    })
    .await;

    let ok = drill(&world, pb::Tier::Offsite).await;
    assert_eq!(ok.state, pb::CommandState::Succeeded as i32, "{ok:?}");
    let summary = last_drill(&world).await.expect("a drill in the status");
    assert!(summary.passed && summary.tier == "offsite" && summary.packages_checked == 1, "{summary:?}");

    // Damage the offsite copy: the drill names it, the status shows it, and it is re-sent.
    let offsite = copy_in(&world, "offsite", &p.package_id);
    let mut bytes = std::fs::read(&offsite).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&offsite, bytes).unwrap();
    let bad = drill(&world, pb::Tier::Offsite).await;
    assert_eq!(bad.state, pb::CommandState::Failed as i32, "{bad:?}");
    assert!(bad.result_message.contains("offsite"), "{bad:?}");
    let summary = last_drill(&world).await.unwrap();
    assert!(!summary.passed, "failures are surfaced in the status: {summary:?}");
    assert!(!world.journal("package.resend_started").await.is_empty());
    eventually("the damaged copy re-sent and verified", 60, || async {
        let now = world.package(&p.package_id).await;
        let pl = now.placements.iter().find(|pl| pl.station_id == "offsite")?;
        (pl.status == pb::PlacementStatus::Verified as i32 && sha256_file(&offsite) == now.sha256).then_some(())
    })
    .await;
    let again = drill(&world, pb::Tier::Offsite).await;
    assert_eq!(again.state, pb::CommandState::Succeeded as i32, "{again:?}");

    // Damage found by `agent verify` from a shell, while the daemon holds the state dir: named,
    // reported to the catcher (the copy marked failed, journaled), and written again.
    let mut bytes = std::fs::read(&offsite).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&offsite, bytes).unwrap();
    let damaged_before = world.journal("package.copy_damaged").await.len();
    let (code, stdout, stderr) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("on station offsite") && stdout.contains("expected"), "names the damaged copy: {stdout}");
    assert!(stdout.contains("1 copy(ies) marked damaged, 1 being written again"), "{stdout}{stderr}");
    let events = world.journal("package.copy_damaged").await;
    assert_eq!(events.len(), damaged_before + 1, "{events:?}");
    assert_eq!((events[0].station_id.as_str(), events[0].package_id.as_str()), ("offsite", p.package_id.as_str()));
    eventually("the copy `agent verify` found damaged re-sent and verified", 60, || async {
        let now = world.package(&p.package_id).await;
        let pl = now.placements.iter().find(|pl| pl.station_id == "offsite")?;
        (pl.status == pb::PlacementStatus::Verified as i32 && sha256_file(&offsite) == now.sha256).then_some(())
    })
    .await;
    let (code, stdout, stderr) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "every copy intact again: {stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drills_run_on_a_schedule() {
    let world = World::with_catcher_config(&format!("restore_drill_interval_secs = 2\n{}", catcher_stations())).await;
    fast_rules(&world).await;
    let config = mover_config(&world);
    std::fs::write(world.path("l-business/ledger.txt"), b"scheduled\n").unwrap();
    let _agent = Agent::start(&config).await;
    package_of_path(&world, &world.path("l-business/")).await;
    let passed = eventually("a passing drill after the re-send", 60, || async {
        let events = world.journal("restore_drill.passed").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(passed[0].source_id, "edge-l");
    assert!(last_drill(&world).await.is_some_and(|d| d.passed));
}
