//! sea-orm entities: the database rows. Only `store` sees these; everything else uses `domain`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod source {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sources")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_id: String,
        pub label: String,
        pub hostname: String,
        pub os: String,
        pub agent_version: String,
        /// Comma-separated capability names.
        pub capabilities: String,
        /// Whether `capabilities` has `mover` (a column of its own: the scheduler looks movers up).
        pub mover: bool,
        pub first_seen_at: i64,
        pub last_seen_at: i64,
        pub connected: bool,
        pub safety_state: String,
        pub safety_reason: String,
        pub last_completed_at: Option<i64>,
        /// The catcher replica holding the agent's stream (while `connected`).
        pub replica: Option<String>,
    }
    no_relations!();
}

pub mod agent_cursor {
    use sea_orm::entity::prelude::*;

    /// The highest event sequence applied per source; written in the same transaction as the events.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agent_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_id: String,
        pub last_applied_seq: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod package {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "packages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_id: String,
        pub source_id: String,
        pub path: String,
        pub package_type: String,
        pub size_bytes: i64,
        pub sha256: String,
        pub status: String,
        pub bytes_done: i64,
        pub progress_percent: i32,
        pub tool: String,
        pub tool_ref: String,
        /// Empty while the package is still on the edge or after expiry.
        pub tier: String,
        pub tier_entered_at: Option<i64>,
        pub next_transition_at: Option<i64>,
        pub retry_count: i32,
        pub last_error: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub completed_at: Option<i64>,
        pub expired_at: Option<i64>,
    }
    no_relations!();
}

pub mod catalog_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_versions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub version_id: i64,
        pub source_id: String,
        pub folder: String,
        pub path: String,
        pub directory: String,
        pub kind: String,
        pub size_bytes: i64,
        pub sha256: String,
        pub mode: i32,
        pub uid: i64,
        pub gid: i64,
        pub modified_ns: i64,
        pub target: String,
        /// Empty when no package holds the bytes.
        pub package_id: String,
        pub since_at: i64,
        pub until_at: Option<i64>,
        pub deleted: bool,
        /// Empty unless this version has no copy and keeps an earlier one's package.
        pub kept_package_id: String,
        /// Where the bytes are in the package (`pack_length` 0: not known, read it whole).
        pub pack_offset: i64,
        pub pack_length: i64,
        pub pack_skip: i64,
    }
    no_relations!();
}

pub mod package_hold {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "package_holds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_id: String,
        pub live_versions: i64,
        pub superseded_at: Option<i64>,
    }
    no_relations!();
}

pub mod enrollment_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enrollment_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_id: String,
        pub token_hash: String,
        pub source_id: String,
        pub mover: bool,
        pub uses_left: i64,
        pub expires_at: i64,
        pub created_at: i64,
        pub created_by: String,
    }
    no_relations!();
}

pub mod person_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "people_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub token_hash: String,
        pub role: String,
        pub unredacted: bool,
        pub created_at: i64,
        pub created_by: String,
        pub expires_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }
    no_relations!();
}

pub mod agent_credential {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agent_credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub serial: String,
        pub source_id: String,
        pub mover: bool,
        pub key_sha256: String,
        pub issued_at: i64,
        pub expires_at: i64,
        pub revoked_at: Option<i64>,
    }
    no_relations!();
}

pub mod placement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub station_id: String,
        pub status: String,
        pub verified_sha256: String,
        pub verified_at: Option<i64>,
        pub error: String,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod package_manifest {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "package_manifests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_id: String,
        pub file_count: i64,
        /// JSON array of domain::ManifestEntry.
        pub manifest_json: String,
    }
    no_relations!();
}

pub mod station {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub station_id: String,
        pub tier: String,
        pub kind: String,
        pub uri: String,
    }
    no_relations!();
}

pub mod rule_set {
    use sea_orm::entity::prelude::*;

    /// One rule set per package type, stored as its canonical JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rule_sets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_type: String,
        pub body: String,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod config_snapshot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "config_snapshots")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub snapshot_id: i64,
        pub created_at: i64,
        pub reason: String,
        pub sha256: String,
        pub config_json: String,
        pub actor: String,
    }
    no_relations!();
}

pub mod rule_history {
    use sea_orm::entity::prelude::*;

