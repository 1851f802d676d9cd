//! Webhook delivery: one HTTP POST over rustls (the system's roots plus a channel's own CA).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Most of a receiver's answer read (it is not kept: it may echo the URL and its token).
const ANSWER_LIMIT: usize = 64 << 10;

/// Posts JSON to one URL.
pub struct Poster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: hyper::Uri,
}

impl Poster {
    pub fn new(url: &str, extra_ca: Option<&[u8]>) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|_| "url: not a valid URL".to_owned())?;
        let mut roots = rustls::RootCertStore::empty();
        // A system without readable roots still works with the channel's own CA.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file: not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err("ca_file: holds no certificate".into());
            }
            for cert in certs {
                roots.add(cert).map_err(|e| format!("ca_file: {e}"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(https), uri })
    }

    /// POSTs `body`; `id` goes along as the Idempotency-Key header. Any 2xx is delivered.
    pub async fn post(&self, id: &str, body: String) -> Result<String, String> {
        let req = hyper::Request::post(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, concat!("edgebackup-catcher/", env!("CARGO_PKG_VERSION")))
            .header("idempotency-key", id)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        // hyper's errors name no URL: nothing secret reaches the record.
        let resp = self.client.request(req).await.map_err(|e| chain(&e))?;
        let status = resp.status();
        // Drained (bounded) so the connection can be reused; the text itself is not recorded.
        let _ = http_body_util::Limited::new(resp.into_body(), ANSWER_LIMIT).collect().await;
        if status.is_success() { Ok(format!("HTTP {status}")) } else { Err(format!("HTTP {status}")) }
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
