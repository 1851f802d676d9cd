//! Simulated dashboards: `StatusService.Watch` subscribers that count what arrives and tell the
//! latency tracker when a package reaches a stage an agent sent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use edgebackup_common::client::PersonChannel as Channel;
use edgebackup_proto::codec::CompactCodec;
use edgebackup_proto::v1 as pb;
use tokio::sync::watch;
use tonic::codegen::http::uri::PathAndQuery;

use crate::agents::EventGen;
use crate::latency::Tracker;

/// The part of a `WatchEvent` a watcher reads. The catcher encodes the full message; decoding
/// only these fields (prost skips the rest without allocating) keeps the load generator, which
/// shares the catcher's cores, from inflating the latency it measures. Tags as in status.proto
/// and common.proto.
#[derive(Clone, PartialEq, prost::Message)]
struct SeenEvent {
    #[prost(oneof = "Seen", tags = "1, 2")]
    kind: Option<Seen>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Seen {
    /// `FleetSnapshot snapshot = 1`, contents not read.
    #[prost(message, tag = "1")]
    Snapshot(Skipped),
    /// `Package package_changed = 2`.
    #[prost(message, tag = "2")]
    PackageChanged(SeenPackage),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

#[derive(Clone, PartialEq, prost::Message)]
struct SeenPackage {
    #[prost(string, tag = "1")]
    package_id: String,
    #[prost(enumeration = "pb::PackageStatus", tag = "7")]
    status: i32,
    #[prost(uint32, tag = "9")]
    progress_percent: u32,
}

const WATCH: &str = "/edgebackup.v1.StatusService/Watch";

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
    let mut client = tonic::client::Grpc::new(ch);
    let watch = async {
        client.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = CompactCodec::<pb::WatchRequest, SeenEvent>::default();
        client.server_streaming(tonic::Request::new(request), PathAndQuery::from_static(WATCH), codec).await
    };
    let mut stream = tokio::select! {
        r = watch => match r {
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
            Ok(Some(SeenEvent { kind: Some(k) })) => k,
            Ok(Some(_)) => continue,
            Ok(None) => return stats.error(format!("watcher {w}: the catcher ended the Watch stream")),
            Err(s) => return stats.error(format!("watcher {w}: {}: {}", s.code(), s.message())),
        };
        let now = Instant::now();
        stats.events.fetch_add(1, Ordering::Relaxed);
        match kind {
            Seen::Snapshot(_) => {
                stats.snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Seen::PackageChanged(p) => {
                stats.package_changes.fetch_add(1, Ordering::Relaxed);
                if let (Some(t), Some(stage)) = (tracker, stages.stage_of(p.status, p.progress_percent)) {
                    t.seen(w, &p.package_id, stage, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn the_partial_decoding_reads_what_the_full_message_says() {
        let package = pb::Package {
            package_id: "p-1".into(),
            source_id: "edge-1".into(),
            status: pb::PackageStatus::InProgress as i32,
            progress_percent: 42,
            sha256: "ab".repeat(32),
            ..Default::default()
        };
        let full = pb::WatchEvent { kind: Some(pb::watch_event::Kind::PackageChanged(package)) };
        let seen = SeenEvent::decode(full.encode_to_vec().as_slice()).unwrap();
        let Some(Seen::PackageChanged(p)) = seen.kind else { panic!("{seen:?}") };
        assert_eq!(
            (p.package_id.as_str(), p.status, p.progress_percent),
            ("p-1", pb::PackageStatus::InProgress as i32, 42)
        );
        let source = pb::WatchEvent { kind: Some(pb::watch_event::Kind::SourceChanged(Default::default())) };
        assert_eq!(SeenEvent::decode(source.encode_to_vec().as_slice()).unwrap().kind, None);
        let snapshot = pb::WatchEvent { kind: Some(pb::watch_event::Kind::Snapshot(Default::default())) };
        assert!(matches!(
            SeenEvent::decode(snapshot.encode_to_vec().as_slice()).unwrap().kind,
            Some(Seen::Snapshot(_))
        ));
    }
}
