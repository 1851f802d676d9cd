//! Applies pending changes when their protection delay is over (each applies whole or fails,
//! changing nothing), sleeping until the next one is due or a new one is held.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::lease::Leadership;
use crate::domain::{Spelling, now_ms};
use crate::rules::RuleSet;
use crate::writer::{ApplyDue, Writer};

/// Longest sleep between looks (a change held by another catcher on the same database is seen
/// within this).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs until `stop`; `rules_changed` hears the rule sets in force after a rule change applied.
pub async fn run(
    writer: Writer,
    lead: Leadership,
    wake: Arc<Notify>,
    rules_changed: impl Fn(&[RuleSet]) + Send + 'static,
    stop: CancellationToken,
) {
    loop {
        let Some(fenced) = lead.writer(&writer) else {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                () = stop.cancelled() => return,
            }
        };
        let sleep = match fenced.submit(ApplyDue).await {
            Ok(out) => {
                for c in &out.resolved {
                    tracing::info!(change_id = c.change_id, state = c.state.as_str(), outcome = %c.outcome, "pending change resolved");
                }
                if let Some(rules) = &out.rule_sets {
                    rules_changed(rules);
                }
                let until_due = out.next_due.map(|t| t.saturating_sub(now_ms()).max(0));
                until_due.map_or(MAX_SLEEP, |ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_SLEEP))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not apply due pending changes; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}
