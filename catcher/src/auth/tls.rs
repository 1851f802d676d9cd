//! The catcher's TLS (rustls): its server certificate, reloaded when the files change, and
//! client certificates checked against its own CA (optional at the handshake: enrollment,
//! health and reflection need none; the credential check decides per call).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgebackup_common::files::{write_private, write_public};
pub use edgebackup_common::server_tls::CertFiles;
use edgebackup_common::server_tls::ReloadingCert;
use rustls::server::WebPkiClientVerifier;
use tokio_util::sync::CancellationToken;

use super::AuthError;
use super::ca::Authority;

/// Validity of a server certificate the catcher makes for itself.
const SERVER_CERT_TTL: Duration = Duration::from_secs(825 * 86_400);
/// The names a catcher's own certificate covers when nobody configured one.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The server side of TLS: build once, hand `config()` to the acceptor.
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// TLS with the certificate in `files` (reloaded while `stop` is not cancelled), client
    /// certificates verified against `ca`.
    pub fn new(files: CertFiles, ca: &Authority, stop: CancellationToken) -> Result<Self, AuthError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = ReloadingCert::start(files, provider.clone(), stop)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).map_err(|e| AuthError::Crypto(format!("ca.crt: {e}")))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| AuthError::Crypto(format!("client verifier: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AuthError::Crypto(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self { config: Arc::new(config) })
    }

    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// Writes a certificate for the loopback names into `dir` unless one is there.
pub fn ensure_loopback_cert(dir: &Path, ca: &Authority) -> Result<CertFiles, AuthError> {
    let files = CertFiles { cert: dir.join("server.crt"), key: dir.join("server.key") };
    let complete = |f: &CertFiles| f.cert.exists() && f.key.exists();
    if complete(&files) {
        return Ok(files);
    }
    let hosts: Vec<String> = LOOPBACK_NAMES.iter().map(|h| (*h).to_owned()).collect();
    // Replicas starting together on one data directory: each issues into a directory of its
    // own and renames it into place; the first rename wins (a directory is never replaced
    // once it holds files) and the others use its pair, never half of one.
    let staging = dir.with_extension(format!("new.{}", uuid::Uuid::now_v7().simple()));
    let _ = std::fs::remove_dir_all(&staging);
    let staged = CertFiles { cert: staging.join("server.crt"), key: staging.join("server.key") };
    write_server_cert(&staged, ca, &hosts)?;
    let _ = std::fs::rename(&staging, dir);
    let _ = std::fs::remove_dir_all(&staging);
    if !complete(&files) {
        // An incomplete directory from before: fill it in place.
        write_server_cert(&files, ca, &hosts)?;
    }
    Ok(files)
}

/// Issues a server certificate for `hosts` into `files` (`catcher tls init`).
pub fn write_server_cert(files: &CertFiles, ca: &Authority, hosts: &[String]) -> Result<(), AuthError> {
    let (chain, key) = ca.issue_server(hosts, SERVER_CERT_TTL)?;
    write_private(&files.key, key.as_bytes())?;
    Ok(write_public(&files.cert, chain.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replicas_creating_the_loopback_certificate_together_share_one_pair() {
        let dir = tempfile::tempdir().unwrap();
        let ca = std::sync::Arc::new(Authority::load_or_create(&dir.path().join("ca")).unwrap());
        let tls = dir.path().join("tls");
        let made: Vec<CertFiles> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..6).map(|_| s.spawn(|| ensure_loopback_cert(&tls, &ca).unwrap())).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let cert = std::fs::read(&made[0].cert).unwrap();
        let key = std::fs::read(&made[0].key).unwrap();
        assert!(made.iter().all(|f| std::fs::read(&f.cert).unwrap() == cert && std::fs::read(&f.key).unwrap() == key));
        // The pair belongs together: a server config builds from it.
        let stop = tokio_util::sync::CancellationToken::new();
        assert!(ServerTls::new(made[0].clone(), &ca, stop).is_ok());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no staging directory left behind: {left:?}");
    }
}
