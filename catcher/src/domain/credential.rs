//! Machine credentials: enrollment tokens and the agent certificates signed with them.

use super::Millis;

/// A one-time (or few-times) token that lets one device enroll as `source_id`. Only its hash
/// is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    /// Public handle (journal, listings); not the secret.
    pub token_id: String,
    pub token_hash: String,
    pub source_id: String,
    /// The enrolled agent may move and delete copies between stations.
    pub mover: bool,
    pub uses_left: u32,
    pub expires_at: Millis,
    pub created_at: Millis,
    pub created_by: String,
}

/// A certificate the catcher signed for an agent: the agent speaks for `source_id` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCredential {
    /// The certificate's serial number, lowercase hex.
    pub serial: String,
    pub source_id: String,
    pub mover: bool,
    /// SHA-256 of the agent's public key (hex).
    pub key_sha256: String,
    pub issued_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl AgentCredential {
    /// Whether it may be used at `now`.
    pub fn valid_at(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What a person may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumString, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

/// A person's bearer token. Only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonToken {
    /// Unique, chosen by whoever created it ("alice", "ci-readonly").
    pub name: String,
    pub token_hash: String,
    pub role: Role,
    /// Sees paths, file names, station URIs and command arguments unredacted.
    pub unredacted: bool,
    pub created_at: Millis,
    pub created_by: String,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl PersonToken {
    /// Whether it may be used at `now`.
    pub fn valid_at(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}
