//! EnrollService and AccessService: agents exchange a one-time token for a credential bound
//! to the key they generated; admins create enrollment and people's tokens and revoke both.

use std::time::{Duration, UNIX_EPOCH};

use edgebackup_proto::v1::{self as pb, access_service_server::AccessService, enroll_service_server::EnrollService};
use tonic::{Request, Response, Status};

use super::{Shared, caller, convert, respond, validate as v};
use crate::auth::Principal;
use crate::auth::secret;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::writer::{CreateEnrollment, CreateToken, Enroll, Renew, RevokeAgent, RevokeToken};

/// Longest-lived enrollment token, and the most uses one may allow.
const MAX_TOKEN_TTL_SECS: u64 = 30 * 86_400;
const MAX_TOKEN_USES: u32 = 100;
/// Largest certificate request accepted.
const MAX_CSR_BYTES: usize = 16 * 1024;

/// Longest-lived person's token.
const MAX_PERSON_TOKEN_TTL_SECS: u64 = 10 * 365 * 86_400;

/// What to create a person's token with.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// None: until revoked.
    pub ttl_secs: Option<u64>,
    pub unredacted: bool,
}

/// Creates a person's token (the RPC, `catcher token create` and the first admin share this).
pub async fn create_person_token(
    writer: &crate::writer::Writer,
    new: NewToken,
    actor: &str,
) -> Result<(String, PersonToken)> {
    let name = &new.name;
    let valid = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
        return Err(Error::invalid("name", "1 to 64 of A-Z a-z 0-9 . _ @ -"));
    }
    if let Some(ttl) = new.ttl_secs
        && !(1..=MAX_PERSON_TOKEN_TTL_SECS).contains(&ttl)
    {
        return Err(Error::invalid("ttl", "must be 1 s to 10 years (unset: until revoked)"));
    }
    let token = secret::generate(crate::auth::identity::PERSON_TOKEN_PREFIX)?;
    let now = now_ms();
    let t = PersonToken {
        name: new.name,
        token_hash: secret::hash(&token),
        role: new.role,
        unredacted: new.unredacted,
        created_at: now,
        created_by: actor.to_owned(),
        expires_at: new.ttl_secs.map(|s| now + i64::try_from(s).unwrap_or(i64::MAX / 1000) * 1000),
        revoked_at: None,
    };
    writer.submit(CreateToken(t.clone())).await?;
    Ok((token, t))
}

/// A role from the wire.
pub fn role_from(field: &str, value: i32) -> Result<Role> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Viewer) => Ok(Role::Viewer),
        Ok(pb::Role::Operator) => Ok(Role::Operator),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        _ => Err(Error::invalid(field, "required: viewer, operator or admin")),
    }
}

fn role_to(role: Role) -> pb::Role {
    match role {
        Role::Viewer => pb::Role::Viewer,
        Role::Operator => pb::Role::Operator,
        Role::Admin => pb::Role::Admin,
    }
}

/// A person's token as listed (never its hash).
pub fn person_token(t: PersonToken) -> pb::PersonToken {
    pb::PersonToken {
        name: t.name,
        role: role_to(t.role) as i32,
        unredacted: t.unredacted,
        created_at: Some(convert::ts(t.created_at)),
        created_by: t.created_by,
        expires_at: convert::ts_opt(t.expires_at),
        revoked_at: convert::ts_opt(t.revoked_at),
    }
}

/// Creates an enrollment token (the RPC and `catcher enroll` share this).
pub async fn create_token(
    writer: &crate::writer::Writer,
    source_id: &str,
    ttl_secs: u64,
    uses: u32,
    mover: bool,
    actor: &str,
) -> Result<(String, EnrollmentToken)> {
    let source_id = v::id("source_id", source_id)?;
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl_secs) {
        return Err(Error::invalid("ttl", format!("must be 1 s to {} days", MAX_TOKEN_TTL_SECS / 86_400)));
    }
    if !(1..=MAX_TOKEN_USES).contains(&uses) {
        return Err(Error::invalid("uses", format!("must be 1 to {MAX_TOKEN_USES}")));
    }
    let token = secret::generate("ebk_enroll_")?;
    let now = now_ms();
    let t = EnrollmentToken {
        token_id: uuid::Uuid::now_v7().simple().to_string()[20..].to_owned(),
        token_hash: secret::hash(&token),
        source_id,
        mover,
        uses_left: uses,
        expires_at: now + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000) * 1000,
        created_at: now,
        created_by: actor.to_owned(),
    };
    writer.submit(CreateEnrollment(t.clone())).await?;
    Ok((token, t))
}

pub struct Enrollment(pub Shared);

