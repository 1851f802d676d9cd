//! From a call to a `Principal`: an agent by the client certificate rustls verified against the
//! CA, looked up by serial in the credentials the catcher issued; a person by the bearer token
//! in `authorization`, looked up by its hash. Both are cached and refused when revoked or
//! expired. Revocations made anywhere (this process, `catcher agent revoke` or `catcher token
//! revoke` on the host) are picked up within `REVOCATION_POLL`: the source's agent stream is
//! closed, and every open call of a revoked person's token is ended (`ended_when_revoked`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use crate::domain::{AgentCredential, Millis, PersonToken, Role, now_ms};
use crate::error::{Error, Result};
use crate::store::Store;

/// How often revocations are looked for (the bound is 1 s from revoke to closed stream).
const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// What the listener knows about a connection (inserted into every request).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: bool,
    /// The serial of the client's certificate, verified against the catcher's CA during the
    /// handshake (read once there; rustls keeps the certificate itself).
    pub client_serial: Option<Arc<str>>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential.
    Anonymous,
    /// An enrolled agent: it speaks for `source_id` only.
    Agent { source_id: String, mover: bool, serial: String },
    /// A person's token.
    Person { name: String, role: Role, unredacted: bool },
}

impl Principal {
    /// The source an agent speaks for.
    pub fn agent_source(&self) -> Option<&str> {
        match self {
            Self::Agent { source_id, .. } => Some(source_id),
            Self::Anonymous | Self::Person { .. } => None,
        }
    }

    /// Who did it, as the journal records it: `token:alice (operator)`, `agent:edge-1`.
    pub fn actor(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Agent { source_id, .. } => format!("agent:{source_id}"),
            Self::Person { name, role, .. } => format!("token:{name} ({role})"),
        }
    }
}

/// The prefix of people's tokens; enrollment tokens have their own.
pub const PERSON_TOKEN_PREFIX: &str = "ebk_token_";

/// The credentials seen so far: agents' by certificate serial, people's by token hash (only
/// tokens that exist are cached, so unknown tokens cannot grow the cache).
pub struct Identities {
    store: Store,
    known: Mutex<HashMap<String, AgentCredential>>,
    people: Mutex<HashMap<String, PersonToken>>,
    /// One token per person's token name with open calls; cancelled when it is revoked.
    live: Mutex<HashMap<String, CancellationToken>>,
}

impl Identities {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            known: Mutex::new(HashMap::new()),
            people: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of a call on `conn` with `authorization` (the header, if any).
    pub async fn resolve(&self, conn: Option<&ConnInfo>, authorization: Option<&[u8]>) -> Result<Principal> {
        let serial = conn.and_then(|c| c.client_serial.as_deref());
        match (serial, authorization) {
            (Some(_), Some(_)) => Err(Error::Unauthenticated(
                "authorization: a call carries an agent's certificate or a person's token, not both".into(),
            )),
            (Some(serial), None) => self.agent(serial).await,
            (None, Some(header)) => self.person(header).await,
            (None, None) => Ok(Principal::Anonymous),
        }
    }

    async fn person(&self, header: &[u8]) -> Result<Principal> {
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(bearer)
            .map(str::trim)
            .filter(|t| t.starts_with(PERSON_TOKEN_PREFIX))
            .ok_or_else(|| Error::Unauthenticated("authorization: expected `Bearer ebk_token_…`".into()))?;
        let hash = super::secret::hash(token);
        let cached = self.people.lock().expect("identities").get(&hash).cloned();
        let t = match cached {
            Some(t) => t,
            None => {
                let Some(t) = self.store.person_token(&hash).await? else {
                    return Err(Error::Unauthenticated("authorization: not a token of this catcher".into()));
                };
                self.people.lock().expect("identities").insert(hash, t.clone());
                t
            }
        };
        if t.revoked_at.is_some() {
            return Err(Error::Unauthenticated(format!("authorization: the token {:?} was revoked", t.name)));
        }
        if !t.valid_at(now_ms()) {
            return Err(Error::Unauthenticated(format!("authorization: the token {:?} has expired", t.name)));
        }
        Ok(Principal::Person { name: t.name, role: t.role, unredacted: t.unredacted })
    }

