//! Alerts, their notifications, and recovery points (how recent each folder's last complete,
//! verified backup is).

use super::{Millis, PackageType, Spelling};

spelled!(
    /// What an alert is about; one open alert per (kind, subject).
    AlertKind {
        RpoBreached,
        AgentSilent,
        PackageFailed,
        SafetyTripped,
        RestoreDrillFailed,
        MoveFailing,
        StationFailing,
        JournalBroken,
        PendingChange,
        ChannelFailing,
    }
);

spelled!(
    /// Why a notification is sent.
    Transition { Raised, Resolved }
);

spelled!(
    /// Where a notification stands.
    DeliveryState { Pending, Delivered, Abandoned }
);

/// One alert: raised once per condition, open while it holds, resolved when it clears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// UUIDv7.
    pub id: String,
    pub kind: AlertKind,
    pub subject: String,
    pub source_id: String,
    pub message: String,
    pub raised_at: Millis,
    pub resolved_at: Option<Millis>,
    pub acknowledged_at: Option<Millis>,
    pub acknowledged_by: String,
    pub note: String,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// A condition the evaluator found holding now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: AlertKind,
    pub subject: String,
    pub source_id: String,
    pub message: String,
}

/// One alert transition to deliver through one channel (a durable queue row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// UUIDv7; receivers may use it to drop a repeat.
    pub id: String,
    pub alert_id: String,
    pub channel: String,
    pub transition: Transition,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: Millis,
    pub next_attempt_at: Millis,
    pub delivered_at: Option<Millis>,
    pub last_error: String,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Try again at this time.
    Retry {
        error: String,
        at: Millis,
    },
    /// Given up (too old): kept for the record.
    Abandoned {
        error: String,
    },
}

/// One folder's last passes as the agent reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPoint {
    pub source_id: String,
    pub folder: String,
    pub package_type: PackageType,
    /// The first pass reported: a folder never fully backed up is judged from it.
    pub first_pass_at: Millis,
    /// The last pass after which every file had a verified copy.
    pub last_backup_at: Option<Millis>,
    /// The last pass finished.
    pub last_pass_at: Millis,
    /// Files the last pass saw without a package holding their contents.
    pub unprotected: u64,
}

/// Whether a folder's RPO holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpoState {
    Held,
    Breached,
    /// Its package type has no objective.
    None,
}

/// A recovery point judged against its objective at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpoView {
    pub source_id: String,
    /// Empty for a source that never finished a pass.
    pub folder: String,
    pub package_type: PackageType,
    /// 0: no objective.
    pub rpo_ms: Millis,
    pub last_backup_at: Option<Millis>,
    pub last_pass_at: Option<Millis>,
    pub age_ms: Millis,
    pub state: RpoState,
    pub unprotected: u64,
}

impl RpoView {
    /// Judges `age_ms` against `rpo_ms`.
    pub fn state_of(rpo_ms: Millis, age_ms: Millis) -> RpoState {
        match rpo_ms {
            0 => RpoState::None,
            rpo if age_ms > rpo => RpoState::Breached,
            _ => RpoState::Held,
        }
    }

    /// The alert subject: "SOURCE:FOLDER", or the source alone when it has no folder yet.
    pub fn subject(&self) -> String {
        if self.folder.is_empty() { self.source_id.clone() } else { format!("{}:{}", self.source_id, self.folder) }
    }
}

/// The evaluator's latest fleet-wide tally of recovery points, for the status view.
#[derive(Debug, Default)]
pub struct RpoTally {
    pub held: std::sync::atomic::AtomicU64,
    pub breached: std::sync::atomic::AtomicU64,
}

impl RpoTally {
    /// Records the tally of `views`; whether it changed.
    pub fn set(&self, views: &[RpoView]) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let count = |s| views.iter().filter(|v| v.state == s).count() as u64;
        let now = (count(RpoState::Held), count(RpoState::Breached));
        let before = (self.held.swap(now.0, Relaxed), self.breached.swap(now.1, Relaxed));
        before != now
    }

    /// (held, breached).
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.held.load(Relaxed), self.breached.load(Relaxed))
    }
}

/// The default RPO of a package type (when its rule set names none).
pub fn default_rpo_ms(t: PackageType) -> Millis {
    match t {
        PackageType::Cache => 0,
        PackageType::JobPackage => 7 * super::DAY_MS,
        _ => super::DAY_MS,
    }
}
