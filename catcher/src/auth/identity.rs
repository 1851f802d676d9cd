//! From a connection to a `Principal`: the client certificate rustls verified against the CA,
//! looked up by serial in the credentials the catcher issued (cached), refused when revoked or
//! expired. Revocations made anywhere (this process, `catcher agent revoke` on the host) are
//! picked up within `REVOCATION_POLL` and the source's live stream is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use crate::domain::{AgentCredential, Millis, now_ms};
use crate::error::{Error, Result};
use crate::store::Store;

/// How often revocations are looked for (the bound is 1 s from revoke to closed stream).
const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// What the listener knows about a connection (inserted into every request).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: bool,
    /// The client's certificate, verified against the catcher's CA during the handshake.
    pub client_cert: Option<Arc<CertificateDer<'static>>>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential.
    Anonymous,
    /// An enrolled agent: it speaks for `source_id` only.
    Agent { source_id: String, mover: bool, serial: String },
}

impl Principal {
    /// The source an agent speaks for.
    pub fn agent_source(&self) -> Option<&str> {
        match self {
            Self::Agent { source_id, .. } => Some(source_id),
            Self::Anonymous => None,
        }
    }
}

/// The credentials seen so far, by certificate serial.
pub struct Identities {
    store: Store,
    known: Mutex<HashMap<String, AgentCredential>>,
}

impl Identities {
    pub fn new(store: Store) -> Self {
        Self { store, known: Mutex::new(HashMap::new()) }
    }

    /// The principal of a call on `conn`.
    pub async fn resolve(&self, conn: Option<&ConnInfo>) -> Result<Principal> {
        let Some(cert) = conn.and_then(|c| c.client_cert.as_ref()) else { return Ok(Principal::Anonymous) };
        let serial = serial_of(cert)?;
        let cached = self.known.lock().expect("identities").get(&serial).cloned();
        let credential = match cached {
            Some(c) => c,
            None => {
                let Some(c) = self.store.agent_credential(&serial).await? else {
                    return Err(Error::Unauthenticated(format!(
                        "certificate {serial} is not a credential of this catcher; enroll the agent"
                    )));
                };
                self.known.lock().expect("identities").insert(serial.clone(), c.clone());
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
        Ok(Principal::Agent { source_id: credential.source_id, mover: credential.mover, serial })
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

/// Serial bytes as stored.
pub fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}