impl Enrollment {
    async fn enroll(&self, r: pb::EnrollRequest) -> Result<pb::EnrollResponse> {
        if r.token.is_empty() {
            return Err(Error::invalid("token", "required"));
        }
        if r.csr_der.is_empty() || r.csr_der.len() > MAX_CSR_BYTES {
            return Err(Error::invalid("csr_der", format!("required, at most {MAX_CSR_BYTES} bytes")));
        }
        let hash = secret::hash(&r.token);
        // Checked again by the writer under its transaction; here only to sign for the right source.
        let Some(t) = self.0.store.enrollment(&hash).await? else {
            return Err(Error::Unauthenticated("token: not a valid enrollment token".into()));
        };
        if t.expires_at <= now_ms() || t.uses_left == 0 {
            return Err(Error::Unauthenticated(format!(
                "token: enrollment token {} is expired or used up",
                t.token_id
            )));
        }
        // Admission after the token is known good: requests without one cannot use up the
        // budget of devices that have one (the signing is what it protects).
        if let Err(wait) = self.0.admission.enroll() {
            let wait = super::admission::retry_after(wait);
            return Err(Error::ResourceExhausted(format!(
                "too many devices enrolling at once; retry in {} ms",
                wait.as_millis()
            )));
        }
        let (credential, cert_pem) = self.sign(&r.csr_der, &t.source_id, t.mover)?;
        let c = self.0.writer.submit(Enroll { token_hash: hash, credential }).await?;
        tracing::info!(source_id = %c.source_id, serial = %c.serial, "agent enrolled");
        Ok(self.answer(c, cert_pem))
    }

    async fn renew(&self, who: &Principal, r: pb::RenewRequest) -> Result<pb::EnrollResponse> {
        let Principal::Agent { source_id, mover, serial } = who else {
            return Err(Error::Unauthenticated("renewing needs the agent's current credential".into()));
        };
        if r.csr_der.is_empty() || r.csr_der.len() > MAX_CSR_BYTES {
            return Err(Error::invalid("csr_der", format!("required, at most {MAX_CSR_BYTES} bytes")));
        }
        let (credential, cert_pem) = self.sign(&r.csr_der, source_id, *mover)?;
        let c = self.0.writer.submit(Renew { credential, previous_serial: serial.clone() }).await?;
        tracing::info!(source_id = %c.source_id, serial = %c.serial, "agent credential renewed");
        Ok(self.answer(c, cert_pem))
    }

    /// A certificate for the requested key, for `source_id`, and its record.
    fn sign(&self, csr: &[u8], source_id: &str, mover: bool) -> Result<(AgentCredential, String)> {
        let ttl = Duration::from_secs(self.0.config.agent_credential_ttl_secs);
        let issued = self.0.authority.sign_agent(csr, source_id, ttl)?;
        let credential = AgentCredential {
            serial: issued.serial,
            source_id: source_id.to_owned(),
            mover,
            key_sha256: issued.key_sha256,
            issued_at: now_ms(),
            expires_at: millis(issued.not_after),
            revoked_at: None,
        };
        Ok((credential, issued.cert_pem))
    }

    fn answer(&self, c: AgentCredential, cert_pem: String) -> pb::EnrollResponse {
        pb::EnrollResponse {
            source_id: c.source_id,
            certificate_pem: cert_pem,
            ca_certificate_pem: self.0.authority.cert_pem().to_owned(),
            expires_at: Some(convert::ts(c.expires_at)),
            mover: c.mover,
        }
    }
}

#[tonic::async_trait]
impl EnrollService for Enrollment {
    async fn enroll(&self, r: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        respond(Enrollment::enroll(self, r.into_inner()).await)
    }

    async fn renew(&self, r: Request<pb::RenewRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let who = caller(&r);
        respond(Enrollment::renew(self, &who, r.into_inner()).await)
    }
}

pub struct Access(pub Shared);

impl Access {
    async fn who_am_i(&self, who: &Principal) -> Result<pb::WhoAmIResponse> {
        use pb::who_am_i_response::Who;
        let who = match who {
            Principal::Agent { source_id, mover, serial } => {
                Who::Agent(pb::AgentIdentity { source_id: source_id.clone(), mover: *mover, serial: serial.clone() })
            }
            Principal::Person { name, .. } => {
                let t = self.0.store.person_token_named(name).await?.ok_or_else(|| Error::not_found("token", name))?;
                Who::Person(person_token(t))
            }
            Principal::Anonymous => return Err(Error::Unauthenticated("no credential".into())),
        };
        Ok(pb::WhoAmIResponse { who: Some(who) })
    }

    async fn create_person(&self, who: &Principal, r: pb::CreateTokenRequest) -> Result<pb::CreateTokenResponse> {
        let ttl_secs = match r.ttl.as_ref() {
            None => None,
            Some(d) => Some(v::duration_secs("ttl", Some(d), 1)?),
        };
        let new = NewToken { name: r.name, role: role_from("role", r.role)?, ttl_secs, unredacted: r.unredacted };
        let (token, t) = create_person_token(&self.0.writer, new, &who.actor()).await?;
        tracing::info!(token = %t.name, role = %t.role, by = %who.actor(), "token created");
        Ok(pb::CreateTokenResponse { token, info: Some(person_token(t)) })
    }

