//! Connecting to the catcher. `http://` is plaintext (the catcher accepts it from loopback
//! peers only); `https://` is TLS that verifies the catcher by its CA, either the one saved at
//! enrollment or, before that, the one whose SHA-256 fingerprint the operator pinned, never by
//! trusting whatever answers. An agent presents its credential (client certificate) over TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint, Uri};

/// An agent's credential as kept in its state directory.
#[derive(Clone)]
pub struct Credential {
    /// Its certificate (PEM), signed by the catcher's CA.
    pub cert_pem: String,
    /// Its private key (PEM); generated on the device, never sent anywhere.
    pub key_pem: String,
    /// The catcher's CA (PEM): how the catcher is recognised.
    pub ca_pem: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

const CERT: &str = "agent.crt";
const KEY: &str = "agent.key";
const CA: &str = "ca.crt";

impl Credential {
    /// The credential in `dir`, if the device has enrolled.
    pub fn load(dir: &Path) -> Result<Option<Self>, String> {
        if !dir.join(KEY).exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY)).map_err(|e| e.to_string())?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{}: readable by others (mode {:o}); chmod 600 it",
                    dir.join(KEY).display(),
                    mode & 0o777
                ));
            }
        }
        Ok(Some(Self { cert_pem: read(CERT)?, key_pem: read(KEY)?, ca_pem: read(CA)? }))
    }

    /// Keeps it in `dir`: the key with mode 0600 (never readable by others, not even briefly).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        write(&dir.join(KEY), &self.key_pem, 0o600)?;
        write(&dir.join(CERT), &self.cert_pem, 0o644)?;
        write(&dir.join(CA), &self.ca_pem, 0o644)
    }

    /// When the certificate became and stops being valid (seconds since the epoch).
    pub fn validity(&self) -> Option<(i64, i64)> {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        Some((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    crate::files::write_atomic(path, text.as_bytes(), mode).map_err(|e| e.to_string())
}

/// How the catcher is recognised.
pub enum Trust<'a> {
    /// By this CA certificate (PEM).
    Ca(&'a str),
    /// By a CA whose SHA-256 fingerprint (hex, colons allowed) is this.
    Fingerprint(&'a str),
}

/// TLS for talking to the catcher, presenting `credential` when given.
pub fn tls_config(trust: Trust<'_>, credential: Option<&Credential>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match trust {
        Trust::Ca(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.map_err(|e| format!("the catcher's CA: {e}"))?).map_err(|e| e.to_string())?;
            }
            builder.with_root_certificates(roots)
        }
        Trust::Fingerprint(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCa { fingerprint: normalise(fp)?, provider })),
    };
    let mut config = match credential {
        Some(c) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the agent's certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).map_err(|e| format!("the agent's key: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("the agent's credential: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// SHA-256 of a certificate (PEM or DER), lowercase hex.
pub fn fingerprint_of_pem(pem: &str) -> Result<String, String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
    Ok(hex::encode(Sha256::digest(der.as_ref())))
}

fn normalise(fp: &str) -> Result<String, String> {
    let hex: String = fp.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("ca fingerprint {fp:?}: expected 64 hex digits (SHA-256, as `catcher enroll` prints it)"));
    }
    Ok(hex)
}

/// A channel to `url`: TLS with `tls` for https, plaintext for http. `lazy` connects on first use.
pub async fn channel(url: &str, tls: Option<Arc<rustls::ClientConfig>>, lazy: bool) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .http2_keep_alive_interval(std::time::Duration::from_secs(20))
        .keep_alive_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true);
    if lazy {
        return connect_lazy(endpoint, tls);
    }
    let Some(tls) = tls_for(&endpoint, tls)? else {
        return endpoint.connect().await.map_err(|e| format!("the catcher at {url} is unreachable: {e}"));
    };
    endpoint
        .connect_with_connector(connector(tls))
        .await
        .map_err(|e| format!("the catcher at {url}: {}", source_chain(&e)))
}

