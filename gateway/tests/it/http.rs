//! Plain HTTP: the embedded dashboard, health, what is not exposed, and CORS.

use crate::harness::{Stack, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_embedded_dashboard() {
    let stack = Stack::start().await;
    let base = stack.gateway.url();
    let (code, headers, body) = get(&base, "/").await;
    assert_eq!(code, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(headers["cache-control"], "no-cache");
    let html = String::from_utf8_lossy(&body).into_owned();
    // Every asset the page references is served, with a long cache (names carry a content hash).
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("./assets/")).collect();
    assert!(!assets.is_empty(), "index.html references built assets: {html}");
    for asset in assets {
        let (code, headers, body) = get(&base, &asset[1..]).await;
        assert_eq!(code, 200, "{asset}");
        assert!(!body.is_empty(), "{asset}");
        assert!(headers["cache-control"].to_str().unwrap().contains("immutable"), "{asset}");
        let ct = headers["content-type"].to_str().unwrap();
        if asset.ends_with(".js") {
            assert!(ct.contains("javascript"), "{asset}: {ct}");
        }
        if asset.ends_with(".css") {
            assert!(ct.starts_with("text/css"), "{asset}: {ct}");
        }
    }
    let (code, _, _) = get(&base, "/assets/missing.js").await;
    assert_eq!(code, 404);
    // Client-side routes get the page.
    let (code, _, body) = get(&base, "/packages").await;
    assert_eq!((code, body.len()), (200, html.len()));

    let (code, headers, body) = get(&base, "/healthz").await;
    assert_eq!(code, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((health["gateway"].as_str(), health["catcher"].as_str()), (Some("serving"), Some("serving")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_stream_is_not_exposed() {
    let stack = Stack::start().await;
    let web = stack.web();
    let request = web_request(&web.base, "edgebackup.v1.AgentService/Connect", None);
    let response = web.client.request(request).await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let stack = Stack::start_with(&[("GATEWAY_CORS_ORIGINS", "[\"http://localhost:5173\"]")]).await;
    let web = stack.web();
    let preflight = |origin: &str| {
        hyper::Request::options(format!("{}/edgebackup.v1.StatusService/GetStatus", web.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-grpc-web")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let ok = web.client.request(preflight("http://localhost:5173")).await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "http://localhost:5173");
    let denied = web.client.request(preflight("http://evil.example")).await.unwrap();
    assert!(denied.headers().get("access-control-allow-origin").is_none());

    // A real call from the allowed origin exposes the grpc trailers' headers to the page.
    let request = web_request(&web.base, "edgebackup.v1.StatusService/GetStatus", Some("http://localhost:5173"));
    let response = web.client.request(request).await.unwrap();
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_owned();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{exposed}");
}

fn web_request(base: &str, path: &str, origin: Option<&str>) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    let mut b = hyper::Request::post(format!("{base}/{path}"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    b.body(http_body_util::Full::new(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]))).unwrap()
}
