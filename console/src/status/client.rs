//! Talking to the catcher: one-shot fetches for the report, and the live view's `Watch` stream,
//! reopened with jittered exponential backoff whenever it breaks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgebackup_common::client::{PersonChannel, as_person};
use edgebackup_proto::v1::{
    self as pb, alert_service_client::AlertServiceClient, catalog_service_client::CatalogServiceClient,
    status_service_client::StatusServiceClient, watch_event::Kind,
};
use tokio::sync::mpsc;
use tonic::transport::Endpoint;

use super::model::Fleet;

/// How long a one-shot call may take before the catcher counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the status views could not get their data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a catcher URL like http://127.0.0.1:50051")]
    BadUrl(String),
    #[error("cannot reach the catcher at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the catcher at {url} refused the credential: {reason} (set CATCHER_TOKEN or --token-file)")]
    Refused { url: String, reason: String },
    #[error("the terminal failed: {0}")]
    Terminal(#[from] std::io::Error),
}

/// `host:port` gets `http://` in front; anything else must be an http(s) URL.
pub fn normalize_url(raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("http", raw));
    let rest = rest.trim_end_matches('/');
    let url = format!("{scheme}://{rest}");
    if !matches!(scheme, "http" | "https") || rest.is_empty() || Endpoint::from_shared(url.clone()).is_err() {
        return Err(Error::BadUrl(raw.to_owned()));
    }
    Ok(url)
}

/// The error and its causes on one line: tonic's outer errors say little ("transport error").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

fn status_reason(s: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut reason = format!("{:?}: {}", s.code(), s.message());
    if let Some(src) = s.source() {
        let more = describe(src);
        if !reason.contains(&more) {
            reason = format!("{reason}: {more}");
        }
    }
    reason
}

async fn connect(url: &str, token: Option<&str>) -> Result<StatusServiceClient<PersonChannel>, String> {
    channel(url, token).await.map(StatusServiceClient::new)
}

async fn channel(url: &str, token: Option<&str>) -> Result<PersonChannel, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| describe(&e))?
        .connect_timeout(Duration::from_secs(3))
        // Notice a vanished catcher on an idle stream too (a cable pulled, not only a closed socket).
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    as_person(endpoint.connect().await.map_err(|e| describe(&e))?, token)
}

/// Opens `Watch`; returns the stream once the catcher accepted it.
async fn open_watch(
    url: &str,
    token: Option<&str>,
    package_limit: u32,
) -> Result<tonic::Streaming<pb::WatchEvent>, String> {
    let mut client = connect(url, token).await?;
    let request = pb::WatchRequest { package_limit, journal_limit: 50 };
    client.watch(request).await.map(|r| r.into_inner()).map_err(|s| status_reason(&s))
}

/// Everything the one-shot report shows: the `Watch` snapshot (one consistent view) plus the
/// server's projections for the next 24 h and the catalog's coverage. The stream is dropped after its first message.
pub async fn fetch(url: &str, token: Option<&str>, package_limit: u32) -> Result<Fleet, Error> {
    let unreachable = |reason: String| {
        if reason.starts_with("Unauthenticated") || reason.starts_with("PermissionDenied") {
            Error::Refused { url: url.to_owned(), reason }
        } else {
            Error::Unreachable { url: url.to_owned(), reason }
        }
    };
    let work = async {
        let mut stream = open_watch(url, token, package_limit).await?;
        let first = stream.message().await.map_err(|s| status_reason(&s))?;
        let Some(event @ pb::WatchEvent { kind: Some(Kind::Snapshot(_)) }) = first else {
            return Err("the Watch stream did not start with a snapshot".to_owned());
        };
        let mut fleet = Fleet::new(package_limit as usize);
        fleet.apply(event);
        let ch = channel(url, token).await?;
        let projections = StatusServiceClient::new(ch.clone())
            .get_projections(projections_request())
            .await
            .map_err(|s| status_reason(&s))?;
        fleet.server_projections = Some(projections.into_inner());
        let points = AlertServiceClient::new(ch.clone())
            .get_recovery_points(pb::GetRecoveryPointsRequest::default())
            .await
            .map_err(|s| status_reason(&s))?;
        fleet.recovery_points = Some(points.into_inner());
        let mut catalog = CatalogServiceClient::new(ch);
        let coverage = catalog.get_coverage(pb::GetCoverageRequest::default()).await.map_err(|s| status_reason(&s))?;
        fleet.coverage = Some(coverage.into_inner());
        Ok(fleet)
    };
    match tokio::time::timeout(CALL_TIMEOUT, work).await {
        Ok(result) => result.map_err(unreachable),
        Err(_) => Err(unreachable(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))),
    }
}

