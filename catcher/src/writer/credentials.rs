//! Credentials: enrollment tokens created, used up by enrolling agents, agents' certificates
//! revoked; people's tokens created and revoked. The secrets themselves never reach the
//! writer: only their hashes.

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};

/// An enrollment token for one source (`catcher enroll`, or the admin RPC).
#[derive(Debug)]
pub struct CreateEnrollment(pub EnrollmentToken);

impl Op for CreateEnrollment {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        let t = self.0;
        if u.enrollment(&t.token_hash).await?.is_some() {
            return Err(Error::FailedPrecondition("token: already exists".into()));
        }
        u.journal(JournalEntry {
            source_id: t.source_id.clone(),
            details_json: serde_json::json!({
                "token_id": t.token_id,
                "uses": t.uses_left,
                "expires_at": t.expires_at,
                "mover": t.mover,
            })
            .to_string(),
            ..JournalEntry::new(EventType::EnrollmentCreated, t.created_by.clone())
        });
        u.put_enrollment(t);
        Ok(())
    }
}

/// An agent presents an enrollment token and the certificate signed for its key: the token is
/// used once more and the credential recorded. The certificate was signed for the source the
/// token names (checked again here, under the transaction).
#[derive(Debug)]
pub struct Enroll {
    pub token_hash: String,
    pub credential: AgentCredential,
}

impl Op for Enroll {
    type Output = AgentCredential;

    async fn apply(self, u: &mut Unit<'_>) -> Result<AgentCredential> {
        let Some(mut t) = u.enrollment(&self.token_hash).await? else {
            return Err(Error::Unauthenticated("token: not a valid enrollment token".into()));
        };
        if t.expires_at <= u.now {
            return Err(Error::Unauthenticated(format!("token: enrollment token {} has expired", t.token_id)));
        }
        if t.uses_left == 0 {
            return Err(Error::Unauthenticated(format!("token: enrollment token {} is used up", t.token_id)));
        }
        let c = self.credential;
        if c.source_id != t.source_id || c.mover != t.mover {
            return Err(Error::FailedPrecondition("the token changed while the certificate was signed".into()));
        }
        t.uses_left -= 1;
        u.journal(JournalEntry {
            source_id: c.source_id.clone(),
            details_json: serde_json::json!({
                "token_id": t.token_id,
                "serial": c.serial,
                "expires_at": c.expires_at,
                "key_sha256": c.key_sha256,
                "mover": c.mover,
            })
            .to_string(),
            ..JournalEntry::new(EventType::AgentEnrolled, format!("enrollment:{}", t.token_id))
        });
        u.put_enrollment(t);
        u.issue(c.clone());
        Ok(c)
    }
}

/// Every credential of a source is revoked (a lost or replaced device). Its history stays.
#[derive(Debug)]
pub struct RevokeAgent {
    pub source_id: String,
    pub actor: String,
}

impl Op for RevokeAgent {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        u.revoke_agents(&self.source_id);
        u.journal(JournalEntry {
            source_id: self.source_id.clone(),
            ..JournalEntry::new(EventType::AgentRevoked, self.actor)
        });
        Ok(())
    }
}

/// An agent renews its credential (a new certificate for a new key, the same source).
#[derive(Debug)]
pub struct Renew {
    pub credential: AgentCredential,
    /// The certificate it authenticated with.
    pub previous_serial: String,
}

impl Op for Renew {
    type Output = AgentCredential;

    async fn apply(self, u: &mut Unit<'_>) -> Result<AgentCredential> {
        let c = self.credential;
        u.journal(JournalEntry {
            source_id: c.source_id.clone(),
            details_json: serde_json::json!({
                "serial": c.serial,
                "previous_serial": self.previous_serial,
                "expires_at": c.expires_at,
                "key_sha256": c.key_sha256,
            })
            .to_string(),
            ..JournalEntry::new(EventType::AgentRenewed, format!("agent:{}", c.source_id))
        });
        u.issue(c.clone());
        Ok(c)
    }
}

/// A person's token (`catcher token create`, the admin RPC, or the first admin at start).
#[derive(Debug)]
pub struct CreateToken(pub PersonToken);

impl Op for CreateToken {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        let t = self.0;
        if u.person_token(&t.name).await?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "name: a token named {:?} exists (revoked names stay taken)",
                t.name
            )));
        }
        u.journal(JournalEntry {
            details_json: serde_json::json!({
                "name": t.name,
                "role": t.role.to_string(),
                "unredacted": t.unredacted,
                "expires_at": t.expires_at,
            })
            .to_string(),
            ..JournalEntry::new(EventType::TokenCreated, t.created_by.clone())
        });
        u.put_person_token(t);
        Ok(())
    }
}

/// A person's token is revoked by name; its sessions end.
#[derive(Debug)]
pub struct RevokeToken {
    pub name: String,
    pub actor: String,
}

impl Op for RevokeToken {
    type Output = PersonToken;

    async fn apply(self, u: &mut Unit<'_>) -> Result<PersonToken> {
        let Some(mut t) = u.person_token(&self.name).await? else {
            return Err(Error::not_found("token", self.name));
        };
        if t.revoked_at.is_none() {
            t.revoked_at = Some(u.now);
            u.journal(JournalEntry {
                details_json: serde_json::json!({ "name": t.name, "role": t.role.to_string() }).to_string(),
                ..JournalEntry::new(EventType::TokenRevoked, self.actor)
            });
            u.put_person_token(t.clone());
        }
        Ok(t)
    }
}