/// A channel over `endpoint` that connects on first use (and again after a failure).
pub fn connect_lazy(endpoint: Endpoint, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Channel, String> {
    Ok(match tls_for(&endpoint, tls)? {
        Some(tls) => endpoint.connect_with_connector_lazy(connector(tls)),
        None => endpoint.connect_lazy(),
    })
}

/// The TLS configuration an endpoint needs: none for http, required for https.
fn tls_for(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if endpoint.uri().scheme_str() != Some("https") {
        return Ok(None);
    }
    tls.map(Some).ok_or_else(|| {
        format!("{}: https needs the catcher's CA (enroll first, or pin its fingerprint)", endpoint.uri())
    })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects TCP, then TLS verified by `tls`, naming the server by the URL's host.
fn connector(
    tls: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = BoxError,
    Future = impl Future<
        Output = Result<hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, BoxError>,
    > + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move {
            let host = uri.host().ok_or("the catcher URL has no host")?.trim_matches(['[', ']']).to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host).map_err(|e| format!("the catcher's host name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
            Ok::<_, BoxError>(hyper_util::rt::TokioIo::new(stream))
        }
    })
}

/// An error with its causes (TLS failures hide in them).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// Accepts the catcher when its chain holds the pinned CA and verifies against it.
#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| hex::encode(Sha256::digest(c.as_ref())) == self.fingerprint)
        else {
            return Err(rustls::Error::General(format!(
                "the catcher's CA is not the pinned one (SHA-256 {})",
                self.fingerprint
            )));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Enrolls this device: a new key (kept here), a certificate request for it, and the
/// catcher's answer. `https` needs `ca_fingerprint`; `http` is for a catcher on this host.
pub async fn enroll(url: &str, token: &str, ca_fingerprint: Option<&str>) -> Result<(Credential, String), String> {
    use edgebackup_proto::v1 as pb;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| format!("making a certificate request: {e}"))?;
    let tls = match ca_fingerprint {
        Some(fp) => Some(tls_config(Trust::Fingerprint(fp), None)?),
        None if url.starts_with("https://") => {
            return Err("--ca-fingerprint is required over https (catcher enroll prints it)".into());
        }
        None => None,
    };
    let ch = channel(url, tls, false).await?;
    let request = pb::EnrollRequest { token: token.to_owned(), csr_der: csr.der().to_vec() };
    let answer = pb::enroll_service_client::EnrollServiceClient::new(ch)
        .enroll(request)
        .await
        .map_err(|s| format!("enrollment refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    if let Some(fp) = ca_fingerprint
        && fingerprint_of_pem(&answer.ca_certificate_pem)? != normalise(fp)?
    {
        return Err("the catcher answered with a CA other than the pinned one".into());
    }
    let credential = Credential {
        cert_pem: answer.certificate_pem,
        key_pem: key.serialize_pem(),
        ca_pem: answer.ca_certificate_pem,
    };
    Ok((credential, answer.source_id))
}

/// Adds a person's token (`authorization: Bearer …`) to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// `token` as a bearer credential; none sends no header.
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        let value = token
            .map(|t| {
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| "the token has characters a header cannot carry".to_owned())
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Bearer(<redacted>)" } else { "Bearer(none)" })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a person's token.
pub type PersonChannel = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// `channel` with `token` on every call.
pub fn as_person(channel: Channel, token: Option<&str>) -> Result<PersonChannel, String> {
    Ok(tonic::service::interceptor::InterceptedService::new(channel, Bearer::new(token)?))
}

/// A person's token from `CATCHER_TOKEN`, else from `file` (the first line; an empty or
/// missing file is an error naming it), else from the catcher's first-start `default_file`
/// when that exists and is readable.
pub fn person_token(file: Option<&Path>, default_file: &Path) -> Result<Option<String>, String> {
    if let Ok(token) = std::env::var("CATCHER_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_owned()));
    }
    let read = |path: &Path| -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--token-file {}: {e}", path.display()))?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        if token.is_empty() {
            return Err(format!("--token-file {}: empty", path.display()));
        }
        Ok(token)
    };
    match file {
        Some(path) => read(path).map(Some),
        None if default_file.is_file() => Ok(read(default_file).ok()),
        None => Ok(None),
    }
}
