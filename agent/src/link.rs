//! The one bidirectional stream to the catcher: Hello/Welcome, the outbox replayed and
//! acknowledged, heartbeats, and commands in. Reconnects with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use edgebackup_proto::v1::{
    self as pb, agent_event::Kind, agent_message::Body as Out, agent_service_client::AgentServiceClient,
    catcher_message::Body as In,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::commands::Commands;
use crate::config::Config;
use crate::engine::SAFETY_KEY;
use crate::safety::SafetyStatus;
use crate::state::{State, StateError, now_ms};

/// Most events sent and not yet acknowledged; keeps a big replay from flooding the stream.
const WINDOW: u64 = 512;
/// Events read from the outbox per send round.
const BATCH: usize = 128;

pub const LINK_KEY: &str = "link";

/// What the agent knows of its connection, kept in the state for `agent status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub connected: bool,
    pub session_id: String,
    pub since_ms: i64,
    pub last_error: String,
    pub last_applied_seq: u64,
    /// The catcher replica the stream is (or was last) with.
    #[serde(default)]
    pub endpoint: String,
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("cannot reach the catcher: {0}")]
    Connect(String),
    #[error("stream: {0}")]
    Stream(#[from] tonic::Status),
    #[error("catcher closed the stream: {0}")]
    Closed(String),
    /// Not admitted now (too many agents connecting at once): come back after this.
    #[error("the catcher is admitting other agents first; retrying in {0:?}")]
    Deferred(Duration),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Runs until `stop`; returns after the current session ended.
/// Catcher replicas (`Config::endpoints`) are tried in turn: a stream that fails moves on to the
/// next one after the backoff, and stays with whichever answers.
pub async fn run(config: Arc<Config>, state: State, commands: Arc<Commands>, stop: CancellationToken) {
    let endpoints = config.endpoints();
    let mut at = 0usize;
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let endpoint = &endpoints[at % endpoints.len()];
        let result = session(&config, endpoint, &state, &commands, &stop).await;
        let status = match &result {
            Ok(()) => LinkStatus { last_error: "stopped".into(), endpoint: endpoint.clone(), ..Default::default() },
            Err(e) => {
                if matches!(e, LinkError::Deferred(_)) {
                    tracing::info!(reason = %e, catcher = %endpoint, "not admitted yet");
                } else {
                    tracing::warn!(error = %e, catcher = %endpoint, "catcher link down");
                }
                LinkStatus {
                    last_error: e.to_string(),
                    since_ms: now_ms(),
                    endpoint: endpoint.clone(),
                    ..Default::default()
                }
            }
        };
        let _ = state.set_meta(LINK_KEY, &status);
        if stop.is_cancelled() {
            return;
        }
        let delay = if let Err(LinkError::Deferred(wait)) = &result {
            // Admission: the same replica, after its wait and a random share of it (the agents
            // turned away together come back spread out, not in one wave).
            wait.mul_f64(1.0 + rand::random_range(0.0..=1.0))
        } else {
            failures = if started.elapsed() > Duration::from_secs(30) { 1 } else { failures + 1 };
            at += 1;
            backoff(failures, Duration::from_secs(config.max_backoff_secs))
        };
        let next = &endpoints[at % endpoints.len()];
        tracing::info!(retry_in_ms = delay.as_millis() as u64, catcher = %next, "reconnecting to the catcher");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The name of a status code a frame carries (`ABORTED`), or its number when unknown.
fn code_name(code: i32) -> String {
    pb::StatusCode::try_from(code)
        .map_or_else(|_| code.to_string(), |c| c.as_str_name().trim_start_matches("STATUS_CODE_").to_owned())
}

/// The wait a RESOURCE_EXHAUSTED stream error asks for (at most five minutes).
fn deferral(e: &pb::StreamError) -> Option<Duration> {
    if e.code != pb::StatusCode::ResourceExhausted as i32 {
        return None;
    }
    let d = e.retry_after?;
    let wait = Duration::try_from(d).ok()?;
    Some(wait.min(Duration::from_secs(300)))
}

/// Exponential backoff from 250 ms, capped, with full jitter in its upper half.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    use edgebackup_common::backoff::{exponential, spread};
    spread(exponential(failures, Duration::from_millis(250), max), 0.5, 1.0, rand::random_range(0.0..=1.0))
}

async fn session(
    config: &Config,
    endpoint: &str,
    state: &State,
    commands: &Arc<Commands>,
    stop: &CancellationToken,
) -> Result<(), LinkError> {
    let channel = crate::credential::channel_to(config, endpoint, false).await.map_err(LinkError::Connect)?;
    if let Some(c) =
        edgebackup_common::client::Credential::load(&crate::credential::dir(config)).map_err(LinkError::Connect)?
        && crate::credential::due_for_renewal(&c)
        && let Err(e) = crate::credential::renew(config, channel.clone()).await
    {
        tracing::warn!(error = %e, "renewing the credential failed; trying again at the next connection");
    }
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(BATCH * 2);
    let hello = pb::Hello {
        source_id: config.source_id.clone(),
        token: String::new(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        os: std::env::consts::OS.into(),
        capabilities: if config.mover {
            vec![pb::Capability::Backup as i32, pb::Capability::Mover as i32]
        } else {
            vec![pb::Capability::Backup as i32]
        },
        label: config.label.clone(),
    };
    tx.send(msg(Out::Hello(hello))).await.map_err(|_| LinkError::Closed("before Hello".into()))?;
    let mut inbound = AgentServiceClient::new(channel)
        .max_decoding_message_size(16 << 20)
        .connect(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let welcome = match inbound.message().await? {
        Some(pb::CatcherMessage { body: Some(In::Welcome(w)) }) => w,
        Some(pb::CatcherMessage { body: Some(In::Error(e)) }) => {
            if let Some(wait) = deferral(&e) {
                return Err(LinkError::Deferred(wait));
            }
            return Err(LinkError::Closed(format!("{}: {}", code_name(e.code), e.message)));
        }
        other => return Err(LinkError::Closed(format!("expected Welcome, got {other:?}"))),
    };
    let moved = state.renumber_if_never_welcomed(welcome.last_applied_seq)?;
    // Only news when the catcher already had events of this source (a replaced device).
    if moved > 0 && welcome.last_applied_seq > 0 {
        // Expected after a reinstall, a replaced device, or a source id used before (the
        // hostname is the default): nothing is lost, so it is news, not a warning.
        tracing::info!(
            moved,
            source = %config.source_id,
            last_applied_seq = welcome.last_applied_seq,
            "first contact from this state dir; the catcher already has events of this source \
             (an earlier install or device), so this one's queued events continue after them"
        );
    }
    // The catcher knows less than it acknowledged: it was restored from a backup. What was
    // backed up since is unknown to it (those events left the outbox): back it all up again.
    let acked = state.acked_seq()?;
    if welcome.last_applied_seq < acked && moved == 0 {
        tracing::error!(
            acked,
            last_applied_seq = welcome.last_applied_seq,
            "the catcher has lost events it acknowledged (its database was restored from a backup); \
             backing every file up again"
        );
        state.forget_backed_up(welcome.last_applied_seq)?;
        commands.pass_now();
    }
    // Everything at or below last_applied_seq is durable at the catcher.
    state.ensure_seq_above(welcome.last_applied_seq)?;
    state.ack(welcome.last_applied_seq)?;
    let status = LinkStatus {
        connected: true,
        session_id: welcome.session_id.clone(),
        since_ms: now_ms(),
        last_error: String::new(),
        last_applied_seq: welcome.last_applied_seq,
        endpoint: endpoint.to_owned(),
    };
    state.set_meta(LINK_KEY, &status)?;
    tracing::info!(catcher = %endpoint, session = %welcome.session_id, last_applied_seq = welcome.last_applied_seq, outbox = state.outbox_len()?, "connected to the catcher");
    reconcile_resume_list(state, &welcome.resume)?;
    if welcome.safety_state == pb::SafetyState::StoppedForSafety as i32 {
        adopt_stop(state)?;
    }
    let heartbeat = welcome
        .heartbeat_interval
        .map(|d| Duration::from_secs(d.seconds.max(1) as u64))
        .unwrap_or(Duration::from_secs(10));
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = welcome.last_applied_seq;
    let mut acked = welcome.last_applied_seq;
    let changed = state.outbox_changed.clone();
    loop {
        // Send what is pending, within the window.
        while sent - acked < WINDOW {
            let room = (WINDOW - (sent - acked)) as usize;
            let events = state.pending(sent, room.min(BATCH))?;
            let Some(last) = events.last().map(|e| e.seq) else { break };
            for e in events {
                tx.send(msg(Out::Event(e))).await.map_err(|_| LinkError::Closed("while sending".into()))?;
            }
            sent = last;
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = changed.notified() => {}
            () = commands.progress.changed() => {
                for p in commands.progress.take() {
                    tx.send(msg(Out::CommandProgress(p))).await.map_err(|_| LinkError::Closed("while sending".into()))?;
                }
            }
            _ = ticker.tick() => {
                let beat = pb::Heartbeat { sent_at: Some(std::time::SystemTime::now().into()) };
                tx.send(msg(Out::Heartbeat(beat))).await.map_err(|_| LinkError::Closed("while sending".into()))?;
            }
            m = inbound.message() => match m?.and_then(|m| m.body) {
                Some(In::Ack(a)) => {
                    state.ack(a.applied_seq)?;
                    acked = acked.max(a.applied_seq);
                    sent = sent.max(acked);
                }
                Some(In::EventRejected(r)) => {
                    tracing::warn!(seq = r.seq, code = code_name(r.code), message = %r.message, "the catcher rejected an event");
                }
                Some(In::Command(c)) => commands.dispatch(c),
                Some(In::RulesChanged(_)) => tracing::debug!("rule sets changed"),
                Some(In::Error(e)) => return Err(LinkError::Closed(format!("{}: {}", code_name(e.code), e.message))),
                Some(In::Welcome(_)) => {}
                None => return Err(LinkError::Closed("end of stream".into())),
            }
        }
    }
}

/// The catcher's unfinished packages for this source: interrupted ones are redone by the
/// engine's recovery; ones this agent has no record of (a lost state dir) are failed, since
/// their files will be packaged again under new ids.
fn reconcile_resume_list(state: &State, resume: &[pb::Package]) -> Result<(), LinkError> {
    for p in resume {
        if state.package(&p.package_id)?.is_none() {
            tracing::warn!(package = %p.package_id, "the catcher waits for a package this agent has no record of");
            state.push(Kind::Fail(pb::Fail {
                package_id: p.package_id.clone(),
                error: "the agent has no record of this package (state lost); its files are backed up again".into(),
                retryable: false,
            }))?;
        }
    }
    Ok(())
}

fn msg(body: Out) -> pb::AgentMessage {
    pb::AgentMessage { body: Some(body) }
}

/// The catcher has this source stopped for safety. With nothing left in the outbox (no resume
/// result on its way to clear it), a trip this state dir does not hold (replaced, or restored
/// from before the trip) is taken as its own: only an operator's Resume clears a trip, and
/// `agent status` then says what the catcher says.
fn adopt_stop(state: &State) -> Result<(), StateError> {
    let local: SafetyStatus = state.meta(SAFETY_KEY)?.unwrap_or_default();
    if local.stopped || state.outbox_len()? > 0 {
        return Ok(());
    }
    tracing::warn!("the catcher has this source stopped for safety: uploads held until an operator resumes");
    let reason = "stopped for safety at the catcher (an earlier trip no operator has resumed yet)".to_owned();
    state.set_meta(SAFETY_KEY, &SafetyStatus { stopped: true, reason, details: serde_json::Value::Null })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(30);
        assert!(backoff(1, max) <= Duration::from_millis(250));
        assert!(backoff(5, max) <= Duration::from_secs(4) && backoff(5, max) >= Duration::from_secs(2));
        assert!(backoff(40, max) <= max && backoff(40, max) >= max / 2);
    }
}
