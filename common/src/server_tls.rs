//! Serving TLS from certificate files that an operator (or certbot, or `catcher tls init`)
//! replaces while the server runs: the resolver keeps the loaded certificate and swaps it when
//! the files change and load cleanly, so a renewal needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Where a server certificate comes from.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// A certificate or key that does not load, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error("{0}")]
    Invalid(String),
}

/// The current certificate, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: CertFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

impl ReloadingCert {
    /// Loads `files` now (an error stops the start) and watches them until `stop` is cancelled.
    pub fn start(
        files: CertFiles,
        provider: Arc<CryptoProvider>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, CertError> {
        let key = certified(&files, &provider)?;
        let stamp = stamp(&files);
        let this = Arc::new(Self { files, provider, current: RwLock::new((Arc::new(key), stamp)) });
        tokio::spawn(this.clone().watch(stop));
        Ok(this)
    }

    async fn watch(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_EVERY) => {}
                () = stop.cancelled() => return,
            }
            let now = stamp(&self.files);
            if now == self.current.read().expect("tls lock").1 {
                continue;
            }
            match certified(&self.files, &self.provider) {
                Ok(key) => {
                    *self.current.write().expect("tls lock") = (Arc::new(key), now);
                    tracing::info!(cert = %self.files.cert.display(), "reloaded the TLS certificate");
                }
                // Half-written files, a key that does not match yet: keep serving the old one.
                Err(e) => {
                    tracing::warn!(error = %e, "the TLS certificate changed but does not load; keeping the old one")
                }
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("tls lock").0.clone())
    }
}

fn stamp(files: &CertFiles) -> Option<SystemTime> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some(m(&files.cert)?.max(m(&files.key)?))
}

fn certified(files: &CertFiles, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| CertError::Invalid(format!("{}: {e}", files.cert.display())))?;
    if chain.is_empty() {
        return Err(CertError::Invalid(format!("{}: no certificate in it", files.cert.display())));
    }
    let pem = crate::files::read_private(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CertError::Invalid(format!("{}: {e}", files.key.display())))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| CertError::Invalid(format!("{} and {}: {e}", files.cert.display(), files.key.display())))
}
