//! Domain types: what the catcher reasons about, independent of protobuf and of sea-orm.
//!
//! Times are milliseconds since the Unix epoch (`Millis`): they are stored that way too, so that
//! "tier entered + wait" is plain integer arithmetic in SQL on SQLite and PostgreSQL alike.

use crate::error::{Error, Result};

mod command;
mod credential;
mod event;
mod status;

pub use command::*;
pub use credential::{AgentCredential, EnrollmentToken, PersonToken, Role};
pub use event::EventType;
pub use status::{FleetStatus, TierRow, TypeTierRow};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// One UTC day: the width of the projections' buckets (`transition_days.day` is a package's
/// `next_transition_at` divided by it).
pub const DAY_MS: Millis = 86_400_000;

/// The current time in epoch milliseconds.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The stable spelling of a closed enum (storage, journal, config files): snake_case of the
/// variant name, derived by strum so that it is written nowhere by hand.
pub trait Spelling: Copy + Sized + 'static + Into<&'static str> + std::str::FromStr + strum::VariantArray {
    /// Every variant, in declaration order.
    const ALL: &'static [Self] = Self::VARIANTS;

    /// The stable spelling.
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the stable spelling.
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// Declares a closed enum whose stable spelling is the snake_case variant name.
macro_rules! spelled {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
            strum::IntoStaticStr, strum::EnumString, strum::Display, strum::VariantArray,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Spelling for $name {}
    };
}
pub(crate) use spelled;

// After the macro: the catalog's enums are `spelled!` too.
mod alert;
mod catalog;
pub use alert::*;
pub use catalog::*;

spelled!(
    /// Kind of data; selects the rule set.
    PackageType {
        UserData,
        AppLogs,
        AuditLogs,
        BusinessData,
        JobPackage,
        Cache,
    }
);

spelled!(
    /// Lifecycle status of a package.
    PackageStatus {
        Pending,
        InProgress,
        Completed,
        Failed,
        Expired,
    }
);

spelled!(
    /// Storage tier, in the order packages pass through them.
    Tier {
        Hot,
        Warm,
        Cold,
        Offsite,
    }
);

spelled!(
    /// Program that moved a package's bytes.
    Tool {
        Native,
        Restic,
        Rclone,
    }
);

spelled!(
    /// State of one copy on one station.
    PlacementStatus {
        InProgress,
        Verified,
        Failed,
        Deleted,
    }
);

spelled!(
    /// Whether a source may upload.
    SafetyState {
        Ok,
        StoppedForSafety,
    }
);

spelled!(
    /// Kind of storage behind a station.
    StationKind {
        Local,
        S3,
        Rclone,
        Restic,
    }
);

spelled!(
    /// What an agent can do.
    Capability {
        Backup,
        Mover,
    }
);

spelled!(
    /// What a command asks an agent to do.
    CommandKind {
        BackupNow,
        Verify,
        RestoreDrill,
        Pause,
        Resume,
        Move,
        Expire,
        Restore,
        Compact,
    }
);

spelled!(
    /// Lifecycle of a command.
    CommandState {
        Pending,
        Leased,
        Succeeded,
        Failed,
    }
);

spelled!(
    /// The stage a running command reported it is in.
    CommandPhase {
        Planning,
        Transferring,
        Finishing,
    }
);

/// How far a running command has got, as its agent last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandProgress {
    pub phase: CommandPhase,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// When the catcher heard it.
    pub at: Millis,
}

impl Tier {
    /// Position in the chain, hot = 0.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl PackageStatus {
    /// Whether the package still needs work from its source.
    pub fn is_unfinished(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress | Self::Failed)
    }
}

/// One unit of backed-up data.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub package_id: String,
    pub source_id: String,
    pub path: String,
    pub package_type: PackageType,
    pub size_bytes: u64,
    pub sha256: String,
    pub status: PackageStatus,
    pub bytes_done: u64,
    pub progress_percent: u32,
    pub tool: Tool,
    pub tool_ref: String,
    pub tier: Option<Tier>,
    pub tier_entered_at: Option<Millis>,
    pub next_transition_at: Option<Millis>,
    pub retry_count: u32,
    pub last_error: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub completed_at: Option<Millis>,
    pub expired_at: Option<Millis>,
}

/// One copy of one package on one station.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub package_id: String,
    pub station_id: String,
    pub status: PlacementStatus,
    pub verified_sha256: String,
    pub verified_at: Option<Millis>,
    pub error: String,
    pub updated_at: Millis,
}

