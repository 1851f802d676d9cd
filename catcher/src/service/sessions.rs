//! Live agent sessions: at most one per source. A new Hello supersedes the old stream.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use edgebackup_proto::v1::{self as pb, catcher_message::Body};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Outbound frames of one stream. Boxed: the channel allocates its slots in blocks of 32, and
/// a catcher holds one channel per connected agent.
pub type Outbound = mpsc::Sender<Box<pb::CatcherMessage>>;

struct Entry {
    session_id: String,
    tx: Outbound,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, Entry>,
    /// Sources that connected since the command dispatcher last looked.
    fresh: HashSet<String>,
    /// Heartbeats since the last flush: source → heard at (ms).
    seen: HashMap<String, i64>,
}

/// The registry. Its lock is never held across an await.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `session_id` the source's live session, superseding any older one.
    pub fn register(&self, source_id: &str, session_id: &str, tx: Outbound, cancel: CancellationToken) {
        let old =
            self.lock().live.insert(source_id.to_owned(), Entry { session_id: session_id.to_owned(), tx, cancel });
        if let Some(old) = old {
            let _ = old.tx.try_send(Box::new(error_frame(
                pb::StatusCode::Aborted,
                "superseded by a newer session of the same source",
            )));
            old.cancel.cancel();
        }
    }

    /// Ends the source's live session, if any, telling the agent why. Answers whether there was one.
    pub fn close(&self, source_id: &str, code: pb::StatusCode, message: &str) -> bool {
        let Some(old) = self.lock().live.remove(source_id) else { return false };
        let _ = old.tx.try_send(Box::new(error_frame(code, message)));
        old.cancel.cancel();
        true
    }

    /// Marks the source's session ready for commands (after its Welcome went out).
    /// Closes every stream (this replica was presumed dead: its agents start over).
    pub fn close_all(&self, code: pb::StatusCode, message: &str) -> usize {
        let ids: Vec<String> = self.lock().live.keys().cloned().collect();
        ids.iter().filter(|id| self.close(id, code, message)).count()
    }

    pub fn mark_fresh(&self, source_id: &str) {
        self.lock().fresh.insert(source_id.to_owned());
    }

    pub fn take_fresh(&self) -> HashSet<String> {
        std::mem::take(&mut self.lock().fresh)
    }

    /// Removes the session if it is still the live one; true when it was.
    pub fn unregister(&self, source_id: &str, session_id: &str) -> bool {
        let mut inner = self.lock();
        if inner.live.get(source_id).is_some_and(|e| e.session_id == session_id) {
            inner.live.remove(source_id);
            return true;
        }
        false
    }

    pub fn is_current(&self, source_id: &str, session_id: &str) -> bool {
        self.lock().live.get(source_id).is_some_and(|e| e.session_id == session_id)
    }

    pub fn is_connected(&self, source_id: &str) -> bool {
        self.lock().live.contains_key(source_id)
    }

    /// Queues a frame to the source's live stream; false if it is not connected or is backed up.
    pub fn send(&self, source_id: &str, msg: pb::CatcherMessage) -> bool {
        let tx = self.lock().live.get(source_id).map(|e| e.tx.clone());
        tx.is_some_and(|tx| tx.try_send(Box::new(msg)).is_ok())
    }

    /// Queues a frame to every live stream.
    pub fn broadcast(&self, msg: &pb::CatcherMessage) {
        let txs: Vec<Outbound> = self.lock().live.values().map(|e| e.tx.clone()).collect();
        for tx in txs {
            let _ = tx.try_send(Box::new(msg.clone()));
        }
    }

    /// Notes a heartbeat. Written by `take_seen`'s caller in one statement every few seconds:
    /// a transaction per heartbeat would cost 1,000 commits a second at 10,000 agents.
    pub fn heard(&self, source_id: &str, at: i64) {
        let mut inner = self.lock();
        match inner.seen.get_mut(source_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                inner.seen.insert(source_id.to_owned(), at);
            }
        }
    }

    /// The heartbeats gathered since the last call.
    pub fn take_seen(&self) -> Vec<(String, i64)> {
        std::mem::take(&mut self.lock().seen).into_iter().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::workers::dispatch::Delivery for Sessions {
    fn any_connected(&self) -> bool {
        !self.is_empty()
    }

    fn is_connected(&self, source_id: &str) -> bool {
        Sessions::is_connected(self, source_id)
    }

    fn take_fresh(&self) -> HashSet<String> {
        Sessions::take_fresh(self)
    }

    fn send_command(&self, c: &crate::domain::Command, lease_until: crate::domain::Millis) -> bool {
        let mut wire = super::commands_wire::command(c);
        wire.lease_until = Some(super::convert::ts(lease_until));
        self.send(&c.source_id, pb::CatcherMessage { body: Some(Body::Command(wire)) })
    }
}

/// A StreamError frame.
pub fn error_frame(code: pb::StatusCode, message: &str) -> pb::CatcherMessage {
    let e = pb::StreamError { code: code as i32, message: message.to_owned(), retry_after: None };
    pb::CatcherMessage { body: Some(Body::Error(e)) }
}

/// The answer to a Hello that is not admitted now: come back after `wait` (and a random share).
pub fn deferred_frame(wait: std::time::Duration) -> pb::CatcherMessage {
    let e = pb::StreamError {
        code: pb::StatusCode::ResourceExhausted as i32,
        message: format!("too many agents connecting at once; retry in {} ms", wait.as_millis()),
        retry_after: Some(prost_types::Duration::try_from(wait).unwrap_or_default()),
    };
    pb::CatcherMessage { body: Some(Body::Error(e)) }
}
