//! Command arguments and results: one variant per kind of command, so that what an agent is
//! asked to do and what it reports are checked where they enter, never read with defaults.

use super::{CommandKind, Millis, Tier};

/// What a command asks for, with the arguments of that kind.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandArgs {
    BackupNow,
    Verify,
    RestoreDrill(DrillArgs),
    Pause,
    Resume { reason: String },
    Move(MoveArgs),
    Expire(ExpireArgs),
    Restore(RestoreArgs),
    Compact(CompactArgs),
}

impl CommandArgs {
    /// The kind of command these arguments belong to.
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::BackupNow => CommandKind::BackupNow,
            Self::Verify => CommandKind::Verify,
            Self::RestoreDrill(_) => CommandKind::RestoreDrill,
            Self::Pause => CommandKind::Pause,
            Self::Resume { .. } => CommandKind::Resume,
            Self::Move(_) => CommandKind::Move,
            Self::Expire(_) => CommandKind::Expire,
            Self::Restore(_) => CommandKind::Restore,
            Self::Compact(_) => CommandKind::Compact,
        }
    }
}

/// Most files one compaction re-packages.
pub const MAX_COMPACT_PATHS: usize = 10_000;

/// Arguments of a compaction: present files to package again, from the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactArgs {
    /// The watched folder (absolute).
    pub folder: String,
    /// Relative to the folder.
    pub paths: Vec<String>,
    /// The packages being emptied.
    pub package_ids: Vec<String>,
}

/// Most path globs one restore may name.
pub const MAX_RESTORE_PATHS: usize = 100;

/// Arguments of a restore: a state from the catalog into a directory on the receiving device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreArgs {
    /// Whose data; empty: the receiving agent's own.
    pub source: String,
    /// Watched folders; empty: all of the source's.
    pub folders: Vec<String>,
    /// The moment; `None`: the latest state.
    pub as_of: Option<Millis>,
    pub paths: Vec<String>,
    /// Absolute; the agent refuses anything outside its `restore_roots`.
    pub target_dir: String,
    pub overwrite: bool,
}

/// Which copies a restore drill restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillScope {
    /// The agent's own newest packages, from where it stored them (the agent plans).
    Own,
    /// Copies in one tier (the catcher plans; a mover restores).
    Tier(Tier),
    /// Copies in whichever tier they are (the catcher plans; a mover restores).
    AnyTier,
}

impl DrillScope {
    /// The tier drilled, if one was named.
    pub fn tier(self) -> Option<Tier> {
        match self {
            Self::Tier(t) => Some(t),
            Self::Own | Self::AnyTier => None,
        }
    }
}

/// Most packages one drill restores.
pub const MAX_DRILL_SAMPLE: u32 = 100;
/// Packages a drill restores when the request does not say.
pub const DEFAULT_DRILL_SAMPLE: u32 = 3;

/// Arguments of a restore drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillArgs {
    pub scope: DrillScope,
    /// 1..=MAX_DRILL_SAMPLE.
    pub sample: u32,
    /// The copies to restore, planned by the catcher (empty for `DrillScope::Own`).
    pub targets: Vec<DrillTarget>,
    /// Queued by the catcher's drill schedule rather than by a person.
    pub scheduled: bool,
}

/// One copy a drill restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillTarget {
    pub package_id: String,
    /// The source that made the package.
    pub owner: String,
    pub sha256: String,
    pub station_id: String,
}

/// Why a copy is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovePurpose {
    /// The package moves on to its next tier.
    TierMove,
    /// A damaged copy is written again from a good one; the tier does not change.
    Resend,
}

/// Arguments of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveArgs {
    pub from_station_id: String,
    pub to_station_id: String,
    /// The source that made the package.
    pub owner: String,
    pub sha256: String,
    pub purpose: MovePurpose,
}

/// Why a copy is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirePurpose {
    /// Retention is over: every copy goes, then the package is expired.
    Expire,
    /// The package moved on; its copy in the tier it left goes.
    Cleanup,
    /// A deletion someone asked for came due: every copy goes, then the package's record.
    Delete,
}

/// Arguments of an expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireArgs {
    pub station_id: String,
    /// The source that made the package.
    pub owner: String,
    pub sha256: String,
    pub purpose: ExpirePurpose,
}

/// What an agent reported with a command's result.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandDetails {
    BackupNow(BackupReport),
    Verify(Vec<CopyCheck>),
    RestoreDrill(Vec<CopyCheck>),
    Move(MoveReport),
    Restore(RestoreReport),
    Compact(BackupReport),
}

impl CommandDetails {
    /// The kind of command these details answer.
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::BackupNow(_) => CommandKind::BackupNow,
            Self::Verify(_) => CommandKind::Verify,
            Self::RestoreDrill(_) => CommandKind::RestoreDrill,
            Self::Move(_) => CommandKind::Move,
            Self::Restore(_) => CommandKind::Restore,
            Self::Compact(_) => CommandKind::Compact,
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
    pub unchanged: u64,
    pub directories: u64,
    pub links: u64,
    /// `(path, reason)` of entries not restored.
    pub skipped: Vec<(String, String)>,
    pub damaged: Vec<String>,
}

/// What a backup pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupReport {
    pub packages_completed: u32,
    pub packages_failed: u32,
    pub files: u64,
    /// Why uploads were held, when they were.
    pub held: String,
}

/// The outcome of checking one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCheck {
    pub package_id: String,
    pub station_id: String,
    pub location: String,
    pub ok: bool,
    pub problem: String,
    /// `(path, reason)` of each file that did not match the manifest.
    pub bad_files: Vec<(String, String)>,
}

/// What a move wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveReport {
    pub verified_sha256: String,
    pub tool_ref: String,
}