/// A device that backs up.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub source_id: String,
    pub label: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub capabilities: Vec<Capability>,
    pub first_seen_at: Millis,
    pub last_seen_at: Millis,
    pub connected: bool,
    pub safety_state: SafetyState,
    pub safety_reason: String,
    pub last_completed_at: Option<Millis>,
    /// The catcher replica holding the agent's stream, while connected.
    pub replica: Option<String>,
}

impl Source {
    /// A source seen for the first time now.
    pub fn new(source_id: &str, now: Millis) -> Self {
        Self {
            source_id: source_id.to_owned(),
            label: String::new(),
            hostname: String::new(),
            os: String::new(),
            agent_version: String::new(),
            capabilities: Vec::new(),
            first_seen_at: now,
            last_seen_at: now,
            connected: false,
            safety_state: SafetyState::Ok,
            safety_reason: String::new(),
            last_completed_at: None,
            replica: None,
        }
    }
}

/// A storage destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Station {
    pub station_id: String,
    pub tier: Tier,
    pub kind: StationKind,
    pub uri: String,
}

/// Work for an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub command_id: String,
    pub source_id: String,
    /// The package concerned, if any (verify, move, expire).
    pub package_id: String,
    /// What to do, with the arguments of that kind.
    pub args: CommandArgs,
    pub state: CommandState,
    pub attempts: u32,
    pub lease_until: Option<Millis>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub result_message: String,
    pub result: Option<CommandDetails>,
    /// The newest progress its agent reported while it ran (restores).
    pub progress: Option<CommandProgress>,
}

impl Command {
    /// The kind of work, given by the arguments.
    pub fn kind(&self) -> CommandKind {
        self.args.kind()
    }
}

/// A journal event before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub actor: String,
    pub event_type: EventType,
    pub source_id: String,
    pub package_id: String,
    pub station_id: String,
    pub status_before: String,
    pub status_after: String,
    pub checksum: String,
    pub error: String,
    pub details_json: String,
}

impl JournalEntry {
    /// An entry of `event_type` by `actor`, every other field empty.
    pub fn new(event_type: EventType, actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            event_type,
            source_id: String::new(),
            package_id: String::new(),
            station_id: String::new(),
            status_before: String::new(),
            status_after: String::new(),
            checksum: String::new(),
            error: String::new(),
            details_json: String::new(),
        }
    }
}

/// A journal event's fields exactly as recorded: the chain's hashes cover these strings, so
/// they are kept verbatim (an unknown event type in a stored row is evidence, not an error).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalRecord {
    pub actor: String,
    pub event_type: String,
    pub source_id: String,
    pub package_id: String,
    pub station_id: String,
    pub status_before: String,
    pub status_after: String,
    pub checksum: String,
    pub error: String,
    pub details_json: String,
}

impl From<JournalEntry> for JournalRecord {
    fn from(e: JournalEntry) -> Self {
        Self {
            actor: e.actor,
            event_type: e.event_type.as_str().to_owned(),
            source_id: e.source_id,
            package_id: e.package_id,
            station_id: e.station_id,
            status_before: e.status_before,
            status_after: e.status_after,
            checksum: e.checksum,
            error: e.error,
            details_json: e.details_json,
        }
    }
}

/// A chained journal event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEvent {
    pub sequence: u64,
    pub at: Millis,
    pub entry: JournalRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// A versioned copy of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSnapshot {
    pub snapshot_id: u64,
    pub created_at: Millis,
    pub reason: String,
    pub sha256: String,
    pub config_json: String,
    /// Who took it, or whose change it records.
    pub actor: String,
}

/// Count and bytes of one (tier, status) cell; `tier` None means "still on the edge".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    pub count: i64,
    pub bytes: i64,
}

/// Parses a stored enum spelling, reporting corruption instead of panicking.
pub fn parse_stored<T>(value: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T> {
    parse(value).ok_or_else(|| Error::Corrupt(format!("unknown {what} {value:?}")))
}

/// One file inside a package, as its agent packaged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub modified_at: Option<Millis>,
}

/// Key of the incremental package counters.
pub type CounterKey = (PackageType, Option<Tier>, PackageStatus);

/// A source with what its live view needs besides its row.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceView {
    pub source: Source,
    pub last_applied_seq: u64,
    /// Unfinished packages (pending, in progress, failed).
    pub in_flight: u64,
}

/// The singleton role (tier scheduler, drill planner, compaction, pending changes, alert
/// evaluation and delivery): held by one replica until `expires_at`; `term` grows at every
/// takeover, and every write the holder's workers make is checked against it (fencing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub term: u64,
    pub acquired_at: Millis,
    pub expires_at: Millis,
}

/// A catcher process sharing the database, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub replica_id: String,
    pub address: String,
    pub started_at: Millis,
    pub heartbeat_at: Millis,
}