    /// Cancelled when the person's token `name` is revoked (open calls end then).
    pub fn ended_when_revoked(&self, name: &str) -> CancellationToken {
        self.live.lock().expect("identities").entry(name.to_owned()).or_default().clone()
    }

    /// Ends the open calls of a revoked token at once (the poll would within its period).
    pub fn token_revoked(&self, t: &PersonToken) {
        self.people.lock().expect("identities").insert(t.token_hash.clone(), t.clone());
        if let Some(live) = self.live.lock().expect("identities").remove(&t.name) {
            tracing::info!(token = %t.name, "token revoked; ending its open calls");
            live.cancel();
        }
    }

    async fn agent(&self, serial: &str) -> Result<Principal> {
        let cached = self.known.lock().expect("identities").get(serial).cloned();
        let credential = match cached {
            Some(c) => c,
            None => {
                let Some(c) = self.store.agent_credential(serial).await? else {
                    return Err(Error::Unauthenticated(format!(
                        "certificate {serial} is not a credential of this catcher; enroll the agent"
                    )));
                };
                self.known.lock().expect("identities").insert(serial.to_owned(), c.clone());
                c
            }
        };
        if credential.revoked_at.is_some() {
            return Err(Error::Unauthenticated(format!(
                "the credential of {} was revoked; enroll the device again",
                credential.source_id
            )));
        }
        if credential.expires_at <= now_ms() {
            return Err(Error::Unauthenticated(format!(
                "the credential of {} has expired; enroll the device again",
                credential.source_id
            )));
        }
        Ok(Principal::Agent { source_id: credential.source_id, mover: credential.mover, serial: serial.to_owned() })
    }

    /// Polls for revocations until `stop`; `closed(source)` is called once per revoked source.
    pub async fn watch_revocations(self: Arc<Self>, closed: impl Fn(&str) + Send + 'static, stop: CancellationToken) {
        // Revocations stamped up to a poll's length before we looked are still picked up.
        let mut since: Millis = now_ms() - 1_000;
        loop {
            tokio::select! {
                () = tokio::time::sleep(REVOCATION_POLL) => {}
                () = stop.cancelled() => return,
            }
            let looked = now_ms();
            match self.store.person_tokens_revoked_since(since).await {
                Ok(revoked) => revoked.iter().for_each(|t| self.token_revoked(t)),
                Err(e) => tracing::warn!(error = %e, "looking for revoked tokens failed; trying again"),
            }
            match self.store.revoked_since(since).await {
                Ok(revoked) => {
                    let mut sources = Vec::new();
                    {
                        let mut known = self.known.lock().expect("identities");
                        for c in revoked {
                            let newly = known.get(&c.serial).is_none_or(|k| k.revoked_at.is_none());
                            if newly && !sources.contains(&c.source_id) {
                                sources.push(c.source_id.clone());
                            }
                            known.insert(c.serial.clone(), c);
                        }
                    }
                    for s in sources {
                        tracing::info!(source_id = %s, "agent credential revoked; closing its stream");
                        closed(&s);
                    }
                    since = looked - 1_000;
                }
                Err(e) => tracing::warn!(error = %e, "looking for revoked credentials failed; trying again"),
            }
        }
    }
}

/// A certificate's serial number as stored: lowercase hex, without leading zero bytes.
pub fn serial_of(cert: &CertificateDer<'_>) -> Result<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| Error::Unauthenticated("the client certificate cannot be read".into()))?;
    Ok(serial_hex(parsed.tbs_certificate.raw_serial()))
}

/// The credential of an `authorization` value with the Bearer scheme, whose name is
/// case-insensitive (RFC 9110, section 11.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, credential) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credential)
}

/// Serial bytes as stored.
pub fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_matched_whatever_its_case() {
        assert_eq!(bearer("Bearer ebk_token_x"), Some("ebk_token_x"));
        assert_eq!(bearer("bearer ebk_token_x"), Some("ebk_token_x"));
        assert_eq!(bearer("BEARER ebk_token_x"), Some("ebk_token_x"));
        assert_eq!(bearer("Basic ebk_token_x"), None);
        assert_eq!(bearer("Bearerebk_token_x"), None);
        assert_eq!(bearer("ebk_token_x"), None);
    }
}
