//! The fleet status view: what the status bar and tier counts show.

use std::collections::HashMap;

use super::{JournalEvent, Millis, PackageStatus, PackageType, Tier};

/// Counts and bytes of one tier (`None` = still on the edge).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierRow {
    pub tier: Option<Tier>,
    pub count: u64,
    pub bytes: u64,
    pub incoming_next_hour: u64,
    pub outgoing_next_hour: u64,
}

/// Counts and bytes of one package type in one tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeTierRow {
    pub package_type: PackageType,
    pub tier: Option<Tier>,
    pub count: u64,
    pub bytes: u64,
}

/// Component status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetStatus {
    pub version: String,
    pub started_at: Millis,
    pub database: String,
    pub clients_connected: u64,
    pub clients_total: u64,
    pub clients_stopped: u64,
    /// Order: on the edge, hot, warm, cold, offsite.
    pub tiers: Vec<TierRow>,
    /// Non-empty (type, tier) cells, by type then tier.
    pub type_tiers: Vec<TypeTierRow>,
    pub statuses: HashMap<PackageStatus, u64>,
    pub journal_head: u64,
    pub stations: u64,
    pub commands_open: u64,
    pub now: Millis,
    /// The newest restore drill's journal event.
    pub last_drill: Option<JournalEvent>,
    pub alerts_open: u64,
    pub alerts_unacknowledged: u64,
    /// Folders whose RPO holds / is breached, as of the last evaluation.
    pub rpo_held: u64,
    pub rpo_breached: u64,
    /// The catcher replicas on record, oldest first.
    pub replicas: Vec<super::Replica>,
    /// The replica holding the singleton lease (while it is unexpired).
    pub lease_holder: Option<String>,
}
