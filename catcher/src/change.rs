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
    /// Changes were missed (the feed pruned rows this replica had not read): every live view
    /// starts over from a snapshot.
    Resync,
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
    /// Commands were created or changed: dispatchers look for due ones again.
    pub commands: bool,
}

impl Changes {
    /// Whether the batch changed anything a live view, a status view or a dispatcher hears of.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && self.deleted_packages.is_empty()
            && self.sources.is_empty()
            && self.journal.is_empty()
            && self.rules.is_none()
            && self.restores.is_empty()
            && self.pending.is_empty()
            && self.alerts.is_empty()
            && !self.status
            && !self.commands
    }
}

/// What one committed batch changed, by reference: a row of the changes feed that replicas
/// sharing a database read in commit order (`watch::feed`). References, not copies: a row stays
/// small, and the rows it names are read as they are when the feed reaches it (a newer state is
/// heard early, then again; never an older one after a newer). Journal entries never change, so
/// every replica hears exactly the entries that were appended, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeRefs {
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_packages: Vec<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// First and last journal sequence appended.
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<(u64, u64)>,
    #[serde(rename = "r", default, skip_serializing_if = "std::ops::Not::not")]
    pub rules: bool,
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<String>,
    #[serde(rename = "pc", default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<u64>,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    #[serde(rename = "st", default, skip_serializing_if = "std::ops::Not::not")]
    pub status: bool,
    #[serde(rename = "c", default, skip_serializing_if = "std::ops::Not::not")]
    pub commands: bool,
}

impl ChangeRefs {
    /// The references of what `c` changed.
    pub fn of(c: &Changes) -> Self {
        let journal = match (c.journal.first(), c.journal.last()) {
            (Some(first), Some(last)) => Some((first.sequence, last.sequence)),
            _ => None,
        };
        Self {
            packages: c.packages.iter().map(|p| p.package_id.clone()).collect(),
            deleted_packages: c.deleted_packages.clone(),
            sources: c.sources.iter().map(|s| s.source.source_id.clone()).collect(),
            journal,
            rules: c.rules.is_some(),
            restores: c.restores.iter().map(|r| r.command_id.clone()).collect(),
            pending: c.pending.iter().map(|p| p.change_id).collect(),
            alerts: c.alerts.iter().map(|a| a.id.clone()).collect(),
            status: c.status,
            commands: c.commands,
        }
    }
}
