//! Domain types: what the catcher reasons about, independent of protobuf and of sea-orm.
//!
//! Times are milliseconds since the Unix epoch (`Millis`): they are stored that way too, so that
//! "tier entered + wait" is plain integer arithmetic in SQL on SQLite and PostgreSQL alike.

use crate::error::{Error, Result};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// One UTC day: the width of the projections' buckets (`transition_days.day` is a package's
/// `next_transition_at` divided by it).
pub const DAY_MS: Millis = 86_400_000;

/// The current time in epoch milliseconds.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Declares a closed string-backed enum with its stable storage spelling.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable spelling used in storage, the journal and config files.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the storage spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Kind of data; selects the rule set.
    PackageType {
        UserData => "user_data",
        AppLogs => "app_logs",
        AuditLogs => "audit_logs",
        BusinessData => "business_data",
        JobPackage => "job_package",
        Cache => "cache",
    }
);

string_enum!(
    /// Lifecycle status of a package.
    PackageStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Completed => "completed",
        Failed => "failed",
        Expired => "expired",
    }
);

string_enum!(
    /// Storage tier, in the order packages pass through them.
    Tier {
        Hot => "hot",
        Warm => "warm",
        Cold => "cold",
        Offsite => "offsite",
    }
);

string_enum!(
    /// Program that moved a package's bytes.
    Tool {
        Native => "native",
        Restic => "restic",
        Rclone => "rclone",
    }
);

string_enum!(
    /// State of one copy on one station.
    PlacementStatus {
        InProgress => "in_progress",
        Verified => "verified",
        Failed => "failed",
        Deleted => "deleted",
    }
);

string_enum!(
    /// Whether a source may upload.
    SafetyState {
        Ok => "ok",
        StoppedForSafety => "stopped_for_safety",
    }
);

string_enum!(
    /// Kind of storage behind a station.
    StationKind {
        Local => "local",
        S3 => "s3",
        Rclone => "rclone",
        Restic => "restic",
    }
);

string_enum!(
    /// What an agent can do.
    Capability {
        Backup => "backup",
        Mover => "mover",
    }
);

string_enum!(
    /// What a command asks an agent to do.
    CommandKind {
        BackupNow => "backup_now",
        Verify => "verify",
        RestoreDrill => "restore_drill",
        Pause => "pause",
        Resume => "resume",
        Move => "move",
        Expire => "expire",
    }
);

string_enum!(
    /// Lifecycle of a command.
    CommandState {
        Pending => "pending",
        Leased => "leased",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

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
    pub kind: CommandKind,
    pub package_id: String,
    pub from_station_id: String,
    pub to_station_id: String,
    pub args_json: String,
    pub state: CommandState,
    pub attempts: u32,
    pub lease_until: Option<Millis>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub result_message: String,
    pub result_details_json: String,
}

/// A journal event before it is chained.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalEntry {
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

/// A chained journal event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEvent {
    pub sequence: u64,
    pub at: Millis,
    pub entry: JournalEntry,
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
