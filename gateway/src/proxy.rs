//! Forwards gRPC requests to the catcher, whatever the service or method.
//!
//! tonic-web turns a browser's grpc-web request into a gRPC request; this service sends it over
//! one multiplexed HTTP/2 channel and streams the response back untouched, so unary calls and
//! server streams (`Watch`) work without per-RPC code. The channel connects lazily and reconnects
//! by itself: a catcher that is down yields `Unavailable`, and the next call after it is back works.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;

/// Services the browser may reach. The agent stream is bidirectional (grpc-web cannot carry it)
/// and belongs to agents, so it is not exposed here.
pub const EXPOSED_SERVICES: &[&str] = &[
    "edgebackup.v1.StatusService",
    "edgebackup.v1.PackageService",
    "edgebackup.v1.SourceService",
    "edgebackup.v1.PolicyService",
    "edgebackup.v1.JournalService",
    "edgebackup.v1.CatalogService",
    "edgebackup.v1.AlertService",
    "grpc.health.v1.Health",
];

/// Request headers that describe the browser's connection, not the call.
const DROPPED_HEADERS: &[&str] = &["host", "connection", "keep-alive", "cookie", "origin", "referer"];

/// The channel to the catcher, over TLS verified by `tls` when the URL is https.
pub fn channel(
    catcher_url: &str,
    connect_timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(catcher_url.to_owned())
        .map_err(|e| format!("catcher_url: {e}"))?
        .connect_timeout(connect_timeout)
        // Notice a vanished catcher even while a Watch stream is quiet.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    edgebackup_common::client::connect_lazy(endpoint, tls)
}

/// A tower service forwarding gRPC requests to the catcher replicas.
#[derive(Clone)]
pub struct Forward {
    upstreams: crate::upstream::Upstreams,
    sessions: crate::session::SharedSessions,
}

impl Forward {
    pub fn new(upstreams: crate::upstream::Upstreams, sessions: crate::session::SharedSessions) -> Self {
        Self { upstreams, sessions }
    }
}

impl tower::Service<http::Request<Body>> for Forward {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // A signed-in browser's calls carry its person's token; a script may send its own.
        if let Some(token) = self.sessions.token(req.headers())
            && let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
        }
        for name in DROPPED_HEADERS {
            req.headers_mut().remove(*name);
        }
        let upstreams = self.upstreams.clone();
        let replica = upstreams.pick();
        let (channel, target) = (replica.channel.clone(), replica.url.clone());
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            match channel.oneshot(req).await {
                Ok(response) => Ok(response.map(|body| Body::new(EndWithStatus { inner: body, done: false }))),
                Err(e) => {
                    tracing::warn!(%path, catcher = %target, error = %e, "catcher unreachable");
                    upstreams.mark_down(&target);
                    Ok(tonic::Status::unavailable(format!("catcher unreachable at {target}: {}", root_cause(&e)))
                        .into_http())
                }
            }
        })
    }
}

/// Ends a response whose upstream broke (the catcher died mid-stream) with an UNAVAILABLE
/// status in the trailers, so a grpc-web client sees a clean gRPC error instead of a cut body.
struct EndWithStatus {
    inner: Body,
    done: bool,
}

impl http_body::Body for EndWithStatus {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                tracing::warn!(error = %status, "catcher connection lost mid-response");
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from(tonic::Code::Unavailable as i32));
                trailers.insert("grpc-message", http::HeaderValue::from_static("catcher%20connection%20lost"));
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The innermost error, which says what actually happened (e.g. "Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
