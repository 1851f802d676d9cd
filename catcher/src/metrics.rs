//! Prometheus metrics: what the catcher does (commits, events, command results) counted where
//! it happens, and what the fleet looks like (packages and bytes per tier, connected agents)
//! set from the status view when scraped. Labels are bounded: tiers, statuses, command kinds and
//! outcomes, never a package or a source.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::domain::{
    AlertKind, EventType, FleetStatus, JournalEvent, PackageStatus, RpoState, RpoView, Spelling, Tier,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// `edge` (not stored yet), `hot`, `warm`, `cold`, `offsite`.
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// The journal event type (`package.tier_changed`, `package.move_failed`,
    /// `restore_drill.failed`, `package.copy_damaged`…): a closed list.
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The alert kind (`rpo_breached`, `agent_silent`…): a closed list.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpoLabel {
    /// `held` or `breached`.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    /// A configured channel's name (the config bounds them).
    pub channel: String,
    /// `delivered` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

/// Every metric the catcher exposes. Cheap to clone (shared atomics).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Agent events applied (replays skipped and rejected events not counted).
    pub events_applied: Counter,
    /// Ops per group commit.
    pub commit_ops: Histogram,
    /// Time from a batch's begin to its commit.
    pub commit_seconds: Histogram,
    /// Journal events by type: what happened, moves and verifications by outcome included.
    pub journal_events: Family<EventLabel, Counter>,
    packages: Family<TierLabel, Gauge>,
    package_bytes: Family<TierLabel, Gauge>,
    packages_by_status: Family<StatusLabel, Gauge>,
    agents_connected: Gauge,
    agents_total: Gauge,
    agents_stopped: Gauge,
    commands_open: Gauge,
    alerts_open: Family<KindLabel, Gauge>,
    rpo_folders: Family<RpoLabel, Gauge>,
    notifications: Family<DeliveryLabel, Counter>,
    notifications_pending: Gauge,
    /// Per source (only with `metrics_per_source`: one series per source).
    source_connected: Family<SourceLabel, Gauge>,
    source_rpo_age: Family<SourceLabel, Gauge>,
    source_last_backup: Family<SourceLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Arc::new(Registry::default()),
            events_applied: Counter::default(),
            commit_ops: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            journal_events: Family::default(),
            packages: Family::default(),
            package_bytes: Family::default(),
            packages_by_status: Family::default(),
            agents_connected: Gauge::default(),
            agents_total: Gauge::default(),
            agents_stopped: Gauge::default(),
            commands_open: Gauge::default(),
            alerts_open: Family::default(),
            rpo_folders: Family::default(),
            notifications: Family::default(),
            notifications_pending: Gauge::default(),
            source_connected: Family::default(),
            source_rpo_age: Family::default(),
            source_last_backup: Family::default(),
        };
        let mut r = Registry::with_prefix("edgebackup");
        r.register("events_applied", "Agent events applied", m.events_applied.clone());
        r.register("commit_ops", "Writes applied per group commit", m.commit_ops.clone());
        r.register_with_unit("commit", "Group commit latency", Unit::Seconds, m.commit_seconds.clone());
        r.register("journal_events", "Journal events by type (moves, verifications, trips…)", m.journal_events.clone());
        r.register("packages", "Packages per tier (edge: not stored yet; expired ones left out)", m.packages.clone());
        r.register_with_unit("package", "Package bytes per tier", Unit::Bytes, m.package_bytes.clone());
        r.register("packages_by_status", "Packages per status", m.packages_by_status.clone());
        r.register("agents_connected", "Agents with an open stream", m.agents_connected.clone());
        r.register("agents", "Sources known to the catcher", m.agents_total.clone());
        r.register("agents_stopped_for_safety", "Sources whose panic brake is tripped", m.agents_stopped.clone());
        r.register("commands_open", "Commands not answered yet", m.commands_open.clone());
        r.register("alerts_open", "Open alerts by kind (as of the last evaluation)", m.alerts_open.clone());
        r.register(
            "rpo_folders",
            "Folders whose RPO holds or is breached (as of the last evaluation)",
            m.rpo_folders.clone(),
        );
        r.register("notifications", "Notification delivery attempts by channel and outcome", m.notifications.clone());
        r.register("notifications_pending", "Notifications waiting to be delivered", m.notifications_pending.clone());
        r.register(
            "source_connected",
            "1 while the source's agent is connected (metrics_per_source)",
            m.source_connected.clone(),
        );
        r.register_with_unit(
            "source_rpo_age",
            "Age of the source's oldest recovery point among folders with an RPO (metrics_per_source)",
            Unit::Seconds,
            m.source_rpo_age.clone(),
        );
        r.register_with_unit(
            "source_last_backup_timestamp",
            "When the source's least recently backed-up folder was last complete (metrics_per_source)",
            Unit::Seconds,
            m.source_last_backup.clone(),
        );
        Self { registry: Arc::new(r), ..m }
    }

    /// A group commit of `ops` writes took `took` and journaled `journal`.
    pub fn committed(&self, ops: usize, took: Duration, journal: &[JournalEvent]) {
        self.commit_ops.observe(ops as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        for e in journal {
            let event = EventType::parse(&e.entry.event_type).map_or("other", EventType::as_str);
            self.journal_events.get_or_create(&EventLabel { event }).inc();
        }
    }

    /// Open alerts per kind after an evaluation (every kind gets a series, zero included).
    pub fn set_alerts_open(&self, open: &std::collections::HashMap<AlertKind, u64>) {
        for k in AlertKind::ALL {
            self.alerts_open
                .get_or_create(&KindLabel { kind: k.as_str() })
                .set(clamp(open.get(k).copied().unwrap_or(0)));
        }
    }

    /// Folders per RPO state after an evaluation.
    pub fn set_rpo(&self, views: &[RpoView]) {
        for (state, label) in [(RpoState::Held, "held"), (RpoState::Breached, "breached")] {
            let n = views.iter().filter(|v| v.state == state).count() as u64;
            self.rpo_folders.get_or_create(&RpoLabel { state: label }).set(clamp(n));
        }
    }

    /// Per-source series from an evaluation: connected, worst RPO age, oldest last backup.
    pub fn set_sources(&self, connected: &[(String, bool)], views: &[RpoView]) {
        self.source_connected.clear();
        self.source_rpo_age.clear();
        self.source_last_backup.clear();
        for (source, up) in connected {
            self.source_connected.get_or_create(&SourceLabel { source: source.clone() }).set(i64::from(*up));
        }
        let mut worst: std::collections::HashMap<&str, (i64, Option<i64>)> = std::collections::HashMap::new();
        for v in views.iter().filter(|v| v.state != RpoState::None) {
            let e = worst.entry(&v.source_id).or_insert((0, v.last_backup_at));
            e.0 = e.0.max(v.age_ms);
            e.1 = match (e.1, v.last_backup_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        }
        for (source, (age_ms, last)) in worst {
            let label = SourceLabel { source: source.to_owned() };
            self.source_rpo_age.get_or_create(&label).set(age_ms / 1000);
            if let Some(at) = last {
                self.source_last_backup.get_or_create(&label).set(at / 1000);
            }
        }
    }

    /// Starts the delivery series of each configured channel at zero (a rate needs a start).
    pub fn channels<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for channel in names {
            for outcome in ["delivered", "failed"] {
                let _ = self.notifications.get_or_create(&DeliveryLabel { channel: channel.to_owned(), outcome });
            }
        }
    }

    /// One delivery attempt through `channel`.
    pub fn notification(&self, channel: &str, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.notifications.get_or_create(&DeliveryLabel { channel: channel.to_owned(), outcome }).inc();
    }

    /// Notifications waiting, all channels.
    pub fn set_notifications_pending(&self, n: u64) {
        self.notifications_pending.set(clamp(n));
    }

    /// The text exposition, with the fleet gauges set from `status` first.
    pub fn render(&self, status: &FleetStatus) -> String {
        for row in &status.tiers {
            let tier = TierLabel { tier: tier_name(row.tier) };
            self.packages.get_or_create(&tier).set(i64::try_from(row.count).unwrap_or(i64::MAX));
            self.package_bytes.get_or_create(&tier).set(i64::try_from(row.bytes).unwrap_or(i64::MAX));
        }
        for s in PackageStatus::ALL {
            let n = status.statuses.get(s).copied().unwrap_or(0);
            self.packages_by_status.get_or_create(&StatusLabel { status: s.as_str() }).set(clamp(n));
        }
        self.agents_connected.set(clamp(status.clients_connected));
        self.agents_total.set(clamp(status.clients_total));
        self.agents_stopped.set(clamp(status.clients_stopped));
        self.commands_open.set(clamp(status.commands_open));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn tier_name(tier: Option<Tier>) -> &'static str {
    tier.map_or("edge", Spelling::as_str)
}

/// The content type of [`Metrics::render`]: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