    /// Every rule set put in force, with when it was asked for (a pending change's rules count
    /// from its request, not from when it applied); the expiry floor reads it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rule_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub package_type: String,
        pub body: String,
        pub since: i64,
    }
    no_relations!();
}

pub mod pending_change {
    use sea_orm::entity::prelude::*;

    /// A change that would delete data sooner, held for the protection delay. `body` is the
    /// change as JSON (`domain::PendingKind`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pending_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub change_id: i64,
        pub kind: String,
        pub body: String,
        pub state: String,
        pub requested_by: String,
        pub reason: String,
        pub created_at: i64,
        pub effective_at: i64,
        pub resolved_at: Option<i64>,
        pub resolved_by: String,
        pub outcome: String,
    }
    no_relations!();
}

pub mod alert {
    use sea_orm::entity::prelude::*;

    /// One alert; open while `resolved_at` is null.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alerts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub alert_id: String,
        pub kind: String,
        pub subject: String,
        pub source_id: String,
        pub message: String,
        pub raised_at: i64,
        pub resolved_at: Option<i64>,
        pub acknowledged_at: Option<i64>,
        pub acknowledged_by: String,
        pub note: String,
    }
    no_relations!();
}

pub mod notification {
    use sea_orm::entity::prelude::*;

    /// One alert transition to deliver through one channel.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub notification_id: String,
        pub alert_id: String,
        pub channel: String,
        pub transition: String,
        pub state: String,
        pub attempts: i32,
        pub created_at: i64,
        pub next_attempt_at: i64,
        pub delivered_at: Option<i64>,
        pub last_error: String,
    }
    no_relations!();
}

pub mod recovery_point {
    use sea_orm::entity::prelude::*;

    /// A folder's last pass and last complete one.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_points")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub folder: String,
        pub package_type: String,
        pub first_pass_at: i64,
        pub last_backup_at: Option<i64>,
        pub last_pass_at: i64,
        pub unprotected: i64,
    }
    no_relations!();
}

pub mod journal {
    use sea_orm::entity::prelude::*;

    /// Append-only; `sequence` is assigned by the writer, gap-free, and chained by `prev_hash`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "journal")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub at: i64,
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
        pub prev_hash: String,
        pub hash: String,
    }
    no_relations!();
}

pub mod command {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "commands")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub command_id: String,
        pub source_id: String,
        pub kind: String,
        pub package_id: String,
        pub from_station_id: String,
        pub to_station_id: String,
        pub args_json: String,
        pub state: String,
        pub attempts: i32,
        pub lease_until: Option<i64>,
        pub created_at: i64,
        pub finished_at: Option<i64>,
        pub result_message: String,
        pub result_details_json: String,
        /// The newest progress reported ("" while none).
        pub progress_phase: String,
        pub progress_files_done: i64,
        pub progress_files_total: i64,
        pub progress_bytes_done: i64,
        pub progress_bytes_total: i64,
        pub progress_at: Option<i64>,
    }
    no_relations!();
}

pub mod package_counter {
    use sea_orm::entity::prelude::*;

    /// Package count and bytes per (type, tier, status), kept incrementally by the writer.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "package_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_type: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tier: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub status: String,
        pub count: i64,
        pub bytes: i64,
    }
    no_relations!();
}

pub mod transition_day {
    use sea_orm::entity::prelude::*;

    /// Packages due to leave a tier per (type, tier, UTC day), kept incrementally by the writer.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "transition_days")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub package_type: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tier: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        pub count: i64,
        pub bytes: i64,
    }
    no_relations!();
}

pub mod replica {
    use sea_orm::entity::prelude::*;

    /// A catcher process sharing the database; alive while its heartbeat is fresh.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "replicas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub replica_id: String,
        pub address: String,
        pub started_at: i64,
        pub heartbeat_at: i64,
    }
    no_relations!();
}

pub mod lease {
    use sea_orm::entity::prelude::*;

    /// A singleton role held by one replica until `expires_at`; `term` grows at every takeover.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub holder: String,
        pub term: i64,
        pub acquired_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod change_row {
    use sea_orm::entity::prelude::*;

    /// What one committed batch changed, by reference (`change::ChangeRefs` as JSON).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub change_id: i64,
        pub replica: String,
        pub committed_at: i64,
        pub payload: String,
    }
    no_relations!();
}
