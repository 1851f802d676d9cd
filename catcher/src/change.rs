//! What committed writes changed: the closed set of changes the live views hear, produced by
//! the writer after each commit and fanned out by `watch`.

use std::sync::Arc;

use crate::domain::{Alert, Command, FleetStatus, JournalEvent, Package, SourceView};
use crate::rules::PendingChange;
use crate::rules::RuleSet;

/// One committed change.
#[derive(Debug, Clone)]
pub enum Change {
    Package(Package),
    PackageDeleted(String),
    Source(SourceView),
    Journal(JournalEvent),
    Rules(Vec<RuleSet>),
    Status(Arc<FleetStatus>),
    /// A restore was created, progressed or finished.
    Restore(Command),
    /// A pending change was created or resolved.
    Pending(PendingChange),
    /// An alert was raised, changed, acknowledged or resolved.
    Alert(Alert),
}

/// What one committed batch changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub packages: Vec<Package>,
    pub deleted_packages: Vec<String>,
    pub sources: Vec<SourceView>,
    pub journal: Vec<JournalEvent>,
    pub rules: Option<Vec<RuleSet>>,
    /// Restore commands created or changed.
    pub restores: Vec<Command>,
    /// Pending changes created or resolved.
    pub pending: Vec<PendingChange>,
    /// Alerts raised, changed, acknowledged or resolved.
    pub alerts: Vec<Alert>,
    /// Counters, connections or commands changed: the status view is stale.
    pub status: bool,
}
