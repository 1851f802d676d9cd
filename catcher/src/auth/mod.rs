//! Who is calling, and what they may do.
//!
//! Agents hold a client certificate the catcher's own CA signed for the key they generated
//! (`ca.rs`), recorded with its source (`credentials` in the store, written by the writer's
//! `Enroll`); `identity.rs` turns a connection's certificate into a `Principal`, checking expiry
//! and revocation, and `policy.rs` says per RPC which principals may call it. TLS itself is
//! `tls.rs` (certificate files and their reloading are shared with the gateway in
//! `edgebackup_common`); bearer secrets are `secret.rs`.

pub mod ca;
pub mod identity;
pub mod policy;
pub mod secret;
pub mod tls;

pub use identity::{ConnInfo, Identities, Principal};

/// What can go wrong with keys, certificates and credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    File(#[from] edgebackup_common::files::FileError),
    #[error(transparent)]
    Cert(#[from] edgebackup_common::server_tls::CertError),
    #[error("{0}")]
    Crypto(String),
    #[error("{0}")]
    BadRequest(String),
}

impl AuthError {
    pub fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::File(edgebackup_common::files::FileError::Io { path: path.to_owned(), source })
    }
}

impl From<AuthError> for crate::error::Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadRequest(m) => match m.split_once(": ") {
                Some((field, reason)) => Self::invalid(field, reason),
                None => Self::invalid("request", m),
            },
            other => Self::Unavailable(other.to_string()),
        }
    }
}
