//! A reconnect storm: enrolled agents hold idle streams to a catcher; the catcher is killed and
//! started again on the same port and database; every agent reconnects at once, as the real one
//! does (a jittered backoff from 250 ms while it is down; when not admitted yet, its
//! `retry_after` plus a random share of it), and the time until all are welcomed again is
//! measured. Failures once the catcher serves again are errors; connections refused while it
//! was down are not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgebackup_common::client::{self, Credential};
use edgebackup_proto::v1 as pb;
use pb::{agent_message::Body, agent_service_client::AgentServiceClient, catcher_message::Body as In};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::hist::Hist;

/// Counters shared by every agent of the storm.
#[derive(Default)]
pub struct StormStats {
    /// Agents welcomed since the start (before the restart).
    pub welcomed: AtomicU64,
    /// Agents welcomed again after the restart.
    pub rewelcomed: AtomicU64,
    /// Hellos answered "not yet" (admission).
    pub deferred: AtomicU64,
    /// Attempts that failed while the catcher was down (expected).
    pub refused_while_down: AtomicU64,
    /// Attempts that failed once the catcher served again.
    pub errors: AtomicU64,
    /// Per agent: restart → welcomed again.
    pub rejoin: Mutex<Hist>,
    pub messages: Mutex<Vec<String>>,
}

impl StormStats {
    fn error(&self, what: String) {
        crate::count_error(&self.errors, &self.messages, what);
    }
}

/// When the catcher was killed, and whether the new one serves yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phase {
    pub killed_at: Option<Instant>,
    pub serving: bool,
}

/// Enrolls `source_id` through the admin's token, as a device does: an enrollment token from
/// AccessService (`url` is the catcher's plaintext loopback address), a key and certificate
/// request made here, the catcher verified by its CA's fingerprint; retried while the catcher
/// turns enrollments away (`enroll_rate_per_sec`).
pub async fn enroll(url: &str, admin_token: Option<&str>, source_id: &str) -> Result<Credential, String> {
    let plain = tonic::transport::Channel::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let plain = client::as_person(plain, admin_token)?;
    let request = pb::CreateEnrollmentTokenRequest { source_id: source_id.into(), ..Default::default() };
    let token = pb::access_service_client::AccessServiceClient::new(plain)
        .create_enrollment_token(request)
        .await
        .map_err(|s| format!("enrollment token: {}", s.message()))?
        .into_inner();
    let tls_url = url.replacen("http://", "https://", 1);
    for _ in 0..600 {
        match client::enroll(&tls_url, &token.token, Some(&token.ca_fingerprint)).await {
            Ok((cred, _)) => return Ok(cred),
            Err(e) if e.contains("too many devices enrolling") => {
                tokio::time::sleep(Duration::from_millis(100 + rand::random_range(0..200))).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err("enrollment deferred for a minute".into())
}

/// Holds agent `source_id`'s stream with `cred` until `stop`, reconnecting whenever it breaks.
pub async fn hold(
    source_id: String,
    tls_url: String,
    cred: Credential,
    stats: &StormStats,
    phase: watch::Receiver<Phase>,
    mut stop: watch::Receiver<bool>,
) {
    let tls = match client::tls_config(client::Trust::Ca(&cred.ca_pem), Some(&cred)) {
        Ok(t) => t,
        Err(e) => return stats.error(format!("{source_id}: tls: {e}")),
    };
    let mut attempt = 0u32;
    let mut rejoined = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match session(&source_id, &tls_url, &tls, &mut stop).await {
            Session::Welcomed(ended) => {
                attempt = 0;
                let p = *phase.borrow();
                // Only a stream of the restarted catcher breaking is an error (one of the killed
                // process's may notice its end late).
                let after_restart = p.killed_at.is_some();
                match p.killed_at {
                    None => {
                        stats.welcomed.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(at) if !rejoined => {
                        rejoined = true;
                        stats.rewelcomed.fetch_add(1, Ordering::Relaxed);
                        stats.rejoin.lock().unwrap_or_else(|e| e.into_inner()).record(at.elapsed());
                    }
                    Some(_) => {}
                }
                // Held until it broke (the restart) or the run ended.
                if let Err(e) = ended.await
                    && !*stop.borrow()
                    && after_restart
                {
                    stats.error(format!("{source_id}: stream broke after the restart: {e}"));
                }
                Duration::ZERO
            }
            Session::Deferred(wait) => {
                stats.deferred.fetch_add(1, Ordering::Relaxed);
                wait.mul_f64(1.0 + rand::random_range(0.0..=1.0))
            }
            Session::Failed(e) => {
                if phase.borrow().serving {
                    stats.error(format!("{source_id}: {e}"));
                } else {
                    stats.refused_while_down.fetch_add(1, Ordering::Relaxed);
                }
                attempt += 1;
                let base = edgebackup_common::backoff::exponential(
                    attempt,
                    Duration::from_millis(250),
                    Duration::from_secs(5),
                );
                edgebackup_common::backoff::spread(base, 0.5, 1.0, rand::random_range(0.0..=1.0))
            }
            Session::Stopped => return,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

enum Session {
    /// Welcomed; the future ends when the stream does.
    Welcomed(std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>),
    Deferred(Duration),
    Failed(String),
    Stopped,
}

async fn session(
    source_id: &str,
    tls_url: &str,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    stop: &mut watch::Receiver<bool>,
) -> Session {
    let ch = match client::channel(tls_url, Some(tls.clone()), false).await {
        Ok(ch) => ch,
        Err(e) => return Session::Failed(format!("connect: {e}")),
    };
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(8);
    let hello = crate::agents::hello(source_id, source_id);
    let _ = tx.send(pb::AgentMessage { body: Some(Body::Hello(hello)) }).await;
    let mut inbound = match AgentServiceClient::new(ch).connect(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Session::Failed(format!("Connect: {}", s.message())),
    };
    let first = tokio::select! {
        m = inbound.message() => m,
        _ = stop.changed() => return Session::Stopped,
    };
    let welcome = match first {
        Ok(Some(pb::CatcherMessage { body: Some(In::Welcome(w)) })) => w,
        Ok(Some(pb::CatcherMessage { body: Some(In::Error(e)) })) => {
            if e.code == pb::StatusCode::ResourceExhausted as i32
                && let Some(wait) = e.retry_after.and_then(|d| Duration::try_from(d).ok())
            {
                return Session::Deferred(wait);
            }
            return Session::Failed(format!("stream error {}: {}", e.code, e.message));
        }
        Ok(other) => return Session::Failed(format!("expected Welcome, got {other:?}")),
        Err(s) => return Session::Failed(format!("before Welcome: {}", s.message())),
    };
    let beat =
        welcome.heartbeat_interval.map_or(Duration::from_secs(10), |d| Duration::from_secs(d.seconds.max(1) as u64));
    let mut stop = stop.clone();
    Session::Welcomed(Box::pin(async move {
        let mut ticker = tokio::time::interval(beat.mul_f64(0.5 + rand::random_range(0.0..0.5)));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let beat = pb::AgentMessage { body: Some(Body::Heartbeat(pb::Heartbeat { sent_at: None })) };
                    if tx.send(beat).await.is_err() {
                        return Err("the stream closed".into());
                    }
                }
                m = inbound.message() => match m {
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("the catcher ended the stream".into()),
                    Err(s) => return Err(s.message().to_owned()),
                },
                _ = stop.changed() => return Ok(()),
            }
        }
    }))
}
