//! gRPC services: the only layer that knows protobuf. Handlers validate input, call the store
//! (reads) or the writer (writes), and convert the answer. Errors become `Status` in one place
//! (`impl From<Error> for Status`).

pub mod convert;
pub mod journal;
pub mod packages;
pub mod policy;
pub mod sources;
pub mod status;
pub mod validate;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::Millis;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::stream::sessions::Sessions;
use crate::watch::Hub;
use crate::writer::{Output, Writer};

/// Everything the handlers share.
pub struct State {
    pub config: Config,
    pub store: Store,
    pub writer: Writer,
    pub hub: Hub,
    pub sessions: Sessions,
    /// Wakes the command dispatcher.
    pub commands_due: Arc<Notify>,
    pub started_at: Millis,
    /// Fires when the catcher begins shutting down; long-lived streams end.
    pub shutdown: CancellationToken,
    pub status_cache: crate::status::StatusCache,
}

impl State {
    /// The fleet status, from the cache unless a write committed since (or it is a second old).
    pub async fn status(&self) -> crate::error::Result<Arc<crate::status::FleetStatus>> {
        let commits = self.writer.commits();
        self.status_cache.get(&self.store, self.started_at, commits).await
    }
}

/// Shared handler state.
pub type Shared = Arc<State>;

/// Unwraps the writer output an op is known to produce.
macro_rules! expect_output {
    ($result:expr, $pattern:pat => $value:expr) => {
        match $result {
            $pattern => Ok($value),
            other => Err($crate::service::unexpected(other)),
        }
    };
}
pub(crate) use expect_output;

pub(crate) fn unexpected(o: Output) -> Error {
    Error::Corrupt(format!("writer answered with an unexpected output {o:?}"))
}

/// Wraps a handler result as a tonic response.
pub fn respond<T>(r: Result<T>) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    r.map(tonic::Response::new).map_err(Into::into)
}
