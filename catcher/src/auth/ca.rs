//! The catcher's certificate authority. It signs each enrolled agent's certificate (bound to
//! the key the agent generated, which never leaves the device) and, for small installs, the
//! catcher's own server certificate. Kept in `data_dir/ca/` (the key with mode 0600), created
//! on first start. Agents pin it by its SHA-256 fingerprint, printed by `catcher enroll`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use sha2::{Digest, Sha256};

use super::AuthError;
use edgebackup_common::files::{read_private, write_private, write_public};

/// What an agent's credential says and how long it holds.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: String,
    pub cert_pem: String,
    pub not_after: SystemTime,
    /// SHA-256 (hex) of the agent's public key, as the request carried it.
    pub key_sha256: String,
}

pub struct Authority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
/// Certificates start a minute back: clocks of devices and catcher differ a little.
const SKEW: Duration = Duration::from_secs(60);

impl Authority {
    /// The authority in `dir`, created there when it does not exist yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, AuthError> {
        let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if !cert.exists() && !key.exists() {
            create(dir, &cert, &key)?;
        }
        let cert_pem = std::fs::read_to_string(&cert).map_err(|e| AuthError::file(&cert, e))?;
        let key = KeyPair::from_pem(&read_private(&key)?).map_err(|e| AuthError::Crypto(format!("{CA_KEY}: {e}")))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| AuthError::Crypto(format!("{CA_CERT}: {e}")))?;
        let cert_der = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| AuthError::Crypto(format!("{CA_CERT}: {e}")))?;
        Ok(Self { cert_der, cert_pem, issuer })
    }

    /// The certificate agents pin, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the certificate (lowercase hex): what `agent enroll --ca-fingerprint` takes.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Signs an agent's certificate request: a client certificate for `source_id`, valid for
    /// `ttl`. Only the request's public key (and its proof of possession) is taken from it.
    pub fn sign_agent(&self, csr: &[u8], source_id: &str, ttl: Duration) -> Result<Issued, AuthError> {
        let request = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr))
            .map_err(|e| AuthError::BadRequest(format!("csr: not a valid certificate request ({e})")))?;
        let key_sha256 = hex::encode(Sha256::digest(rcgen::PublicKeyData::der_bytes(&request.public_key)));
        let serial: [u8; 16] = random_bytes()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, source_id);
        name.push(DnType::OrganizationName, "Edge Backup agent");
        params.distinguished_name = name;
        // Positive and 16 bytes: the top bit cleared.
        let mut serial_bytes = serial.to_vec();
        serial_bytes[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial_bytes));
        let now = SystemTime::now();
        let not_after = now + ttl;
        params.not_before = (now - SKEW).into();
        params.not_after = not_after.into();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&request.public_key, &self.issuer)
            .map_err(|e| AuthError::Crypto(format!("signing the agent's certificate: {e}")))?;
        let serial = super::identity::serial_hex(&serial_bytes);
        Ok(Issued { serial, cert_pem: cert.pem(), not_after, key_sha256 })
    }

    /// A server certificate for `hosts` (DNS names or IP addresses) and its new key, PEM.
    pub fn issue_server(&self, hosts: &[String], ttl: Duration) -> Result<(String, String), AuthError> {
        let key = KeyPair::generate().map_err(|e| AuthError::Crypto(e.to_string()))?;
        let mut params =
            CertificateParams::new(hosts.to_vec()).map_err(|e| AuthError::BadRequest(format!("hosts: {e}")))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, hosts.first().map_or("catcher", String::as_str));
        name.push(DnType::OrganizationName, "Edge Backup catcher");
        params.distinguished_name = name;
        let now = SystemTime::now();
        params.not_before = (now - SKEW).into();
        params.not_after = (now + ttl).into();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| AuthError::Crypto(e.to_string()))?;
        Ok((format!("{}{}", cert.pem(), self.cert_pem), key.serialize_pem()))
    }
}

/// Makes the CA in a directory of its own and renames it into place, so two processes starting
/// at once (a catcher and `catcher enroll`) end with one CA, never a key of one and a
/// certificate of the other.
fn create(dir: &Path, cert: &Path, key_path: &Path) -> Result<(), AuthError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| AuthError::file(parent, e))?;
    let staging = parent.join(format!(".ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| AuthError::file(&staging, e))?;
    let names = (cert.file_name().unwrap_or_default(), key_path.file_name().unwrap_or_default());
    write_ca(&staging.join(names.0), &staging.join(names.1))?;
    match std::fs::rename(&staging, dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "created the catcher's certificate authority");
            Ok(())
        }
        // Another process got there first: use its CA.
        Err(_) if cert.exists() && key_path.exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(e) => Err(AuthError::file(dir, e)),
    }
}

fn write_ca(cert: &Path, key_path: &Path) -> Result<(), AuthError> {
    let key = KeyPair::generate().map_err(|e| AuthError::Crypto(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Edge Backup catcher CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = SystemTime::now();
    params.not_before = (now - SKEW).into();
    params.not_after = (now + Duration::from_secs(20 * 365 * 86_400)).into();
    let ca = params.self_signed(&key).map_err(|e| AuthError::Crypto(e.to_string()))?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    Ok(write_public(cert, ca.pem().as_bytes())?)
}

/// SHA-256 of a certificate's DER, lowercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// Bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut out)
        .map_err(|_| AuthError::Crypto("the system random generator failed".into()))?;
    Ok(out)
}
