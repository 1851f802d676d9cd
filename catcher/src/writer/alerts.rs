//! Alerts: the evaluator's findings turned into raised and resolved alerts (each transition
//! queued once per channel that carries its kind, in the same transaction), acknowledgements,
//! and the delivery worker's outcomes.

use std::collections::{HashMap, HashSet};

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::{Error, Result};

/// Where notifications of which kinds go (a channel in the catcher's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    /// Empty: every kind.
    pub kinds: Vec<AlertKind>,
}

impl Route {
    fn carries(&self, a: &Alert) -> bool {
        // A failing channel's own alert goes to the others: it would only queue up behind
        // the notifications it cannot deliver.
        if a.kind == AlertKind::ChannelFailing && a.subject == self.channel {
            return false;
        }
        self.kinds.is_empty() || self.kinds.contains(&a.kind)
    }
}

/// One evaluation round: every condition holding now (of the kinds not disabled). An open
/// alert whose condition is not among them is resolved (a kind disabled since included); a new
/// condition raises one; an open one whose message changed gets the new message (without a
/// notification).
#[derive(Debug)]
pub struct EvaluateAlerts {
    pub conditions: Vec<Condition>,
    pub routes: Vec<Route>,
}

/// What a round changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluated {
    pub raised: u32,
    pub resolved: u32,
}

impl Op for EvaluateAlerts {
    type Output = Evaluated;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Evaluated> {
        let open = u.open_alerts().await?;
        let mut out = Evaluated::default();
        let holding: HashSet<(AlertKind, &str)> =
            self.conditions.iter().map(|c| (c.kind, c.subject.as_str())).collect();
        for mut a in open.iter().cloned() {
            if !holding.contains(&(a.kind, a.subject.as_str())) {
                a.resolved_at = Some(u.now);
                journal(u, &a, EventType::AlertResolved, "catcher");
                notify(u, &a, Transition::Resolved, &self.routes);
                u.put_alert(a);
                out.resolved += 1;
            }
        }
        // By key: a round holds a condition per source or folder and as many open alerts; a
        // search of one in the other was quadratic, inside the writer's transaction.
        let by_key: HashMap<(AlertKind, &str), &Alert> =
            open.iter().map(|a| ((a.kind, a.subject.as_str()), a)).collect();
        let mut seen = HashSet::new();
        for c in self.conditions {
            if !seen.insert((c.kind, c.subject.clone())) {
                continue;
            }
            match by_key.get(&(c.kind, c.subject.as_str())).copied() {
                Some(a) if a.message != c.message => u.put_alert(Alert { message: c.message, ..a.clone() }),
                Some(_) => {}
                None => {
                    let a = Alert {
                        id: uuid::Uuid::now_v7().to_string(),
                        kind: c.kind,
                        subject: c.subject,
                        source_id: c.source_id,
                        message: c.message,
                        raised_at: u.now,
                        resolved_at: None,
                        acknowledged_at: None,
                        acknowledged_by: String::new(),
                        note: String::new(),
                    };
                    journal(u, &a, EventType::AlertRaised, "catcher");
                    notify(u, &a, Transition::Raised, &self.routes);
                    u.put_alert(a);
                    out.raised += 1;
                }
            }
        }
        Ok(out)
    }
}

/// An operator saw an open alert.
#[derive(Debug)]
pub struct AcknowledgeAlert {
    pub id: String,
    pub actor: String,
    pub note: String,
}

impl Op for AcknowledgeAlert {
    type Output = Alert;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Alert> {
        let Some(mut a) = u.alert(&self.id).await? else {
            return Err(Error::not_found("alert", self.id));
        };
        if !a.is_open() {
            return Err(Error::FailedPrecondition(format!("alert {} is resolved", a.id)));
        }
        if a.acknowledged_at.is_some() {
            return Err(Error::FailedPrecondition(format!(
                "alert {} was already acknowledged by {}",
                a.id, a.acknowledged_by
            )));
        }
        a.acknowledged_at = Some(u.now);
        a.acknowledged_by = self.actor.clone();
        a.note = self.note;
        journal(u, &a, EventType::AlertAcknowledged, &self.actor);
        u.put_alert(a.clone());
        Ok(a)
    }
}

/// The delivery worker's outcomes.
#[derive(Debug)]
pub struct NotificationsAttempted(pub Vec<(String, Delivery)>);

impl Op for NotificationsAttempted {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        for (id, outcome) in self.0 {
            // Delivered once: an outcome for a notification no longer waiting changes nothing.
            let Some(mut n) = u.notification(&id).await? else { continue };
            if n.state != DeliveryState::Pending {
                continue;
            }
            n.attempts = n.attempts.saturating_add(1);
            match outcome {
                Delivery::Delivered => {
                    n.state = DeliveryState::Delivered;
                    n.delivered_at = Some(u.now);
                    n.last_error.clear();
                }
                Delivery::Retry { error, at } => {
                    n.next_attempt_at = at;
                    n.last_error = error;
                }
                Delivery::Abandoned { error } => {
                    n.state = DeliveryState::Abandoned;
                    n.last_error = error;
                }
            }
            u.put_notification(n);
        }
        Ok(())
    }
}

/// An operator tested a channel: journaled with the outcome.
#[derive(Debug)]
pub struct ChannelTested {
    pub channel: String,
    pub delivered: bool,
    pub message: String,
    pub actor: String,
}

impl Op for ChannelTested {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        u.journal(JournalEntry {
            details_json: serde_json::json!({
                "channel": self.channel,
                "delivered": self.delivered,
                "message": self.message,
            })
            .to_string(),
            error: if self.delivered { String::new() } else { self.message.clone() },
            ..JournalEntry::new(EventType::AlertChannelTested, self.actor.clone())
        });
        Ok(())
    }
}

fn journal(u: &mut Unit<'_>, a: &Alert, event: EventType, actor: &str) {
    let mut details = serde_json::json!({
        "alert_id": a.id,
        "kind": a.kind.as_str(),
        "subject": a.subject,
        "message": a.message,
    });
    // An RPO alert's folder goes under `folder`, which private views redact as a path; its
    // message (which names the folder, spaces and all) is left to the alert itself.
    if a.kind == AlertKind::RpoBreached
        && let Some(folder) = a.subject.strip_prefix(&format!("{}:", a.source_id))
    {
        details = serde_json::json!({
            "alert_id": a.id,
            "kind": a.kind.as_str(),
            "subject": a.source_id,
            "folder": folder,
        });
    }
    if event == EventType::AlertAcknowledged {
        details["note"] = a.note.clone().into();
    }
    u.journal(JournalEntry {
        source_id: a.source_id.clone(),
        status_before: if event == EventType::AlertRaised { String::new() } else { "open".to_owned() },
        status_after: if event == EventType::AlertResolved { "resolved" } else { "open" }.to_owned(),
        details_json: details.to_string(),
        ..JournalEntry::new(event, actor)
    });
}

fn notify(u: &mut Unit<'_>, a: &Alert, transition: Transition, routes: &[Route]) {
    for r in routes.iter().filter(|r| r.carries(a)) {
        u.put_notification(Notification {
            id: uuid::Uuid::now_v7().to_string(),
            alert_id: a.id.clone(),
            channel: r.channel.clone(),
            transition,
            state: DeliveryState::Pending,
            attempts: 0,
            created_at: u.now,
            next_attempt_at: u.now,
            delivered_at: None,
            last_error: String::new(),
        });
    }
}
