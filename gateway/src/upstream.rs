//! The catcher replicas the gateway forwards to. Each call goes to the next healthy replica in
//! turn; one whose health check fails, or whose connection breaks under a call, is left out until
//! it answers SERVING again. With none healthy, calls still go round all of them (one may be
//! back before its next check).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// One catcher replica.
pub struct Replica {
    pub url: Arc<str>,
    pub channel: Channel,
    healthy: AtomicBool,
}

struct Inner {
    replicas: Vec<Replica>,
    next: AtomicUsize,
}

/// The replicas, shared by every handler.
#[derive(Clone)]
pub struct Upstreams(Arc<Inner>);

/// What a health check found of one replica.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub url: String,
    /// `serving`, `not_serving` or `unreachable`.
    pub status: &'static str,
    pub error: Option<String>,
}

impl Upstreams {
    /// Lazily connected channels to `urls` (healthy until a check says otherwise).
    pub fn new(urls: &[String], connect: impl Fn(&str) -> Result<Channel, String>) -> Result<Self, String> {
        let replicas = urls
            .iter()
            .map(|url| Ok(Replica { url: url.as_str().into(), channel: connect(url)?, healthy: AtomicBool::new(true) }))
            .collect::<Result<Vec<_>, String>>()?;
        if replicas.is_empty() {
            return Err("catcher_url: no catcher to forward to".into());
        }
        Ok(Self(Arc::new(Inner { replicas, next: AtomicUsize::new(0) })))
    }

    /// The replica for the next call.
    pub fn pick(&self) -> &Replica {
        let list = &self.0.replicas;
        let start = self.0.next.fetch_add(1, Ordering::Relaxed);
        (0..list.len())
            .map(|i| &list[(start + i) % list.len()])
            .find(|r| r.healthy.load(Ordering::Relaxed))
            .unwrap_or(&list[start % list.len()])
    }

    /// A call to `url` failed to reach it: leave it out until its health check passes.
    pub fn mark_down(&self, url: &str) {
        if let Some(r) = self.0.replicas.iter().find(|r| &*r.url == url)
            && r.healthy.swap(false, Ordering::Relaxed)
        {
            tracing::warn!(catcher = url, "catcher replica unreachable; calls go to the others");
        }
    }

    /// Checks every replica (side by side) and records what it found.
    pub async fn check(&self) -> Vec<Health> {
        let checks = self.0.replicas.iter().map(|r| async move {
            let (status, error) = crate::health::check(&r.channel).await;
            let up = error.is_none();
            if r.healthy.swap(up, Ordering::Relaxed) != up {
                if up {
                    tracing::info!(catcher = %r.url, "catcher replica serving again");
                } else {
                    tracing::warn!(catcher = %r.url, error = error.as_deref().unwrap_or(""), "catcher replica unhealthy; calls go to the others");
                }
            }
            Health { url: r.url.to_string(), status, error }
        });
        futures::future::join_all(checks).await
    }

    /// Checks every `every` until `stop`.
    pub async fn watch(self, every: Duration, stop: CancellationToken) {
        loop {
            self.check().await;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.0.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.replicas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Upstreams {
        let urls = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"].map(String::from);
        Upstreams::new(&urls, |u| {
            let endpoint = tonic::transport::Endpoint::from_shared(u.to_owned()).map_err(|e| e.to_string())?;
            Ok(endpoint.connect_lazy())
        })
        .unwrap()
    }

    #[tokio::test]
    async fn calls_go_round_the_healthy_replicas() {
        let up = three();
        let picked: Vec<Arc<str>> = (0..6).map(|_| up.pick().url.clone()).collect();
        assert_eq!(picked[..3], picked[3..], "round robin");
        assert_eq!(picked[..3].iter().collect::<std::collections::HashSet<_>>().len(), 3);
        up.mark_down("http://127.0.0.1:2");
        assert!((0..6).all(|_| &*up.pick().url != "http://127.0.0.1:2"), "a replica marked down is left out");
        for url in ["http://127.0.0.1:1", "http://127.0.0.1:3"] {
            up.mark_down(url);
        }
        // None healthy: still round all of them.
        let any: std::collections::HashSet<Arc<str>> = (0..3).map(|_| up.pick().url.clone()).collect();
        assert_eq!(any.len(), 3);
    }
}
