//! The journal's event types: one closed list, one spelling each (what the chain's hashes cover).

/// What a journal event records. The spelling (`package.ingested`) is stored and hashed, so a
/// variant's spelling never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
pub enum EventType {
    #[strum(serialize = "package.ingested")]
    PackageIngested,
    #[strum(serialize = "package.started")]
    PackageStarted,
    #[strum(serialize = "package.retried")]
    PackageRetried,
    #[strum(serialize = "package.completed")]
    PackageCompleted,
    #[strum(serialize = "package.failed")]
    PackageFailed,
    #[strum(serialize = "package.deleted")]
    PackageDeleted,
    #[strum(serialize = "package.tier_changed")]
    PackageTierChanged,
    #[strum(serialize = "package.expired")]
    PackageExpired,
    #[strum(serialize = "package.kept_forever")]
    PackageKeptForever,
    #[strum(serialize = "package.move_started")]
    PackageMoveStarted,
    #[strum(serialize = "package.move_failed")]
    PackageMoveFailed,
    #[strum(serialize = "package.expiry_started")]
    PackageExpiryStarted,
    #[strum(serialize = "package.delete_failed")]
    PackageDeleteFailed,
    #[strum(serialize = "package.resend_started")]
    PackageResendStarted,
    #[strum(serialize = "package.resend_failed")]
    PackageResendFailed,
    #[strum(serialize = "source.registered")]
    SourceRegistered,
    #[strum(serialize = "source.connected")]
    SourceConnected,
    #[strum(serialize = "source.disconnected")]
    SourceDisconnected,
    #[strum(serialize = "source.stopped_for_safety")]
    SourceStoppedForSafety,
    #[strum(serialize = "source.resumed")]
    SourceResumed,
    #[strum(serialize = "command.created")]
    CommandCreated,
    #[strum(serialize = "command.finished")]
    CommandFinished,
    #[strum(serialize = "config.snapshot")]
    ConfigSnapshot,
    #[strum(serialize = "config.restored")]
    ConfigRestored,
    #[strum(serialize = "rules.updated")]
    RulesUpdated,
    #[strum(serialize = "rules.preset_applied")]
    RulesPresetApplied,
    #[strum(serialize = "stations.changed")]
    StationsChanged,
    #[strum(serialize = "restore_drill.passed")]
    RestoreDrillPassed,
    #[strum(serialize = "restore_drill.failed")]
    RestoreDrillFailed,
    #[strum(serialize = "agent.event_rejected")]
    AgentEventRejected,
    #[strum(serialize = "package.retained")]
    PackageRetained,
    #[strum(serialize = "folder.entries_skipped")]
    FolderEntriesSkipped,
    #[strum(serialize = "package.compacted")]
    PackageCompacted,
    #[strum(serialize = "enrollment.created")]
    EnrollmentCreated,
    #[strum(serialize = "agent.enrolled")]
    AgentEnrolled,
    #[strum(serialize = "agent.revoked")]
    AgentRevoked,
    #[strum(serialize = "agent.renewed")]
    AgentRenewed,
    #[strum(serialize = "token.created")]
    TokenCreated,
    #[strum(serialize = "token.revoked")]
    TokenRevoked,
    #[strum(serialize = "pending_change.created")]
    PendingChangeCreated,
    #[strum(serialize = "pending_change.cancelled")]
    PendingChangeCancelled,
    #[strum(serialize = "pending_change.applied")]
    PendingChangeApplied,
    #[strum(serialize = "pending_change.failed")]
    PendingChangeFailed,
    #[strum(serialize = "package.copy_damaged")]
    PackageCopyDamaged,
    #[strum(serialize = "alert.raised")]
    AlertRaised,
    #[strum(serialize = "alert.resolved")]
    AlertResolved,
    #[strum(serialize = "alert.acknowledged")]
    AlertAcknowledged,
    #[strum(serialize = "alert.channel_tested")]
    AlertChannelTested,
}

impl EventType {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn every_spelling_is_unique_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::VARIANTS {
            assert!(seen.insert(t.as_str()), "{} spelled twice", t.as_str());
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(t.as_str().contains('.'), "{t}: <subject>.<what happened>");
        }
        assert_eq!(EventType::parse("source.safety_stopped"), None);
    }
}
