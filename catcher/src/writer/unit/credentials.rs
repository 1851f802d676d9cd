//! Staged machine credentials: enrollment tokens (read and used up within the batch, so two
//! enrollments with one single-use token in one batch cannot both pass), certificates issued,
//! and revocations.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::undo::{Undo, put};
use super::{Tracked, Unit};
use crate::domain::*;
use crate::error::Result;
use crate::store::convert::enrollment_from;
use crate::store::entity::{enrollment_token, person_token};

#[derive(Default)]
pub(super) struct CredentialStage {
    /// By token hash.
    pub enrollments: HashMap<String, Tracked<EnrollmentToken>>,
    pub issued: Vec<AgentCredential>,
    /// (source, when): every credential of the source not revoked yet is revoked.
    pub revocations: Vec<(String, Millis)>,
    /// People's tokens by name.
    pub people: HashMap<String, Tracked<PersonToken>>,
}

impl Unit<'_> {
    /// The enrollment token with this hash, as this batch sees it.
    pub async fn enrollment(&mut self, token_hash: &str) -> Result<Option<EnrollmentToken>> {
        if let Some(t) = self.credentials.enrollments.get(token_hash) {
            return Ok(t.value.clone());
        }
        let row = enrollment_token::Entity::find()
            .filter(enrollment_token::Column::TokenHash.eq(token_hash))
            .one(self.txn)
            .await?
            .map(enrollment_from);
        self.credentials.enrollments.insert(token_hash.to_owned(), Tracked::loaded(row.clone()));
        Ok(row)
    }

    pub fn put_enrollment(&mut self, t: EnrollmentToken) {
        let key = t.token_hash.clone();
        let before = put(&mut self.credentials.enrollments, key.clone(), t);
        self.log(Undo::Enrollment(key, before));
    }

    /// The person's token named `name`, as this batch sees it.
    pub async fn person_token(&mut self, name: &str) -> Result<Option<PersonToken>> {
        if let Some(t) = self.credentials.people.get(name) {
            return Ok(t.value.clone());
        }
        let row = person_token::Entity::find_by_id(name.to_owned())
            .one(self.txn)
            .await?
            .map(crate::store::convert::person_token_from)
            .transpose()?;
        self.credentials.people.insert(name.to_owned(), Tracked::loaded(row.clone()));
        Ok(row)
    }

    pub fn put_person_token(&mut self, t: PersonToken) {
        let key = t.name.clone();
        let before = put(&mut self.credentials.people, key.clone(), t);
        self.log(Undo::PersonToken(key, before));
    }

    pub fn issue(&mut self, c: AgentCredential) {
        self.credentials.issued.push(c);
    }

    pub fn revoke_agents(&mut self, source_id: &str) {
        self.credentials.revocations.push((source_id.to_owned(), self.now));
    }
}

/// Writes what the batch staged.
pub(super) async fn flush(txn: &sea_orm::DatabaseTransaction, stage: CredentialStage) -> Result<()> {
    use crate::store::convert::{agent_credential_active, enrollment_active};
    use crate::store::entity::agent_credential;
    use sea_orm::sea_query::{Expr, OnConflict};
    let dirty: Vec<_> = stage.enrollments.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    if !dirty.is_empty() {
        enrollment_token::Entity::insert_many(dirty.iter().map(enrollment_active))
            .on_conflict(
                OnConflict::column(enrollment_token::Column::TokenId)
                    .update_column(enrollment_token::Column::UsesLeft)
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    let people: Vec<_> = stage.people.into_values().filter(|t| t.dirty).filter_map(|t| t.value).collect();
    if !people.is_empty() {
        use crate::store::convert::person_token_active;
        person_token::Entity::insert_many(people.iter().map(person_token_active))
            .on_conflict(
                OnConflict::column(person_token::Column::Name)
                    .update_column(person_token::Column::RevokedAt)
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    if !stage.issued.is_empty() {
        agent_credential::Entity::insert_many(stage.issued.iter().map(agent_credential_active))
            .exec_without_returning(txn)
            .await?;
    }
    for (source_id, at) in stage.revocations {
        agent_credential::Entity::update_many()
            .col_expr(agent_credential::Column::RevokedAt, Expr::value(at))
            .filter(agent_credential::Column::SourceId.eq(source_id.as_str()))
            .filter(agent_credential::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}
