//! Protected retention: a change that would delete data sooner waits out the catcher's
//! protection delay as a pending change, which any operator may cancel.

use serde::{Deserialize, Serialize};

use super::RuleSet;
use crate::domain::{Millis, Spelling};

crate::domain::spelled!(
    /// Where a pending change stands.
    PendingState {
        Pending,
        Applied,
        Cancelled,
        Superseded,
        Failed,
    }
);

/// What a pending change does when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingKind {
    /// Puts `after` in force for its package type.
    RuleSet {
        before: RuleSet,
        after: RuleSet,
        /// What gets shorter, one line each.
        shortened: Vec<String>,
        /// "update", "preset NAME" or "snapshot N".
        origin: String,
    },
    /// Deletes a package's record.
    PackageDeletion { package_id: String, source_id: String, path: String },
}

impl PendingKind {
    /// The stored kind column.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RuleSet { .. } => "rule_set",
            Self::PackageDeletion { .. } => "package_deletion",
        }
    }
}

/// A change held for the protection delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub change_id: u64,
    pub kind: PendingKind,
    pub state: PendingState,
    pub requested_by: String,
    pub reason: String,
    pub created_at: Millis,
    pub effective_at: Millis,
    pub resolved_at: Option<Millis>,
    pub resolved_by: String,
    pub outcome: String,
}

impl PendingChange {
    pub fn is_open(&self) -> bool {
        self.state == PendingState::Pending
    }
}
