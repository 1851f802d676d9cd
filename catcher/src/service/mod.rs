//! gRPC services: the only layer that knows protobuf. Handlers validate input, call the store
//! (reads) or the writer (writes), and convert the answer. Errors become `Status` in one place
//! (`impl From<Error> for Status`).

pub mod catalog;
pub mod commands_wire;
pub mod convert;
pub mod journal;
pub mod packages;
pub mod policy;
pub mod sessions;
pub mod sources;
pub mod status;
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
    pub started_at: Millis,
    /// Fires when the catcher begins shutting down; long-lived streams end.
    pub shutdown: CancellationToken,
    pub status_cache: crate::status::StatusCache,
}

impl State {
    /// The fleet status, from the cache unless a write committed since (or it is a second old).
    pub async fn status(&self) -> crate::error::Result<Arc<crate::domain::FleetStatus>> {
        let commits = self.writer.commits();
        self.status_cache.get(&self.store, self.started_at, commits).await
    }
}

/// Shared handler state.
pub type Shared = Arc<State>;

/// Wraps a handler result as a tonic response.
pub fn respond<T>(r: Result<T>) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    r.map(tonic::Response::new).map_err(Into::into)
}
