//! The scrub: on a schedule, every verified copy of this source's packages (as the catcher
//! records them) is measured again on the stations this agent has; what is damaged or missing
//! goes to the catcher (`ReportCopyChecks`), which marks the copy failed and has it written
//! again from a good one. Silent damage is found before a restore needs the copy.

use std::sync::Arc;
use std::time::Duration;

use edgebackup_proto::v1::{self as pb, package_service_client::PackageServiceClient};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::Engine;
use crate::restore::{self, Integrity, VerifyPlan};
use crate::state::now_ms;

/// The last scrub, kept in the state dir (a restart does not start it over) and shown by
/// `agent status`.
pub const SCRUB_KEY: &str = "scrub";
/// When this state dir first ran the scrub schedule.
const SCRUB_SINCE_KEY: &str = "scrub_since";

/// After a scrub that could not finish (catcher unreachable), the next try.
const RETRY: Duration = Duration::from_secs(3600);
/// Packages asked of the catcher per page, and checks per report.
const PAGE: u32 = 200;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScrubStatus {
    pub finished_at_ms: i64,
    pub packages: u64,
    pub copies: u64,
    pub damaged: u64,
    /// Why the last one did not finish, or a station whose repository check failed (tried
    /// again within the hour).
    pub error: String,
}

/// Runs the scrub every `schedule.scrub_interval_secs` until `stop`.
pub async fn keep_scrubbing(engine: Arc<Engine>, stop: CancellationToken) {
    let every = engine.config.schedule.scrub_interval_secs;
    if every == 0 {
        return;
    }
    // Only once enrolled: the link enrolls a new agent, and an enrollment token is good for
    // one use.
    let dir = crate::credential::dir(&engine.config);
    loop {
        let enrolled = edgebackup_common::client::Credential::load(&dir).ok().flatten().is_some();
        if enrolled || engine.config.token.is_empty() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => return,
        }
    }
    // The first scrub is one interval after the agent first ran it (not at every fresh start,
    // when the first backups are what matters).
    let since: i64 = match engine.state.meta(SCRUB_SINCE_KEY).ok().flatten() {
        Some(t) => t,
        None => {
            let now = now_ms();
            let _ = engine.state.set_meta(SCRUB_SINCE_KEY, &now);
            now
        }
    };
    let every_ms = i64::try_from(every).unwrap_or(i64::MAX).saturating_mul(1000);
    loop {
        let last: Option<ScrubStatus> = engine.state.meta(SCRUB_KEY).ok().flatten();
        let wait = match last {
            Some(last) if !last.error.is_empty() => RETRY.min(Duration::from_secs(every)),
            last => {
                let due = last.map_or(since, |l| l.finished_at_ms).saturating_add(every_ms);
                Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        let status = match scrub_once(&engine, &stop).await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "scrub did not finish; trying again later");
                ScrubStatus { finished_at_ms: now_ms(), error, ..Default::default() }
            }
        };
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = engine.state.set_meta(SCRUB_KEY, &status) {
            tracing::warn!(error = %e, "cannot record the scrub");
        }
    }
}

/// One scrub over every completed package of this source, page by page.
pub async fn scrub_once(engine: &Engine, stop: &CancellationToken) -> Result<ScrubStatus, String> {
    let config = &engine.config;
    let mut client = PackageServiceClient::new(restore::catcher_channel(config).await?);
    let mut status = ScrubStatus::default();
    // The repositories' structure once per station (`restic check` reads every index), then
    // each copy's bytes.
    for s in engine.stations.iter() {
        if let Err(e) = s.integrity().await {
            tracing::error!(station = %s.id(), error = %e, "scrub: the station's repository check failed");
            status.error = format!("station {}: {e}", s.id());
        }
    }
    let mut page_token = String::new();
    let scratch = config.state_dir.join("scrub");
    loop {
        let request = pb::ListPackagesRequest {
            source_id: config.source_id.clone(),
            status: pb::PackageStatus::Completed as i32,
            page_size: PAGE,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page =
            client.list_packages(request).await.map_err(|s| format!("the catcher: {}", s.message()))?.into_inner();
        // Damaged copies, and copies held as damaged that measure intact again.
        let mut reports = Vec::new();
        for p in page.packages {
            if stop.is_cancelled() {
                return Err("stopped".into());
            }
            let held_damaged = |station: &str| {
                p.placements
                    .iter()
                    .any(|pl| pl.station_id == station && pl.status == pb::PlacementStatus::Failed as i32)
            };
            let copies = p
                .placements
                .iter()
                // Copies held as damaged too: one that measures intact again (the station was
                // unreachable, not the bytes bad) is verified again, a damaged one stays so.
                .filter(|pl| {
                    pl.status == pb::PlacementStatus::Verified as i32 || pl.status == pb::PlacementStatus::Failed as i32
                })
                .filter(|pl| engine.stations.iter().any(|s| s.id() == pl.station_id))
                .map(|pl| (pl.station_id.clone(), None))
                .collect::<Vec<_>>();
            if copies.is_empty() {
                continue;
            }
            let plan = VerifyPlan {
                package_id: p.package_id.clone(),
                owner: p.source_id.clone(),
                sha256: p.sha256.clone(),
                copies,
            };
            let checks = restore::verify_plan(&engine.stations, &plan, &scratch, Integrity::Done).await;
            status.packages += 1;
            status.copies += checks.len() as u64;
            for c in checks.iter().filter(|c| !c.station_id.is_empty()) {
                if !c.ok {
                    tracing::error!(package = %c.package_id, station = %c.station_id, problem = %c.problem, "scrub found a damaged copy");
                    status.damaged += 1;
                } else if !held_damaged(&c.station_id) {
                    continue;
                }
                reports.push(c.to_wire());
            }
        }
        if !reports.is_empty() {
            send(&mut client, reports, pb::CheckOrigin::Scrub).await?;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    status.finished_at_ms = now_ms();
    tracing::info!(packages = status.packages, copies = status.copies, damaged = status.damaged, "scrub done");
    Ok(status)
}

/// Tells the catcher what checks found (`agent verify`).
pub async fn report(
    config: &Config,
    checks: Vec<pb::CopyCheck>,
    origin: pb::CheckOrigin,
) -> Result<pb::ReportCopyChecksResponse, String> {
    let mut client = PackageServiceClient::new(restore::catcher_channel(config).await?);
    send(&mut client, checks, origin).await
}

/// Sends checks on an open client, at most 1,000 per call (the catcher's limit).
async fn send(
    client: &mut PackageServiceClient<tonic::transport::Channel>,
    checks: Vec<pb::CopyCheck>,
    origin: pb::CheckOrigin,
) -> Result<pb::ReportCopyChecksResponse, String> {
    let mut total = pb::ReportCopyChecksResponse::default();
    for chunk in checks.chunks(1000) {
        let request = pb::ReportCopyChecksRequest { checks: chunk.to_vec(), origin: origin as i32 };
        let r = client.report_copy_checks(request).await.map_err(|s| s.message().to_owned())?.into_inner();
        total.damaged += r.damaged;
        total.repairs += r.repairs;
    }
    Ok(total)
}