/// The state of the live view's link to the catcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Opening the stream (`attempt` 0 is the first try).
    Connecting { attempt: u32 },
    /// The snapshot arrived; deltas follow.
    Live,
    /// The stream broke or could not be opened; the next try is at `retry_at` (epoch ms).
    Down { reason: String, attempt: u32, retry_at: i64 },
}

/// What the watcher tasks tell the live view.
#[derive(Debug)]
pub enum Feed {
    Event(Box<pb::WatchEvent>),
    Link(Link),
    /// The catcher's projections (over every package, not only those the view holds).
    Projections(Box<pb::GetProjectionsResponse>),
    /// The recovery points against their objectives.
    RecoveryPoints(Box<pb::GetRecoveryPointsResponse>),
}

/// How often the live view asks for projections again.
const PROJECTIONS_EVERY: Duration = Duration::from_secs(15);

/// The next 24 hours' projections, as the one-shot report asks for them.
fn projections_request() -> pb::GetProjectionsRequest {
    pb::GetProjectionsRequest { days: 1, ids_per_group: 1, ..Default::default() }
}

/// Asks for `GetProjections` and `GetRecoveryPoints` every [`PROJECTIONS_EVERY`] and forwards
/// the answers (a failed call is skipped: the Watch link shows the outage). Returns when the
/// receiver is gone.
pub async fn projections_forever(url: String, token: Option<String>, tx: mpsc::Sender<Feed>) {
    loop {
        if let Ok(ch) = channel(&url, token.as_deref()).await {
            if let Ok(r) = StatusServiceClient::new(ch.clone()).get_projections(projections_request()).await
                && tx.send(Feed::Projections(Box::new(r.into_inner()))).await.is_err()
            {
                return;
            }
            let ask = pb::GetRecoveryPointsRequest::default();
            if let Ok(r) = AlertServiceClient::new(ch).get_recovery_points(ask).await
                && tx.send(Feed::RecoveryPoints(Box::new(r.into_inner()))).await.is_err()
            {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PROJECTIONS_EVERY) => {}
            () = tx.closed() => return,
        }
    }
}

/// Delay before reconnect attempt `attempt` (1 = first retry): 0.5 s doubling to 15 s, spread by
/// ±20 % with `jitter` in [0, 1) so a fleet of terminals does not reconnect in lockstep.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    use edgebackup_common::backoff::{exponential, spread};
    spread(exponential(attempt, Duration::from_millis(500), Duration::from_secs(15)), 0.8, 1.2, jitter)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Jitter without a random number generator: the clock's sub-millisecond part.
fn jitter() -> f64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

/// Keeps one `Watch` stream open and forwards its events; reconnects with [`backoff`] when it
/// breaks. Returns when the receiver is gone.
pub async fn watch_forever(url: String, token: Option<String>, package_limit: u32, tx: mpsc::Sender<Feed>) {
    let mut attempt = 0u32;
    loop {
        if tx.send(Feed::Link(Link::Connecting { attempt })).await.is_err() {
            return;
        }
        let reason = match open_watch(&url, token.as_deref(), package_limit).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(event)) => {
                        if matches!(event.kind, Some(Kind::Snapshot(_))) {
                            attempt = 0;
                            if tx.send(Feed::Link(Link::Live)).await.is_err() {
                                return;
                            }
                        }
                        if tx.send(Feed::Event(Box::new(event))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break "the catcher closed the stream".to_owned(),
                    Err(s) => break status_reason(&s),
                }
            },
            Err(reason) => reason,
        };
        attempt += 1;
        let delay = backoff(attempt, jitter());
        let retry_at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(0);
        if tx.send(Feed::Link(Link::Down { reason, attempt, retry_at })).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_a_scheme_and_bad_ones_are_refused() {
        assert_eq!(normalize_url("127.0.0.1:50051").unwrap(), "http://127.0.0.1:50051");
        assert_eq!(normalize_url("https://catcher.example/").unwrap(), "https://catcher.example");
        assert!(matches!(normalize_url(""), Err(Error::BadUrl(_))));
        assert!(matches!(normalize_url("ftp://x"), Err(Error::BadUrl(_))));
        assert!(matches!(normalize_url("http://"), Err(Error::BadUrl(_))));
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_with_bounded_jitter() {
        assert_eq!(backoff(1, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(2, 0.5), Duration::from_millis(1000));
        assert_eq!(backoff(4, 0.5), Duration::from_millis(4000));
        assert_eq!(backoff(30, 0.5), Duration::from_millis(15_000), "capped");
        assert_eq!(backoff(1, 0.0), Duration::from_millis(400));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(600));
        assert_eq!(backoff(0, 0.5), Duration::from_millis(500), "attempt 0 acts like the first retry");
    }
}
