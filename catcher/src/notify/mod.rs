//! Notification channels: how an alert's transition reaches people (a JSON webhook, a
//! Slack-compatible webhook, an email over SMTP). Configured channels are opened once at start
//! (secrets read from their files then); the delivery worker and the test RPC send through them.
//! Secrets never leave this module: `target` describes a channel without them.

mod email;
mod http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::*;

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Email,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only to a loopback server.
    None,
}

/// A channel in the catcher's config (`[[channels]]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Alert kinds carried; empty: every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<AlertKind>,
    /// Webhook and Slack: where to POST. Prefer `url_file` for URLs that carry a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// Extra trusted CA certificates (PEM) for an https receiver or the SMTP server, beside the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

/// A URL without what may be secret: scheme, host and port only (no user, path or query).
pub fn redact_url(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => match uri.port_u16() {
                Some(port) => format!("{scheme}://{host}:{port}/…"),
                None => format!("{scheme}://{host}/…"),
            },
            _ => "<not a URL>".to_owned(),
        },
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// The host of an http(s) URL without user information.
fn url_host(url: &str) -> Option<String> {
    let uri = url.parse::<hyper::Uri>().ok()?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return None;
    }
    uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
}

impl ChannelConfig {
    /// Checks what parses but makes no sense; the reason names the channel and the field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: &str| Err(format!("{:?}: {field}: {why}", self.name));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("{:?}: name: 1..64 of a-z, 0-9, - and _", self.name));
        }
        match self.kind {
            ChannelKind::Webhook | ChannelKind::Slack => {
                if self.url.is_some() == self.url_file.is_some() {
                    return bad("url", "give exactly one of url and url_file");
                }
                if let Some(url) = &self.url {
                    check_url(url).or_else(|why| bad("url", &why))?;
                }
                if self.smtp_host.is_some() || !self.to.is_empty() {
                    return bad("smtp_host", "only email channels have an SMTP server");
                }
            }
            ChannelKind::Email => {
                let Some(host) = self.smtp_host.as_deref().filter(|h| !h.is_empty()) else {
                    return bad("smtp_host", "required for email");
                };
                if self.smtp_tls == SmtpTls::None && !edgebackup_common::is_loopback_host(host) {
                    return bad("smtp_tls", "none is allowed only to a loopback server");
                }
                if self.url.is_some() || self.url_file.is_some() {
                    return bad("url", "email channels have no url");
                }
                if self.from.as_deref().is_none_or(|f| f.parse::<lettre::message::Mailbox>().is_err()) {
                    return bad("from", "required: an address like \"Edge Backup <backup@example.com>\"");
                }
                if self.to.is_empty() {
                    return bad("to", "at least one recipient");
                }
                if let Some(to) = self.to.iter().find(|t| t.parse::<lettre::message::Mailbox>().is_err()) {
                    return bad("to", &format!("{to:?} is not an email address"));
                }
                if self.smtp_password_file.is_some() != self.smtp_username.is_some() {
                    return bad("smtp_username", "smtp_username and smtp_password_file go together");
                }
            }
        }
        Ok(())
    }
}

/// An http(s) URL; plain http only to a loopback receiver (a token in it would travel in clear).
fn check_url(url: &str) -> Result<(), String> {
    let host =
        url_host(url).filter(|h| !h.is_empty()).ok_or("not an http(s) URL with a host (and no user:password@)")?;
    if url.starts_with("https://") {
        return Ok(());
    }
    if url.starts_with("http://") {
        return if edgebackup_common::is_loopback_host(&host) {
            Ok(())
        } else {
            Err("http:// only to a loopback receiver; use https".into())
        };
    }
    Err("must start with https:// (or http:// to a loopback receiver)".into())
}

fn read_secret(path: &Path, field: &str, name: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{name:?}: {field}: cannot read {}: {e}", path.display()))
}

