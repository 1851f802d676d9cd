//! The alert evaluator: every `alert_interval_secs` it reads what holds now (recovery points,
//! sources, failed packages and copies, the newest drill, the journal's chain, pending
//! changes, channels' deliveries) and hands the conditions to the writer, which raises what is
//! new and resolves what cleared, queueing their notifications in the same transaction. A round
//! whose reads fail changes nothing (it never resolves an alert for want of an answer).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::rpo;
use crate::domain::*;
use crate::error::Result;
use crate::journal::Verifier;
use crate::metrics::Metrics;
use crate::rules::{PendingKind, span};
use crate::store::Store;
use crate::writer::{EvaluateAlerts, Route, Writer};

/// What the evaluator is told by the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    pub agent_silent_ms: Millis,
    pub move_failures: u32,
    pub channel_failures: u32,
    pub disabled: Vec<AlertKind>,
    pub journal_verify_every: Duration,
    pub rpo_by_source: BTreeMap<String, u64>,
    pub routes: Vec<Route>,
    /// Per-source metrics (`metrics_per_source`).
    pub per_source_metrics: bool,
}

pub struct Evaluator {
    pub store: Store,
    pub writer: Writer,
    pub settings: Settings,
    pub tally: Arc<RpoTally>,
    pub metrics: Metrics,
    /// Rings when the delivery worker should look (notifications were queued).
    pub deliver: Arc<Notify>,
    /// Records only while this replica holds the singleton lease.
    pub lead: super::lease::Leadership,
    verifier: Verifier,
    broken: Option<(u64, String)>,
    full_check_at: Instant,
}

