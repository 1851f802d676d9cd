//! A catcher and a gateway in front of it, and a minimal grpc-web client (what a browser sends).

use bytes::{Buf, Bytes, BytesMut};
use edgebackup_testkit::Proc;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

pub struct Stack {
    pub catcher: Proc,
    /// More catcher replicas (same PostgreSQL database), when started with `replicas`; held so
    /// that they run as long as the stack.
    _replicas: Vec<Proc>,
    pub gateway: Proc,
    /// The catcher's first admin token.
    pub admin_token: String,
    _db: Option<edgebackup_testkit::db::TestDb>,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with extra `GATEWAY_*` settings.
    pub async fn start_with(gateway_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
        let catcher =
            Proc::start("catcher", &["--listen", "127.0.0.1:0", "--database-url", &db], &[], dir.path()).await;
        let url = catcher.url();
        let gateway =
            Proc::start("gateway", &["--listen", "127.0.0.1:0", "--catcher", &url], gateway_env, dir.path()).await;
        let admin_token = catcher.admin_token();
        Self { catcher, _replicas: Vec::new(), gateway, admin_token, _db: None, _dir: dir }
    }

    /// `n` catcher replicas on one fresh PostgreSQL database, and a gateway in front of all of
    /// them (`catcher_url` plus `catcher_urls`), with extra `GATEWAY_*` settings.
    pub async fn replicas(n: usize, gateway_env: &[(&str, &str)]) -> Self {
        use edgebackup_testkit::db::{Db, TestDb};
        let db = TestDb::new(Db::Postgres).await;
        let dir = tempfile::tempdir().unwrap();
        let args = ["--listen", "127.0.0.1:0", "--database-url", db.url.as_str()];
        let catcher = Proc::start("catcher", &args, &[], dir.path()).await;
        let mut replicas = Vec::new();
        for _ in 1..n {
            replicas.push(Proc::start("catcher", &args, &[], dir.path()).await);
        }
        let more: Vec<String> = replicas.iter().map(|r| format!("\"{}\"", r.url())).collect();
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, format!("catcher_urls = [{}]\n", more.join(", "))).unwrap();
        let gateway_args =
            ["--listen", "127.0.0.1:0", "--catcher", &catcher.url(), "--config", config.to_str().unwrap()];
        let gateway = Proc::start("gateway", &gateway_args, gateway_env, dir.path()).await;
        let admin_token = catcher.admin_token();
        Self { catcher, _replicas: replicas, gateway, admin_token, _db: Some(db), _dir: dir }
    }

    /// A grpc-web client whose calls carry the admin token (as a script would send it).
    pub fn web(&self) -> GrpcWeb {
        self.web_with(Some(format!("Bearer {}", self.admin_token)), None)
    }

    /// A grpc-web client with this `authorization` and `cookie` (either may be absent).
    pub fn web_with(&self, authorization: Option<String>, cookie: Option<String>) -> GrpcWeb {
        GrpcWeb {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: self.gateway.url(),
            authorization,
            cookie,
        }
    }
}

/// A grpc-web call's failure: the grpc-status code and message from the trailers.
#[derive(Debug)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

pub struct GrpcWeb {
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
}

impl GrpcWeb {
    fn request(&self, path: &str, msg: &impl prost::Message) -> hyper::Request<Full<Bytes>> {
        let body = msg.encode_to_vec();
        let mut framed = Vec::with_capacity(body.len() + 5);
        framed.push(0);
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(&body);
        let mut request = hyper::Request::post(format!("{}/{path}", self.base))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1");
        if let Some(a) = &self.authorization {
            request = request.header("authorization", a);
        }
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        request.body(Full::new(Bytes::from(framed))).unwrap()
    }

    /// Starts a call and returns its response stream.
    pub async fn call(&self, path: &str, msg: &impl prost::Message) -> Frames {
        let response = self.client.request(self.request(path, msg)).await.expect("HTTP request to the gateway");
        assert_eq!(response.status(), 200, "grpc-web answers HTTP 200");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("application/grpc-web"), "{content_type}");
        // A trailers-only response (an error before any message) carries the status in its headers.
        let trailers = response.headers().get("grpc-status").map(|code| {
            let message = response.headers().get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or_default();
            format!("grpc-status:{}\r\ngrpc-message:{message}\r\n", code.to_str().unwrap_or_default())
        });
        Frames { body: response.into_body(), buf: BytesMut::new(), trailers }
    }

    pub async fn unary<R: prost::Message + Default>(
        &self,
        path: &str,
        msg: &impl prost::Message,
    ) -> Result<R, CallError> {
        let mut frames = self.call(path, msg).await;
        let first = frames.next_message().await;
        let (code, message) = frames.status().await;
        match (first, code) {
            (Some(bytes), 0) => Ok(R::decode(bytes).expect("decode response")),
            (_, code) => Err(CallError { code, message }),
        }
    }
}

/// The frames of a grpc-web response body.
pub struct Frames {
    body: hyper::body::Incoming,
    buf: BytesMut,
    trailers: Option<String>,
}

impl Frames {
    /// The next message, or None once the trailers arrived.
    pub async fn next_message(&mut self) -> Option<Bytes> {
        if self.trailers.is_some() {
            return None;
        }
        loop {
            if self.buf.len() >= 5 {
                let flag = self.buf[0];
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    let payload = self.buf.split_to(len).freeze();
                    if flag & 0x80 != 0 {
                        self.trailers = Some(String::from_utf8_lossy(&payload).into_owned());
                        return None;
                    }
                    return Some(payload);
                }
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                _ => return None,
            }
        }
    }

    /// Reads to the end; the grpc-status and grpc-message from the trailers.
    pub async fn status(&mut self) -> (u32, String) {
        while self.trailers.is_none() {
            if self.next_message().await.is_none() && self.trailers.is_none() {
                panic!("response ended without trailers");
            }
        }
        let text = self.trailers.clone().unwrap();
        let field = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let code = field("grpc-status").and_then(|c| c.parse().ok()).expect("grpc-status trailer");
        let message = field("grpc-message").map(|m| percent_decode(&m)).unwrap_or_default();
        (code, message)
    }
}

/// grpc-message is percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A plain HTTP GET against the gateway: status, headers, body.
pub async fn get(base: &str, path: &str) -> (u16, hyper::HeaderMap, Bytes) {
    try_get(base, path).await.expect("GET")
}

/// A plain HTTP GET that may fail.
pub async fn try_get(base: &str, path: &str) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let r = client.get(format!("{base}{path}").parse().unwrap()).await.map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, headers, body))
}