/// What one notification says.
#[derive(Debug, Clone)]
pub struct Message {
    /// The notification's id (receivers may drop a repeat by it); a fresh one for a test.
    pub id: String,
    /// "raised", "resolved" or "test".
    pub event: &'static str,
    pub alert: Alert,
    /// The catcher's name for people (its host name).
    pub catcher: String,
}

impl Message {
    /// One line for people: "RAISED rpo_breached edge-1:/data — no complete backup since …".
    pub fn summary(&self) -> String {
        format!(
            "[Edge Backup] {} {} {}: {}",
            self.event.to_uppercase(),
            self.alert.kind.as_str(),
            self.alert.subject,
            self.alert.message
        )
    }

    /// The generic webhook body.
    pub fn json(&self) -> serde_json::Value {
        let a = &self.alert;
        serde_json::json!({
            "id": self.id,
            "event": self.event,
            "catcher": self.catcher,
            "alert": {
                "id": a.id,
                "kind": a.kind.as_str(),
                "subject": a.subject,
                "source_id": a.source_id,
                "message": a.message,
                "raised_at": rfc3339(Some(a.raised_at)),
                "resolved_at": rfc3339(a.resolved_at),
                "acknowledged_by": a.acknowledged_by,
            },
        })
    }

    /// A Slack-compatible body.
    pub fn slack(&self) -> serde_json::Value {
        let icon = match self.event {
            "raised" => ":rotating_light:",
            "resolved" => ":white_check_mark:",
            _ => ":information_source:",
        };
        // Slack reads `<…>` as links and mentions (`<!channel>`): what sources report is text.
        let text = self.summary().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        serde_json::json!({ "text": format!("{icon} {text}") })
    }

    /// The email's subject and plain-text body.
    pub fn email(&self) -> (String, String) {
        let a = &self.alert;
        let body = format!(
            "{}\n\nkind:     {}\nsubject:  {}\nsource:   {}\nraised:   {}\nresolved: {}\nalert id: {}\ncatcher:  {}\n",
            a.message,
            a.kind.as_str(),
            a.subject,
            if a.source_id.is_empty() { "-" } else { &a.source_id },
            rfc3339(Some(a.raised_at)),
            if a.resolved_at.is_some() { rfc3339(a.resolved_at) } else { "-".to_owned() },
            a.id,
            self.catcher,
        );
        (self.summary(), body)
    }
}

/// The message a channel test sends: an alert of nobody's, raised and resolved at once.
pub fn test_message(channel: &str, actor: &str, catcher: &str) -> Message {
    let now = now_ms();
    Message {
        id: uuid::Uuid::now_v7().to_string(),
        event: "test",
        alert: Alert {
            id: "test".into(),
            kind: AlertKind::ChannelFailing,
            subject: channel.to_owned(),
            source_id: String::new(),
            message: format!("a test of channel {channel} by {actor}: nothing is wrong"),
            raised_at: now,
            resolved_at: Some(now),
            acknowledged_at: None,
            acknowledged_by: String::new(),
            note: String::new(),
        },
        catcher: catcher.to_owned(),
    }
}

/// How notifications name this catcher: its host name.
pub fn catcher_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "catcher".to_owned())
}

fn rfc3339(at: Option<Millis>) -> String {
    at.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339()).unwrap_or_default()
}

enum Transport {
    Http(http::Poster),
    Email(email::Mailer),
}

/// An opened channel.
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub kinds: Vec<AlertKind>,
    /// Where it delivers, without secrets.
    pub target: String,
    transport: Transport,
}

