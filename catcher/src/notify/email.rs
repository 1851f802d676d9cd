//! Email delivery over SMTP: STARTTLS (required, by default), implicit TLS, or plain to a
//! loopback server; the system's roots plus a channel's own CA.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{ChannelConfig, Message, SmtpTls};

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    target: String,
}

impl Mailer {
    pub fn new(c: &ChannelConfig, password: Option<String>, extra_ca: Option<&[u8]>) -> Result<Self, String> {
        let host = c.smtp_host.clone().unwrap_or_default();
        let port = c.smtp_port.unwrap_or(match c.smtp_tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let tls = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(pem) = extra_ca {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("smtp tls: {e}"))
        };
        let mode = match c.smtp_tls {
            SmtpTls::Starttls => Tls::Required(tls()?),
            SmtpTls::Tls => Tls::Wrapper(tls()?),
            SmtpTls::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(mode)
            .timeout(Some(super::ATTEMPT_TIMEOUT));
        if let (Some(user), Some(pw)) = (&c.smtp_username, password) {
            b = b.credentials(Credentials::new(user.clone(), pw));
        }
        let parse = |a: &str, field: &str| a.parse::<Mailbox>().map_err(|e| format!("{field}: {e}"));
        let from = parse(c.from.as_deref().unwrap_or_default(), "from")?;
        let to = c.to.iter().map(|t| parse(t, "to")).collect::<Result<Vec<_>, _>>()?;
        let target = format!("smtp://{host}:{port} to {}", c.to.join(", "));
        Ok(Self { transport: b.build(), from, to, target })
    }

    pub fn target(&self) -> String {
        self.target.clone()
    }

    pub async fn send(&self, m: &Message) -> Result<String, String> {
        let (subject, body) = m.email();
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .message_id(Some(format!("<{}@edgebackup>", m.id)));
        for to in &self.to {
            b = b.to(to.clone());
        }
        let email = b.body(body).map_err(|e| e.to_string())?;
        let resp = self.transport.send(email).await.map_err(|e| e.to_string())?;
        Ok(format!("SMTP {}", resp.code()))
    }
}
