//! People's sessions through the gateway: login with a token sets an HttpOnly SameSite=Strict
//! cookie, the cookie alone authorises grpc-web calls with the person's role, a revoked token
//! ends the session and its open Watch stream, and logout ends it too.

use std::time::{Duration, Instant};

use bytes::Bytes;
use edgebackup_proto::v1 as pb;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::harness::Stack;

/// POST or GET a JSON endpoint; the status, the Set-Cookie header and the body.
async fn api(
    base: &str,
    method: &str,
    path: &str,
    body: Option<String>,
    cookie: Option<&str>,
) -> (u16, String, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = hyper::Request::builder().method(method).uri(format!("{base}{path}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response =
        client.request(request.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, set_cookie, text)
}

async fn login(base: &str, token: &str) -> (u16, String, String) {
    api(base, "POST", "/api/login", Some(serde_json::json!({ "token": token }).to_string()), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_carries_the_persons_role_and_ends_with_its_token() {
    let stack = Stack::start().await;
    let base = stack.gateway.url();

    // No credential: grpc-web calls are refused, and so is a wrong token at login.
    let anonymous = stack.web_with(None, None);
    let err = anonymous
        .unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {})
        .await;
    assert_eq!(err.unwrap_err().code, 16, "Unauthenticated without a session");
    let (code, _, body) = login(&base, "ebk_token_nope").await;
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("error"), "{body}");

    // A viewer signs in: the cookie is HttpOnly and SameSite=Strict, and never carries the token.
    let token = stack.catcher.person_token("gina", "viewer").unwrap();
    let (code, set_cookie, body) = login(&base, &token).await;
    assert_eq!(code, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("gina"), Some("viewer")), "{body}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains(&token), "the cookie holds a session id, not the token");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (code, _, body) = api(&base, "GET", "/api/session", None, Some(&cookie)).await;
    assert_eq!(code, 200, "{body}");

    // The cookie alone authorises reads; a viewer may not change rules.
    let web = stack.web_with(None, Some(cookie.clone()));
    web.unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {})
        .await
        .unwrap();
    let change = pb::UpdateRuleSetRequest::default();
    let err =
        web.unary::<pb::UpdateRuleSetResponse>("edgebackup.v1.PolicyService/UpdateRuleSet", &change).await.unwrap_err();
    assert_eq!(err.code, 7, "PermissionDenied for a viewer: {err:?}");

    // Revoked on the catcher's host: the open Watch ends with UNAUTHENTICATED, the session too.
    let mut watch = web.call("edgebackup.v1.StatusService/Watch", &pb::WatchRequest::default()).await;
    assert!(watch.next_message().await.is_some(), "the snapshot arrives");
    let t0 = Instant::now();
    stack.catcher.cli(&["token", "revoke", "gina"]).unwrap();
    let (code, message) = tokio::time::timeout(Duration::from_secs(5), watch.status()).await.expect("the stream ended");
    assert_eq!(code, 16, "{message}");
    assert!(t0.elapsed() < Duration::from_secs(3), "ended after {:?}", t0.elapsed());
    let (code, _, _) = api(&base, "GET", "/api/session", None, Some(&cookie)).await;
    assert_eq!(code, 401, "a revoked token's session is over");

    // Logout ends a session and clears the cookie.
    let (_, set_cookie, _) = login(&base, &stack.admin_token).await;
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let admin = stack.web_with(None, Some(cookie.clone()));
    admin
        .unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {})
        .await
        .unwrap();
    let (code, cleared, _) = api(&base, "POST", "/api/logout", None, Some(&cookie)).await;
    assert_eq!(code, 204);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let err =
        admin.unary::<pb::GetStatusResponse>("edgebackup.v1.StatusService/GetStatus", &pb::GetStatusRequest {}).await;
    assert_eq!(err.unwrap_err().code, 16, "the old cookie no longer works");
    let log = stack.gateway.log_text();
    assert!(!log.contains(&token) && !log.contains(&stack.admin_token), "a token is in the gateway's log");
}