impl Evaluator {
    pub fn new(
        store: Store,
        writer: Writer,
        settings: Settings,
        tally: Arc<RpoTally>,
        metrics: Metrics,
        deliver: Arc<Notify>,
        lead: super::lease::Leadership,
    ) -> Self {
        Self {
            store,
            writer,
            settings,
            tally,
            metrics,
            deliver,
            lead,
            verifier: Verifier::default(),
            broken: None,
            full_check_at: Instant::now(),
        }
    }

    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "alert evaluation failed; nothing changed, trying again next round");
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One evaluation.
    pub async fn round(&mut self) -> Result<()> {
        let now = now_ms();
        let kinds: Vec<AlertKind> =
            AlertKind::ALL.iter().copied().filter(|k| !self.settings.disabled.contains(k)).collect();
        let mut found = Vec::new();
        let on = |k: AlertKind| kinds.contains(&k);
        // Read once a round: the silence and brake checks and the per-source metrics share it.
        let sources = self.store.sources().await?;
        if on(AlertKind::RpoBreached) || self.settings.per_source_metrics {
            let views = rpo::views(&self.store, &self.settings.rpo_by_source, &sources, None, now).await?;
            if self.tally.set(&views) {
                // The status shows the tally.
                self.writer.status_changed();
            }
            self.metrics.set_rpo(&views);
            if self.settings.per_source_metrics {
                let connected: Vec<(String, bool)> =
                    sources.iter().map(|s| (s.source_id.clone(), s.connected)).collect();
                self.metrics.set_sources(&connected, &views);
            }
            if on(AlertKind::RpoBreached) {
                found.extend(views.iter().filter(|v| v.state == RpoState::Breached).map(rpo_condition));
            }
        }
        if on(AlertKind::AgentSilent) || on(AlertKind::SafetyTripped) {
            for s in &sources {
                let silent_since = s.last_seen_at.max(s.first_seen_at);
                if on(AlertKind::AgentSilent) && !s.connected && now - silent_since > self.settings.agent_silent_ms {
                    found.push(Condition {
                        kind: AlertKind::AgentSilent,
                        subject: s.source_id.clone(),
                        source_id: s.source_id.clone(),
                        message: format!("{} has not been connected since {}", s.source_id, when(silent_since)),
                    });
                }
                if on(AlertKind::SafetyTripped) && s.safety_state == SafetyState::StoppedForSafety {
                    found.push(Condition {
                        kind: AlertKind::SafetyTripped,
                        subject: s.source_id.clone(),
                        source_id: s.source_id.clone(),
                        message: format!(
                            "the panic brake of {} holds its uploads: {} (an operator's Resume clears it)",
                            s.source_id, s.safety_reason
                        ),
                    });
                }
            }
        }
        if on(AlertKind::PackageFailed) {
            for (source, (n, error)) in self.store.failed_packages_by_source().await? {
                found.push(Condition {
                    kind: AlertKind::PackageFailed,
                    message: format!("{n} package(s) of {source} failed after their retries (e.g. {error})"),
                    subject: source.clone(),
                    source_id: source,
                });
            }
        }
        if on(AlertKind::RestoreDrillFailed)
            && let Some(drill) = self.store.last_drill().await?
            && drill.entry.event_type == EventType::RestoreDrillFailed.as_str()
        {
            found.push(Condition {
                kind: AlertKind::RestoreDrillFailed,
                subject: "drill".into(),
                source_id: drill.entry.source_id.clone(),
                message: format!("the restore drill of {} failed: {}", when(drill.at), drill.entry.error),
            });
        }
        if on(AlertKind::MoveFailing) || on(AlertKind::StationFailing) {
            for c in self.store.failed_copies_by_station(self.settings.move_failures).await? {
                let (station, error) = (c.station_id.as_str(), c.error.as_str());
                if on(AlertKind::StationFailing) {
                    found.push(Condition {
                        kind: AlertKind::StationFailing,
                        subject: station.to_owned(),
                        source_id: String::new(),
                        message: format!(
                            "{} copy(ies) on {station} are damaged, missing or failed to write (e.g. {error})",
                            c.failed
                        ),
                    });
                }
                if on(AlertKind::MoveFailing) && c.moving > 0 {
                    found.push(Condition {
                        kind: AlertKind::MoveFailing,
                        subject: station.to_owned(),
                        source_id: String::new(),
                        message: format!(
                            "tier moves of {} package(s) to {station} failed {} or more times in a row (e.g. {error})",
                            c.moving, self.settings.move_failures
                        ),
                    });
                }
            }
        }
        if on(AlertKind::JournalBroken) {
            self.check_journal().await?;
            if let Some((seq, problem)) = &self.broken {
                found.push(Condition {
                    kind: AlertKind::JournalBroken,
                    subject: "journal".into(),
                    source_id: String::new(),
                    message: format!("the journal's hash chain breaks at event {seq}: {problem}"),
                });
            }
        }
        if on(AlertKind::PendingChange) {
            for c in self.store.pending_changes(false, 1000).await? {
                let what = match &c.kind {
                    PendingKind::RuleSet { after, shortened, .. } => {
                        format!("rule set {}: {}", after.package_type.as_str(), shortened.join("; "))
                    }
                    PendingKind::PackageDeletion { package_id, source_id, .. } => {
                        format!("deletion of package {package_id} of {source_id}")
                    }
                };
                found.push(Condition {
                    kind: AlertKind::PendingChange,
                    subject: c.change_id.to_string(),
                    source_id: match &c.kind {
                        PendingKind::PackageDeletion { source_id, .. } => source_id.clone(),
                        PendingKind::RuleSet { .. } => String::new(),
                    },
                    message: format!(
                        "{what}, asked by {}, takes effect {} unless cancelled",
                        c.requested_by,
                        when(c.effective_at)
                    ),
                });
            }
        }
        if on(AlertKind::ChannelFailing) {
            let stats = self.store.channel_stats().await?;
            self.metrics.set_notifications_pending(stats.values().map(|s| s.pending).sum());
            for r in &self.settings.routes {
                if let Some(s) = stats.get(&r.channel)
                    && s.failing_attempts >= self.settings.channel_failures
                {
                    found.push(Condition {
                        kind: AlertKind::ChannelFailing,
                        subject: r.channel.clone(),
                        source_id: String::new(),
                        message: format!(
                            "channel {} keeps failing: {} notification(s) waiting, {} attempts, last error: {}",
                            r.channel, s.pending, s.failing_attempts, s.last_error
                        ),
                    });
                }
            }
        }
        let mut open: HashMap<AlertKind, u64> = HashMap::new();
        for c in &found {
            *open.entry(c.kind).or_default() += 1;
        }
        self.metrics.set_alerts_open(&open);
        // Every replica judges (its status view and metrics need the figures); the lease holder
        // alone records what it found.
        let Some(writer) = self.lead.writer(&self.writer) else { return Ok(()) };
        let out = writer.submit(EvaluateAlerts { conditions: found, routes: self.settings.routes.clone() }).await?;
        if out.raised + out.resolved > 0 {
            tracing::info!(raised = out.raised, resolved = out.resolved, "alerts changed");
            self.deliver.notify_one();
        }
        Ok(())
    }

    /// Checks the journal's new events, and all of it every `journal_verify_every`.
    async fn check_journal(&mut self) -> Result<()> {
        if self.full_check_at.elapsed() >= self.settings.journal_verify_every {
            self.verifier = Verifier::default();
            self.broken = None;
            self.full_check_at = Instant::now();
        }
        if self.broken.is_none() {
            self.broken = self.store.verify_journal_from(&mut self.verifier).await?;
            if let Some((seq, problem)) = &self.broken {
                tracing::error!(sequence = seq, problem, "the journal does not verify");
            }
        }
        Ok(())
    }
}

fn rpo_condition(v: &RpoView) -> Condition {
    let rpo = span(u64::try_from(v.rpo_ms / 1000).unwrap_or(0));
    let mut message = match (v.folder.is_empty(), v.last_backup_at) {
        (true, _) => format!("{} has not completed a backup since it was first seen (RPO {rpo})", v.source_id),
        (false, Some(at)) => {
            format!("{} of {}: no complete, verified backup since {} (RPO {rpo})", v.folder, v.source_id, when(at))
        }
        (false, None) => format!("{} of {}: never completely backed up (RPO {rpo})", v.folder, v.source_id),
    };
    if v.unprotected > 0 {
        message.push_str(&format!("; {} file(s) have no copy yet", v.unprotected));
    }
    Condition { kind: AlertKind::RpoBreached, subject: v.subject(), source_id: v.source_id.clone(), message }
}

/// A time for people, in UTC.
fn when(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| at.to_string())
}
