//! Replicas sharing one database. Each beats every few seconds (`workers::lease`); the beat
//! takes, renews or gives up the singleton lease, and the holder forgets replicas that stopped
//! beating (their agents' sources are marked disconnected) and prunes the changes feed.

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::Result;

/// Most sources of gone replicas marked disconnected per beat (the next beat does the rest).
const GONE_PER_BEAT: u64 = 1000;

/// This replica is alive; it takes or renews the lease when it can (or gives it up).
#[derive(Debug)]
pub struct Beat {
    /// Where this replica serves (shown to operators).
    pub address: String,
    pub started_at: Millis,
    /// How long a taken or renewed lease lasts.
    pub ttl_ms: Millis,
    /// How long the changes feed keeps its rows.
    pub keep_changes_ms: Millis,
    /// Give the lease up and stop beating (shutting down).
    pub release: bool,
    /// This replica beat before: finding its row gone means it was presumed dead.
    pub beaten: bool,
}

/// What a beat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatOutcome {
    /// The lease's term while this replica holds it.
    pub term: Option<u64>,
    /// Who holds the lease (empty: nobody).
    pub holder: String,
    /// This replica was presumed dead (silent past the timeout, e.g. frozen) and its agents
    /// marked disconnected: its streams must start over.
    pub forgotten: bool,
}

impl Op for Beat {
    type Output = BeatOutcome;
    const URGENT: bool = true;

    async fn apply(self, u: &mut Unit<'_>) -> Result<BeatOutcome> {
        let now = u.cluster_clock().await?;
        let me = u.replica.to_string();
        let forgotten = self.beaten && !self.release && !u.replicas().await?.iter().any(|r| r.replica_id == me);
        let idle = |holder: String| BeatOutcome { term: None, holder, forgotten };
        if self.release {
            // Stopping: a restore tool, or an operator, sees no catcher running on it.
            u.forget_replicas(vec![me.clone()]);
        } else {
            u.beat(Replica {
                replica_id: me.clone(),
                address: self.address,
                started_at: self.started_at,
                heartbeat_at: now,
            });
        }
        let term = match u.lease().await? {
            Some(l) if l.holder == me && l.expires_at > now => {
                let term = l.term;
                if self.release {
                    u.put_lease(Lease { expires_at: now, ..l });
                    return Ok(idle(String::new()));
                }
                u.put_lease(Lease { expires_at: now + self.ttl_ms, ..l });
                term
            }
            Some(l) if l.expires_at > now => return Ok(idle(l.holder)),
            _ if self.release => return Ok(idle(String::new())),
            stale => {
                let term = stale.map_or(1, |l| l.term + 1);
                u.put_lease(Lease { holder: me.clone(), term, acquired_at: now, expires_at: now + self.ttl_ms });
                term
            }
        };
        // The holder's housekeeping: replicas that stopped beating, and the feed's old rows.
        let live = u.live_replicas().await?;
        let gone: Vec<String> =
            u.replicas().await?.into_iter().map(|r| r.replica_id).filter(|r| !live.contains(r)).collect();
        let stranded = u.sources_connected_to(&gone, GONE_PER_BEAT).await?;
        let done = (stranded.len() as u64) < GONE_PER_BEAT;
        for s in stranded {
            let why = format!("its catcher replica {} stopped answering", s.replica.as_deref().unwrap_or("?"));
            super::sources::disconnected(u, &s.source_id, &why).await?;
        }
        if done {
            u.forget_replicas(gone);
        }
        u.prune_changes(now - self.keep_changes_ms);
        Ok(BeatOutcome { term: Some(term), holder: me, forgotten })
    }
}
