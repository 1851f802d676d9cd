//! The agent's identity: a credential (certificate for a key generated here, the catcher's CA)
//! in `state_dir/credential`, obtained once with an enrollment token and renewed before it
//! expires. Every connection to the catcher goes through `channel`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgebackup_common::client::{self, Credential, Trust};
use edgebackup_proto::v1 as pb;
use tonic::transport::Channel;

use crate::config::Config;

/// Renew when less than this share of the certificate's life is left.
const RENEW_AT_REMAINING: f64 = 1.0 / 3.0;

pub fn dir(config: &Config) -> PathBuf {
    config.state_dir.join("credential")
}

/// The credential, enrolling first when there is none and the config holds a token.
pub async fn ensure(config: &Config) -> Result<Option<Credential>, String> {
    if let Some(c) = Credential::load(&dir(config))? {
        return Ok(Some(c));
    }
    if config.token.is_empty() {
        return Ok(None);
    }
    let fingerprint = (!config.catcher_ca_fingerprint.is_empty()).then_some(config.catcher_ca_fingerprint.as_str());
    enroll(config, &config.catcher_url, &config.token, fingerprint).await.map(Some)
}

/// Enrolls with `token` at `url` and keeps the credential; it must speak for this agent's source.
pub async fn enroll(config: &Config, url: &str, token: &str, fingerprint: Option<&str>) -> Result<Credential, String> {
    let (credential, source_id) = client::enroll(url, token, fingerprint).await?;
    if source_id != config.source_id {
        return Err(format!(
            "the token enrolls source {source_id:?}, but this agent is {:?} (source_id in its config)",
            config.source_id
        ));
    }
    credential.save(&dir(config))?;
    tracing::info!(source_id, dir = %dir(config).display(), "enrolled: credential saved");
    Ok(credential)
}

/// A channel to the first catcher replica that answers (`Config::endpoints`, in order), with
/// this agent's credential.
pub async fn channel(config: &Config, lazy: bool) -> Result<Channel, String> {
    let mut errors = Vec::new();
    for url in config.endpoints() {
        match channel_to(config, &url, lazy).await {
            Ok(ch) => return Ok(ch),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// A channel to the catcher at `url` with this agent's credential (TLS for https).
pub async fn channel_to(config: &Config, url: &str, lazy: bool) -> Result<Channel, String> {
    let credential = ensure(config).await?;
    let https = url.starts_with("https://");
    let tls = match (&credential, https) {
        (_, false) => None,
        (Some(c), true) => Some(client::tls_config(Trust::Ca(&c.ca_pem), Some(c))?),
        (None, true) if !config.catcher_ca_fingerprint.is_empty() => {
            Some(client::tls_config(Trust::Fingerprint(&config.catcher_ca_fingerprint), None)?)
        }
        (None, true) => {
            return Err(format!(
                "not enrolled: run `agent enroll --catcher {} --token TOKEN --ca-fingerprint FP` \
                 (catcher enroll prints both), or set token in the config",
                config.catcher_url
            ));
        }
    };
    client::channel(url, tls, lazy).await
}

/// Whether the credential is near enough its end to renew.
pub fn due_for_renewal(c: &Credential) -> bool {
    let Some((not_before, not_after)) = c.validity() else { return false };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let life = (not_after - not_before).max(1) as f64;
    ((not_after - now) as f64) < life * RENEW_AT_REMAINING
}

/// Renews the credential over an authenticated channel: a new key, the same source.
pub async fn renew(config: &Config, channel: Channel) -> Result<(), String> {
    let Some(old) = Credential::load(&dir(config))? else { return Ok(()) };
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| e.to_string())?;
    let answer = pb::enroll_service_client::EnrollServiceClient::new(channel)
        .renew(pb::RenewRequest { csr_der: csr.der().to_vec() })
        .await
        .map_err(|s| format!("renewing the credential ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    let fresh = Credential { cert_pem: answer.certificate_pem, key_pem: key.serialize_pem(), ca_pem: old.ca_pem };
    fresh.save(&dir(config))?;
    tracing::info!("credential renewed");
    Ok(())
}

/// How often a connected agent looks at its credential's remaining life.
pub const RENEW_CHECK: Duration = Duration::from_secs(600);