    async fn revoke_person(&self, who: &Principal, r: pb::RevokeTokenRequest) -> Result<pb::RevokeTokenResponse> {
        let name = v::id("name", &r.name)?;
        let t = self.0.writer.submit(RevokeToken { name, actor: who.actor() }).await?;
        // At once here; the CLI's revocations arrive by the revocation poll.
        self.0.identities.token_revoked(&t);
        Ok(pb::RevokeTokenResponse { token: Some(person_token(t)) })
    }

    async fn create(
        &self,
        who: &Principal,
        r: pb::CreateEnrollmentTokenRequest,
    ) -> Result<pb::CreateEnrollmentTokenResponse> {
        let ttl = match r.ttl.as_ref() {
            None => 3600,
            Some(d) => v::duration_secs("ttl", Some(d), 1)?,
        };
        let uses = if r.uses == 0 { 1 } else { r.uses };
        let (token, t) = create_token(&self.0.writer, &r.source_id, ttl, uses, r.mover, &who.actor()).await?;
        Ok(pb::CreateEnrollmentTokenResponse {
            token,
            token_id: t.token_id,
            expires_at: Some(convert::ts(t.expires_at)),
            ca_fingerprint: self.0.authority.fingerprint(),
        })
    }

    async fn revoke(&self, who: &Principal, r: pb::RevokeAgentRequest) -> Result<pb::RevokeAgentResponse> {
        let source_id = v::id("source_id", &r.source_id)?;
        let now = now_ms();
        let live = self.0.store.agent_credentials(&source_id).await?.iter().filter(|c| c.valid_at(now)).count();
        self.0.writer.submit(RevokeAgent { source_id: source_id.clone(), actor: who.actor() }).await?;
        // At once here; other catchers' and the CLI's revocations arrive by the revocation poll.
        self.0.sessions.close(&source_id, pb::StatusCode::Unauthenticated, "the agent's credential was revoked");
        Ok(pb::RevokeAgentResponse { revoked: u32::try_from(live).unwrap_or(u32::MAX) })
    }

    async fn list(&self, r: pb::ListAgentCredentialsRequest) -> Result<pb::ListAgentCredentialsResponse> {
        let source_id = v::id("source_id", &r.source_id)?;
        let credentials = self.0.store.agent_credentials(&source_id).await?;
        Ok(pb::ListAgentCredentialsResponse { credentials: credentials.into_iter().map(credential).collect() })
    }
}

fn credential(c: AgentCredential) -> pb::AgentCredential {
    pb::AgentCredential {
        serial: c.serial,
        source_id: c.source_id,
        mover: c.mover,
        key_sha256: c.key_sha256,
        issued_at: Some(convert::ts(c.issued_at)),
        expires_at: Some(convert::ts(c.expires_at)),
        revoked_at: convert::ts_opt(c.revoked_at),
    }
}

fn millis(t: std::time::SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[tonic::async_trait]
impl AccessService for Access {
    async fn create_enrollment_token(
        &self,
        r: Request<pb::CreateEnrollmentTokenRequest>,
    ) -> Result<Response<pb::CreateEnrollmentTokenResponse>, Status> {
        let who = caller(&r);
        respond(self.create(&who, r.into_inner()).await)
    }

    async fn revoke_agent(
        &self,
        r: Request<pb::RevokeAgentRequest>,
    ) -> Result<Response<pb::RevokeAgentResponse>, Status> {
        let who = caller(&r);
        respond(self.revoke(&who, r.into_inner()).await)
    }

    async fn list_agent_credentials(
        &self,
        r: Request<pb::ListAgentCredentialsRequest>,
    ) -> Result<Response<pb::ListAgentCredentialsResponse>, Status> {
        respond(self.list(r.into_inner()).await)
    }

    async fn who_am_i(&self, r: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        respond(Access::who_am_i(self, &caller(&r)).await)
    }

    async fn create_token(
        &self,
        r: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let who = caller(&r);
        respond(self.create_person(&who, r.into_inner()).await)
    }

    async fn list_tokens(&self, _: Request<pb::ListTokensRequest>) -> Result<Response<pb::ListTokensResponse>, Status> {
        let tokens = self.0.store.person_tokens().await;
        respond(tokens.map(|t| pb::ListTokensResponse { tokens: t.into_iter().map(person_token).collect() }))
    }

    async fn revoke_token(
        &self,
        r: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let who = caller(&r);
        respond(self.revoke_person(&who, r.into_inner()).await)
    }
}
