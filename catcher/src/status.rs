//! The fleet status view (status bar, tier counts) computed from the incremental counters, and
//! the worker that republishes it when a batch changed it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::change::Change;
use crate::domain::*;
use crate::error::Result;
use crate::rules::Next;
use crate::store::Store;
use crate::watch::Hub;

const HOUR_MS: i64 = 3_600_000;

/// Reads the status: a handful of small queries, no scan of the packages table.
pub async fn compute(store: &Store, started_at: Millis, rpo: &RpoTally) -> Result<FleetStatus> {
    let now = now_ms();
    let counters = store.counters().await?;
    let (total, connected, stopped) = store.source_counts().await?;
    let rules: HashMap<PackageType, crate::rules::RuleSet> =
        store.rule_sets().await?.into_iter().map(|r| (r.package_type, r)).collect();
    let mut tiers: Vec<TierRow> = std::iter::once(None)
        .chain(Tier::ALL.iter().copied().map(Some))
        .map(|tier| TierRow { tier, ..Default::default() })
        .collect();
    let row = |t: Option<Tier>| t.map_or(0, |t| t.index() + 1);
    let mut statuses: HashMap<PackageStatus, u64> = HashMap::new();
    let mut type_tiers: BTreeMap<(PackageType, usize), TypeTierRow> = BTreeMap::new();
    for ((package_type, tier, status), c) in &counters {
        let count = u64::try_from(c.count).unwrap_or(0);
        let bytes = u64::try_from(c.bytes).unwrap_or(0);
        *statuses.entry(*status).or_default() += count;
        if *status == PackageStatus::Expired {
            continue;
        }
        let r = &mut tiers[row(*tier)];
        r.count += count;
        r.bytes += bytes;
        let t = type_tiers.entry((*package_type, row(*tier))).or_insert(TypeTierRow {
            package_type: *package_type,
            tier: *tier,
            count: 0,
            bytes: 0,
        });
        t.count += count;
        t.bytes += bytes;
    }
    let type_tiers = type_tiers.into_values().filter(|t| t.count > 0).collect();
    // Packages on the edge are all headed for their first stop.
    tiers[0].outgoing_next_hour = tiers[0].count;
    for g in store.due_groups(now, now + HOUR_MS, 0).await? {
        tiers[row(Some(g.tier))].outgoing_next_hour += g.count;
        if let Some(Next::Move(to)) = rules.get(&g.package_type).map(|r| r.after(g.tier)) {
            tiers[row(Some(to))].incoming_next_hour += g.count;
        }
    }
    tiers[row(Some(Tier::Hot))].incoming_next_hour += tiers[0].count;
    let (alerts_open, alerts_unacknowledged) = store.alert_counts().await?;
    let (rpo_held, rpo_breached) = rpo.get();
    Ok(FleetStatus {
        alerts_open,
        alerts_unacknowledged,
        rpo_held,
        rpo_breached,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        database: store.backend_name().to_owned(),
        clients_connected: connected,
        clients_total: total,
        clients_stopped: stopped,
        tiers,
        type_tiers,
        statuses,
        journal_head: store.journal_head().await?,
        stations: store.stations().await?.len() as u64,
        commands_open: store.open_command_count().await?,
        last_drill: store.last_drill().await?,
        replicas: store.replicas().await?,
        lease_holder: store.lease_holder().await?,
        now,
    })
}

type Cached = Option<(u64, std::time::Instant, Arc<FleetStatus>)>;

/// The last computed status, reused while the writer's generation has not moved since (no
/// batch changed anything a reader sees).
/// Only its clock-driven parts (the next-hour windows, `now`) age: past `fresh_for` it is still
/// served while one background task recomputes it, and past `stale_for` it is recomputed
/// inline. Dashboards and scripts poll the status far more often than an idle fleet changes it.
pub struct StatusCache {
    last: Arc<std::sync::Mutex<Cached>>,
    refreshing: Arc<std::sync::atomic::AtomicBool>,
    fresh_for: Duration,
    stale_for: Duration,
    rpo: Arc<RpoTally>,
}

impl StatusCache {
    pub fn new(fresh_for: Duration, stale_for: Duration, rpo: Arc<RpoTally>) -> Self {
        Self { last: Arc::default(), refreshing: Arc::default(), fresh_for, stale_for, rpo }
    }

    /// The status as of `generation` (`Writer::generation`, read before calling).
    pub async fn get(&self, store: &Store, started_at: Millis, generation: u64) -> Result<Arc<FleetStatus>> {
        use std::sync::atomic::Ordering;
        let hit = lock(&self.last)
            .as_ref()
            .filter(|(at, when, _)| *at == generation && when.elapsed() < self.stale_for)
            .map(|(_, when, status)| (when.elapsed(), status.clone()));
        if let Some((age, status)) = hit {
            if age >= self.fresh_for && !self.refreshing.swap(true, Ordering::AcqRel) {
                let (last, refreshing, store) = (self.last.clone(), self.refreshing.clone(), store.clone());
                let rpo = self.rpo.clone();
                tokio::spawn(async move {
                    if let Ok(s) = compute(&store, started_at, &rpo).await {
                        store_newer(&last, generation, Arc::new(s));
                    }
                    refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(status);
        }
        let status = Arc::new(compute(store, started_at, &self.rpo).await?);
        store_newer(&self.last, generation, status.clone());
        Ok(status)
    }
}

fn lock(m: &std::sync::Mutex<Cached>) -> std::sync::MutexGuard<'_, Cached> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps the entry of the newest generation (a slow computation must not replace a newer one).
fn store_newer(last: &std::sync::Mutex<Cached>, generation: u64, status: Arc<FleetStatus>) {
    let mut last = lock(last);
    if last.as_ref().is_none_or(|(g, ..)| *g <= generation) {
        *last = Some((generation, std::time::Instant::now(), status));
    }
}

/// Recomputes and publishes the status whenever the writer marks it dirty, at most every
/// `min_gap`, so a burst of batches costs one recomputation.
pub async fn publisher(
    store: Store,
    hub: Hub,
    dirty: Arc<Notify>,
    started_at: Millis,
    rpo: Arc<RpoTally>,
    min_gap: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = dirty.notified() => {}
            () = stop.cancelled() => return,
        }
        match compute(&store, started_at, &rpo).await {
            Ok(s) => hub.publish(Change::Status(Arc::new(s))),
            Err(e) => tracing::warn!(error = %e, "status recomputation failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(min_gap) => {}
            () = stop.cancelled() => return,
        }
    }
}
