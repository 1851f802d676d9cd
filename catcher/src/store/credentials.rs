//! Reads of machine and people's credentials.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::Store;
use super::convert::{agent_credential_from, enrollment_from, person_token_from};
use super::entity::{agent_credential, enrollment_token, person_token};
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

    /// The person's token with this hash.
    pub async fn person_token(&self, token_hash: &str) -> Result<Option<PersonToken>> {
        let row =
            person_token::Entity::find().filter(person_token::Column::TokenHash.eq(token_hash)).one(&self.db).await?;
        row.map(person_token_from).transpose()
    }

    /// The person's token named `name`.
    pub async fn person_token_named(&self, name: &str) -> Result<Option<PersonToken>> {
        person_token::Entity::find_by_id(name.to_owned()).one(&self.db).await?.map(person_token_from).transpose()
    }

    /// Every person's token, newest first.
    pub async fn person_tokens(&self) -> Result<Vec<PersonToken>> {
        let rows = person_token::Entity::find().order_by_desc(person_token::Column::CreatedAt).all(&self.db).await?;
        rows.into_iter().map(person_token_from).collect()
    }

    /// People's tokens revoked at or after `since` (the live check polls this).
    pub async fn person_tokens_revoked_since(&self, since: Millis) -> Result<Vec<PersonToken>> {
        let rows =
            person_token::Entity::find().filter(person_token::Column::RevokedAt.gte(since)).all(&self.db).await?;
        rows.into_iter().map(person_token_from).collect()
    }
}
