//! HTTPS: the gateway serves TLS from its certificate files (and picks up new ones without a
//! restart), reaches an https catcher only when it recognises the catcher's CA, and refuses to
//! serve plain HTTP off loopback.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use edgebackup_testkit::{Proc, Spec, eventually};
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate for 127.0.0.1, written as the gateway's files; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap();
    // Written aside and renamed, as a careful operator or certbot would.
    let write = |name: &str, text: String, mode: u32| {
        edgebackup_common::files::write_atomic(&dir.join(name), text.as_bytes(), mode).unwrap();
    };
    write("gateway.key", key.serialize_pem(), 0o600);
    write("gateway.crt", cert.pem(), 0o644);
    cert.der().clone()
}

/// GET over TLS trusting only `trusted`; returns the status, the body and the certificate served.
async fn get_tls(addr: &str, path: &str, trusted: &CertificateDer<'static>) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::get(path).header("host", addr).body(Empty::<Bytes>::new()).unwrap();
    let response = send.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn catcher_ca(dir: &Path) -> String {
    dir.join("data/ca/ca.crt").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_reaches_the_catcher_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
    let catcher = Proc::start("catcher", &["--listen", "127.0.0.1:0", "--database-url", &db], &[], dir.path()).await;
    let first = write_cert(dir.path());
    let env = [
        ("GATEWAY_TLS_CERT_FILE", "gateway.crt"),
        ("GATEWAY_TLS_KEY_FILE", "gateway.key"),
        ("GATEWAY_CATCHER_CA_FILE", &catcher_ca(dir.path())),
    ];
    let gateway =
        Proc::start("gateway", &["--listen", "127.0.0.1:0", "--catcher", &catcher.tls_url()], &env, dir.path()).await;

    // Health through the gateway proves both hops: HTTPS to it, verified TLS from it.
    let (code, body) = get_tls(&gateway.addr, "/healthz", &first).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["catcher"], "serving", "{body}");
    let (code, html) = get_tls(&gateway.addr, "/", &first).await.unwrap();
    assert!(code == 200 && html.contains("<title>Edge Backup</title>"), "{code} {html}");

    // Plain HTTP on the TLS port gets no page.
    let plain = crate::harness::try_get(&format!("http://{}", gateway.addr), "/healthz").await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A new certificate is served without a restart; the old one is no longer trusted by anyone.
    let second = write_cert(dir.path());
    eventually("the new certificate is served", 15, || async {
        get_tls(&gateway.addr, "/healthz", &second).await.ok().filter(|(code, _)| *code == 200)
    })
    .await;
    let old = get_tls(&gateway.addr, "/healthz", &first).await;
    assert!(old.is_err(), "{old:?}");
    assert!(gateway.log_text().contains("reloaded the TLS certificate"), "{}", gateway.log_text());

    // A gateway pinned to another CA does not talk to this catcher.
    let env = [
        ("GATEWAY_TLS_CERT_FILE", "gateway.crt"),
        ("GATEWAY_TLS_KEY_FILE", "gateway.key"),
        ("GATEWAY_CATCHER_CA_FINGERPRINT", &"ab".repeat(32)),
    ];
    let pinned_wrong =
        Proc::start("gateway", &["--listen", "127.0.0.1:0", "--catcher", &catcher.tls_url()], &env, dir.path()).await;
    let (code, body) = get_tls(&pinned_wrong.addr, "/healthz", &second).await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("unreachable") && body.contains("pinned"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Spec::new("gateway", dir.path()).args(["--listen", "0.0.0.0:0"]).output(30).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen:") && err.contains("tls_cert_file") && err.contains("allow_plaintext"), "{err}");

    let out = Spec::new("gateway", dir.path())
        .args(["--listen", "127.0.0.1:0", "--catcher", "http://192.0.2.1:50051"])
        .output(30)
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("catcher_url:") && err.contains("https://"), "{err}");
}