impl Channel {
    fn open(c: &ChannelConfig) -> Result<Self, String> {
        c.validate()?;
        let extra_ca = match &c.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("{:?}: ca_file: cannot read {}: {e}", c.name, path.display()))?,
            ),
            None => None,
        };
        let (target, transport) = match c.kind {
            ChannelKind::Webhook | ChannelKind::Slack => {
                let url = match (&c.url, &c.url_file) {
                    (Some(url), _) => url.clone(),
                    (None, Some(file)) => read_secret(file, "url_file", &c.name)?,
                    (None, None) => unreachable!("validated"),
                };
                check_url(&url).map_err(|why| format!("{:?}: url_file: {why}", c.name))?;
                let poster = http::Poster::new(&url, extra_ca.as_deref()).map_err(|e| format!("{:?}: {e}", c.name))?;
                (redact_url(&url), Transport::Http(poster))
            }
            ChannelKind::Email => {
                let password = match &c.smtp_password_file {
                    Some(file) => Some(read_secret(file, "smtp_password_file", &c.name)?),
                    None => None,
                };
                let mailer =
                    email::Mailer::new(c, password, extra_ca.as_deref()).map_err(|e| format!("{:?}: {e}", c.name))?;
                (mailer.target(), Transport::Email(mailer))
            }
        };
        Ok(Self { name: c.name.clone(), kind: c.kind, kinds: c.kinds.clone(), target, transport })
    }

    /// Sends one message; answers the receiver's word on success, the error otherwise.
    pub async fn send(&self, m: &Message) -> Result<String, String> {
        let attempt = async {
            match &self.transport {
                Transport::Http(p) => {
                    let body = if self.kind == ChannelKind::Slack { m.slack() } else { m.json() };
                    p.post(&m.id, body.to_string()).await
                }
                Transport::Email(mailer) => mailer.send(m).await,
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        }
    }
}

/// Every configured channel, opened.
#[derive(Default)]
pub struct Channels {
    list: Vec<Channel>,
    by_name: HashMap<String, usize>,
}

impl Channels {
    /// Opens every channel (reading secrets from their files); the error names the channel.
    pub fn open(configs: &[ChannelConfig]) -> Result<Self, String> {
        let mut out = Self::default();
        for c in configs {
            if out.by_name.contains_key(&c.name) {
                return Err(format!("{:?}: name: declared twice", c.name));
            }
            out.by_name.insert(c.name.clone(), out.list.len());
            out.list.push(Channel::open(c)?);
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.by_name.get(name).map(|&i| &self.list[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> ChannelConfig {
        ChannelConfig {
            name: "ops".into(),
            kind: ChannelKind::Webhook,
            kinds: vec![],
            url: Some(url.into()),
            url_file: None,
            ca_file: None,
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password_file: None,
            from: None,
            to: vec![],
        }
    }

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T0/B0/SECRET"), "https://hooks.slack.com/…");
        assert_eq!(redact_url("https://user:pw@example.com:8443/x?token=1"), "https://example.com:8443/…");
        let odd = redact_url("https://u:p/w@host.example/");
        assert!(!odd.contains("p/w") && !odd.contains(":p"), "never a part of the password: {odd}");
        assert!(!format!("{:?}", webhook("https://h.example/SECRET")).contains("SECRET"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(webhook("http://127.0.0.1:9/hook").validate().is_ok());
        assert!(webhook("http://[::1]:9/hook").validate().is_ok());
        assert!(webhook("https://alerts.example.com/hook").validate().is_ok());
        let e = webhook("http://alerts.example.com/hook").validate().unwrap_err();
        assert!(e.contains("url") && e.contains("https"), "{e}");
        assert!(webhook("ftp://x/y").validate().is_err());
        assert!(webhook("http://127.0.0.1:9@evil.example/hook").validate().is_err(), "user info hides the host");
    }

    #[test]
    fn email_needs_server_sender_and_recipients() {
        let mut c = webhook("https://x.example/");
        c.kind = ChannelKind::Email;
        c.url = None;
        assert!(c.validate().unwrap_err().contains("smtp_host"));
        c.smtp_host = Some("mail.example.com".into());
        assert!(c.validate().unwrap_err().contains("from"));
        c.from = Some("Edge Backup <backup@example.com>".into());
        assert!(c.validate().unwrap_err().contains("to"));
        c.to = vec!["ops@example.com".into()];
        assert!(c.validate().is_ok());
        c.smtp_tls = SmtpTls::None;
        assert!(c.validate().unwrap_err().contains("smtp_tls"));
    }
}
