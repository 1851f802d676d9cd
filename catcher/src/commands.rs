//! Command dispatcher: delivers stored commands to connected agents and re-sends them when
//! their lease runs out or the agent reconnects, until a result arrives.

use std::sync::Arc;
use std::time::Duration;

use edgebackup_proto::v1::{self as pb, catcher_message::Body};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{CommandState, now_ms};
use crate::error::Result;
use crate::service::{Shared, convert};
use crate::writer::Op;

/// Also wakes up this often, so expired leases are noticed without a nudge.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(state: Shared, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
            () = stop.cancelled() => return,
        }
        if let Err(e) = dispatch(&state).await {
            tracing::warn!(error = %e, "command dispatch failed; retrying");
        }
    }
}

async fn dispatch(state: &Shared) -> Result<()> {
    let fresh = state.sessions.take_fresh();
    if state.sessions.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let lease_ms = i64::try_from(state.config.command_lease_secs).unwrap_or(60) * 1000;
    let due: Vec<_> = state
        .store
        .open_commands(1000)
        .await?
        .into_iter()
        .filter(|c| {
            c.state == CommandState::Pending || c.lease_until.is_none_or(|l| l <= now) || fresh.contains(&c.source_id)
        })
        .filter(|c| state.sessions.is_connected(&c.source_id))
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    // Claim the lease before delivering: a result that arrives at once then finds the command
    // leased, never pending; a delivery that fails is retried when the lease runs out.
    let lease_until = now + lease_ms;
    state
        .writer
        .submit(Op::CommandsSent { ids: due.iter().map(|c| c.command_id.clone()).collect(), lease_until })
        .await?;
    for c in &due {
        let mut wire = convert::command(c);
        wire.lease_until = Some(convert::ts(lease_until));
        if !state.sessions.send(&c.source_id, pb::CatcherMessage { body: Some(Body::Command(wire)) }) {
            tracing::debug!(command_id = c.command_id, "agent went away before delivery; the lease will expire");
        }
    }
    tracing::debug!(count = due.len(), "commands sent");
    Ok(())
}
