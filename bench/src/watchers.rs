//! Simulated dashboards: `StatusService.Watch` subscribers that count what arrives and tell the
//! latency tracker when a package reaches a stage an agent sent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use edgebackup_proto::v1 as pb;
use pb::{status_service_client::StatusServiceClient, watch_event::Kind};
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::agents::EventGen;
use crate::latency::Tracker;

/// Counters shared by every watcher.
#[derive(Default)]
pub struct WatchStats {
    pub subscribed: AtomicU64,
    pub events: AtomicU64,
    pub package_changes: AtomicU64,
    pub snapshots: AtomicU64,
    pub errors: AtomicU64,
    pub messages: Mutex<Vec<String>>,
}

impl WatchStats {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut m = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() < 20 {
            m.push(what);
        }
    }
}

/// Runs watcher `w` until `stop` turns true.
pub async fn run_watcher(
    w: usize,
    ch: Channel,
    package_limit: u32,
    progress_per_package: u8,
    stats: &WatchStats,
    tracker: Option<&Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    let stages = EventGen::new(0, progress_per_package);
    let request = pb::WatchRequest { package_limit, journal_limit: 10 };
    let mut client = StatusServiceClient::new(ch);
    let mut stream = tokio::select! {
        r = client.watch(request) => match r {
            Ok(r) => r.into_inner(),
            Err(s) => return stats.error(format!("watcher {w}: Watch: {}: {}", s.code(), s.message())),
        },
        _ = stop.wait_for(|s| *s) => return,
    };
    stats.subscribed.fetch_add(1, Ordering::Relaxed);
    loop {
        let m = tokio::select! {
            m = stream.message() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let kind = match m {
            Ok(Some(pb::WatchEvent { kind: Some(k) })) => k,
            Ok(Some(_)) => continue,
            Ok(None) => return stats.error(format!("watcher {w}: the catcher ended the Watch stream")),
            Err(s) => return stats.error(format!("watcher {w}: {}: {}", s.code(), s.message())),
        };
        let now = Instant::now();
        stats.events.fetch_add(1, Ordering::Relaxed);
        match kind {
            Kind::Snapshot(_) => {
                stats.snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Kind::PackageChanged(p) => {
                stats.package_changes.fetch_add(1, Ordering::Relaxed);
                if let (Some(t), Some(stage)) = (tracker, stages.stage_of(p.status, p.progress_percent)) {
                    t.seen(w, &p.package_id, stage, now);
                }
            }
            _ => {}
        }
    }
}
