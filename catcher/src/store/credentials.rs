//! Reads of machine credentials.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::Store;
use super::convert::{agent_credential_from, enrollment_from};
use super::entity::{agent_credential, enrollment_token};
use crate::domain::*;
use crate::error::Result;

impl Store {
    /// The enrollment token with this hash.
    pub async fn enrollment(&self, token_hash: &str) -> Result<Option<EnrollmentToken>> {
        let row = enrollment_token::Entity::find()
            .filter(enrollment_token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?;
        Ok(row.map(enrollment_from))
    }

    /// The credential with this certificate serial.
    pub async fn agent_credential(&self, serial: &str) -> Result<Option<AgentCredential>> {
        Ok(agent_credential::Entity::find_by_id(serial.to_owned()).one(&self.db).await?.map(agent_credential_from))
    }

    /// A source's credentials, newest first.
    pub async fn agent_credentials(&self, source_id: &str) -> Result<Vec<AgentCredential>> {
        let rows = agent_credential::Entity::find()
            .filter(agent_credential::Column::SourceId.eq(source_id))
            .order_by_desc(agent_credential::Column::IssuedAt)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(agent_credential_from).collect())
    }

    /// Credentials revoked at or after `since` (the live check polls this).
    pub async fn revoked_since(&self, since: Millis) -> Result<Vec<AgentCredential>> {
        let rows = agent_credential::Entity::find()
            .filter(agent_credential::Column::RevokedAt.gte(since))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(agent_credential_from).collect())
    }
}
