//! gRPC services: the only layer that knows protobuf. Handlers validate input, call the store
//! (reads) or the writer (writes), and convert the answer. Errors become `Status` in one place
//! (`impl From<Error> for Status`).

pub mod access;
pub mod admission;
pub mod alerts;
pub mod catalog;
pub mod commands_wire;
pub mod convert;
pub mod journal;
pub mod packages;
pub mod policy;
pub mod redact;
pub mod sessions;
pub mod sources;
pub mod status;
pub mod subscribers;
pub mod validate;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use self::sessions::Sessions;
use crate::config::Config;
use crate::domain::Millis;
use crate::error::Result;
use crate::store::Store;
use crate::watch::Hub;
use crate::writer::Writer;

/// Everything the handlers share.
pub struct State {
    pub config: Config,
    pub store: Store,
    pub writer: Writer,
    pub hub: Hub,
    pub sessions: Arc<Sessions>,
    /// Wakes the command dispatcher.
    pub commands_due: Arc<Notify>,
    /// Wakes the pending changes' applier (a change was held).
    pub pending_due: Arc<Notify>,
    pub started_at: Millis,
    /// Fires when the catcher begins shutting down; long-lived streams end.
    pub shutdown: CancellationToken,
    pub status_cache: crate::status::StatusCache,
    /// Notification channels, opened (for ListChannels and TestChannel).
    pub channels: Arc<crate::notify::Channels>,
    /// How notifications name this catcher.
    pub catcher_name: String,
    /// Signs agents' credentials.
    pub authority: Arc<crate::auth::ca::Authority>,
    /// Keys the tags of redacted paths (`redact.rs`).
    pub redaction_key: [u8; 32],
    /// What live-view subscribers may hold.
    pub subscribers: Arc<subscribers::Subscribers>,
    /// Who callers are; ends revoked people's open calls.
    pub identities: Arc<crate::auth::Identities>,
    /// This catcher replica.
    pub replica: Arc<str>,
    /// How many agents may say Hello, and devices enroll, per second.
    pub admission: Arc<admission::Admission>,
}

impl State {
    /// How `who` sees paths, URIs and command arguments: redacted for viewers by default.
    pub fn redactor(&self, who: &crate::auth::Principal) -> Option<redact::Redactor> {
        redact::Redactor::for_caller(&self.redaction_key, who)
    }

    /// The fleet status, from the cache unless a write committed since (or it is a second old).
    pub async fn status(&self) -> crate::error::Result<Arc<crate::domain::FleetStatus>> {
        let generation = self.writer.generation();
        self.status_cache.get(&self.store, self.started_at, generation).await
    }
}

/// Shared handler state.
pub type Shared = Arc<State>;

/// Wraps a handler result as a tonic response.
pub fn respond<T>(r: Result<T>) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    r.map(tonic::Response::new).map_err(Into::into)
}

/// Like `respond`, with the answer redacted for a viewer who sees the fleet privately.
pub fn respond_as<T: redact::Redact>(
    state: &State,
    who: &crate::auth::Principal,
    r: Result<T>,
) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    let r = r.map(|mut answer| {
        if let Some(redactor) = state.redactor(who) {
            answer.redact(&redactor);
        }
        answer
    });
    respond(r)
}

/// The caller as the auth layer found it.
pub fn caller<T>(r: &tonic::Request<T>) -> crate::auth::Principal {
    r.extensions().get::<crate::auth::Principal>().cloned().unwrap_or(crate::auth::Principal::Anonymous)
}

/// What an agent is about to touch of `source_id`'s data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touching {
    Reading,
    Writing,
}

/// An agent speaks for its own source only; it may also read a source whose restore it was
/// asked to run (an open RESTORE command leased to it names that source). People pass here
/// (their roles are checked by the auth layer).
pub async fn scope(state: &State, who: &crate::auth::Principal, source_id: &str, touching: Touching) -> Result<()> {
    let Some(own) = who.agent_source() else { return Ok(()) };
    if own == source_id {
        return Ok(());
    }
    if touching == Touching::Reading {
        let filter = crate::store::CommandFilter {
            source_id: Some(own.to_owned()),
            open: Some(true),
            kind: Some(crate::domain::CommandKind::Restore),
            ..Default::default()
        };
        let restores = state.store.commands(&filter, 100).await?;
        let asked =
            restores.iter().any(|c| matches!(&c.args, crate::domain::CommandArgs::Restore(a) if a.source == source_id));
        if asked {
            return Ok(());
        }
    }
    Err(crate::error::Error::PermissionDenied(format!(
        "source_id: this agent's credential speaks for {own}, not {source_id}"
    )))
}
