//! Delivers queued notifications (the `notifications` table is the durable queue: a catcher
//! killed between an alert's raise and its delivery delivers it after the restart). Each
//! attempt's outcome is recorded at once: a failure is retried with backoff; one older than
//! `max_age` is given up (kept for the record). A receiver may see a notification twice only
//! if the catcher dies between its answer and the record; the id rides along to drop a repeat.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::*;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::notify::{Channels, Message};
use crate::store::Store;
use crate::writer::{NotificationsAttempted, Writer};

/// Longest sleep between looks at the queue.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Notifications taken per look.
const BATCH: u64 = 200;
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub struct Deliverer {
    pub store: Store,
    pub writer: Writer,
    pub channels: Arc<Channels>,
    pub metrics: Metrics,
    /// First retry after this; doubled per attempt up to an hour.
    pub retry_base: Duration,
    pub max_age_ms: Millis,
    /// Names the catcher in messages.
    pub catcher: String,
    pub wake: Arc<Notify>,
    /// Delivers only while this replica holds the singleton lease.
    pub lead: super::lease::Leadership,
}

impl Deliverer {
    pub async fn run(self, stop: CancellationToken) {
        // Channels whose last attempt failed wait until then, all their notifications with them:
        // a receiver that is down gets one attempt per backoff step, not one per waiting row.
        let mut paused: HashMap<String, Millis> = HashMap::new();
        loop {
            let sleep = match self.deliver_due(&mut paused).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "could not deliver notifications; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Delivers what is due (channels side by side, each in the order its notifications were
    /// queued, one at a time; a failure pauses the channel until its retry); answers how long
    /// until the next is due.
    pub async fn deliver_due(&self, paused: &mut HashMap<String, Millis>) -> Result<Duration> {
        // The lease holder alone delivers (a replica that loses it mid-round has its records
        // refused: a notification is then sent at most once more, by the new holder).
        let Some(writer) = self.lead.writer(&self.writer) else { return Ok(Duration::from_secs(1)) };
        let writer = &writer;
        let now = now_ms();
        paused.retain(|_, until| *until > now);
        let skip: Vec<String> = paused.keys().cloned().collect();
        let due = self.store.due_notifications(now, &skip, BATCH).await?;
        let mut by_channel: BTreeMap<String, Vec<Notification>> = BTreeMap::new();
        for n in due {
            by_channel.entry(n.channel.clone()).or_default().push(n);
        }
        let mut alerts: HashMap<String, Alert> = HashMap::new();
        for n in by_channel.values().flatten() {
            if !alerts.contains_key(&n.alert_id)
                && let Some(a) = self.store.alert(&n.alert_id).await?
            {
                alerts.insert(n.alert_id.clone(), a);
            }
        }
        let alerts = &alerts;
        let rounds = by_channel.into_iter().map(|(channel, list)| async move {
            for n in list {
                let outcome = self.attempt(&channel, &n, alerts.get(&n.alert_id)).await;
                let retry_at = match &outcome {
                    Delivery::Retry { at, .. } => Some(*at),
                    _ => None,
                };
                if let Err(e) = writer.submit(NotificationsAttempted(vec![(n.id.clone(), outcome)])).await {
                    tracing::warn!(error = %e, notification = %n.id, "could not record a delivery");
                    return Some((channel, now_ms() + 1000));
                }
                if let Some(at) = retry_at {
                    // The rest of this channel waits with it, in order.
                    return Some((channel, at));
                }
            }
            None
        });
        for (channel, until) in futures::future::join_all(rounds).await.into_iter().flatten() {
            paused.insert(channel, until);
        }
        let skip: Vec<String> = paused.keys().cloned().collect();
        let next = self.store.next_notification_at(&skip).await?.into_iter().chain(paused.values().copied()).min();
        Ok(next.map_or(MAX_SLEEP, |at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0))
                .clamp(Duration::from_millis(50), MAX_SLEEP)
        }))
    }

    async fn attempt(&self, channel: &str, n: &Notification, alert: Option<&Alert>) -> Delivery {
        let Some(ch) = self.channels.get(channel) else {
            return Delivery::Abandoned { error: format!("channel {channel:?} is no longer configured") };
        };
        let Some(alert) = alert else {
            return Delivery::Abandoned { error: format!("alert {} is not in the database", n.alert_id) };
        };
        let m = Message {
            id: n.id.clone(),
            event: n.transition.as_str(),
            alert: alert.clone(),
            catcher: self.catcher.clone(),
        };
        match ch.send(&m).await {
            Ok(answer) => {
                tracing::info!(channel, notification = %n.id, alert = %alert.id, kind = alert.kind.as_str(), event = m.event, %answer, "notification delivered");
                self.metrics.notification(channel, true);
                Delivery::Delivered
            }
            Err(error) => {
                self.metrics.notification(channel, false);
                let now = now_ms();
                if now.saturating_sub(n.created_at) > self.max_age_ms {
                    tracing::error!(channel, notification = %n.id, %error, "notification given up: too old");
                    return Delivery::Abandoned { error };
                }
                let wait =
                    edgebackup_common::backoff::exponential(n.attempts.saturating_add(1), self.retry_base, MAX_BACKOFF);
                tracing::warn!(channel, notification = %n.id, attempts = n.attempts + 1, retry_in = ?wait, %error, "notification not delivered");
                Delivery::Retry { error, at: now + Millis::try_from(wait.as_millis()).unwrap_or(Millis::MAX) }
            }
        }
    }
}
