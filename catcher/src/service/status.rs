//! StatusService: component status, tier summary, projections, and the live `Watch` stream.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;

use edgebackup_proto::v1::{self as pb, status_service_server::StatusService, watch_event::Kind};
use futures::Stream;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::commands_wire;
use super::subscribers::{Held, Metered};
use super::{Shared, convert, respond, validate as v};
use crate::change::Change;
use crate::domain::{Tier, now_ms};
use crate::error::{Error, Result};
use crate::rules::Next;
use crate::store::AlertFilter;
use crate::store::{JournalFilter, PackageFilter};

pub struct StatusApi(pub Shared);

impl StatusApi {
    async fn status(&self) -> Result<pb::GetStatusResponse> {
        Ok(status_here(&self.0.replica, &*self.0.status().await?))
    }

    async fn projections(&self, r: pb::GetProjectionsRequest) -> Result<pb::GetProjectionsResponse> {
        let window_secs = match (&r.window, r.days) {
            (Some(_), d) if d > 0 => return Err(Error::invalid("window", "give either window or days, not both")),
            (Some(w), _) => v::duration_secs("window", Some(w), 1)?,
            (None, 0) => return Err(Error::invalid("days", "give a window or a number of days (1..3650)")),
            (None, d) if d > 3650 => return Err(Error::invalid("days", "must be 1..3650")),
            (None, d) => u64::from(d) * 86_400,
        };
        let per_group = v::limit("ids_per_group", r.ids_per_group, 100, 1000)?;
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(window_secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000));
        let rules: HashMap<_, _> = self.0.store.rule_sets().await?.into_iter().map(|r| (r.package_type, r)).collect();
        // (from, to); `to` None means expiry.
        type Route = (Tier, Option<Tier>);
        let mut groups: BTreeMap<Route, pb::ProjectionGroup> = BTreeMap::new();
        let mut ids: BTreeMap<Route, Vec<(i64, String)>> = BTreeMap::new();
        for g in self.0.store.due_groups(now, until, per_group).await? {
            let to = match rules.get(&g.package_type).map(|r| r.after(g.tier)) {
                Some(Next::Move(t)) => Some(t),
                Some(Next::Stay) => continue,
                Some(Next::Expire) | None => None,
            };
            let key = (g.tier, to);
            let entry = groups.entry(key).or_insert_with(|| pb::ProjectionGroup {
                from_tier: convert::tier(Some(g.tier)) as i32,
                to_tier: convert::tier(to) as i32,
                expires: to.is_none(),
                earliest: Some(convert::ts(g.earliest)),
                ..Default::default()
            });
            entry.count += g.count;
            entry.total_bytes += g.bytes;
            if entry.earliest.as_ref().is_none_or(|e| convert::ts(g.earliest).seconds < e.seconds) {
                entry.earliest = Some(convert::ts(g.earliest));
            }
            ids.entry(key).or_default().extend(g.ids.into_iter().map(|(id, at)| (at, id)));
        }
        for (key, group) in groups.iter_mut() {
            let mut list = ids.remove(key).unwrap_or_default();
            list.sort();
            group.package_ids = list.into_iter().take(per_group as usize).map(|(_, id)| id).collect();
        }
        Ok(pb::GetProjectionsResponse {
            from: Some(convert::ts(now)),
            until: Some(convert::ts(until)),
            groups: groups.into_values().collect(),
        })
    }
}

/// A package and a journal event in a snapshot, encoded, about (measured: 10,000 packages with
/// their paths and checksums take 2.5 MB).
const PACKAGE_BYTES: u64 = 256;
const JOURNAL_BYTES: u64 = 300;

/// Open pending changes a snapshot carries at most.
const OPEN_PENDING: u64 = 1000;
/// Open alerts in a snapshot, and the recently resolved ones after them.
const OPEN_ALERTS: u64 = 1000;
const RECENT_ALERTS: u64 = 20;

/// Finished restores a snapshot carries (open ones are all sent).
const RECENT_RESTORES: u64 = 20;

/// Builds a consistent-enough fleet snapshot: taken after subscribing, so any change racing it
/// arrives afterwards as a delta (deltas carry whole objects, so re-applying is harmless).
pub async fn fleet_snapshot(state: &Shared, package_limit: u64, journal_limit: u64) -> Result<pb::FleetSnapshot> {
    let store = &state.store;
    let status = status_here(&state.replica, &*state.status().await?);
    let in_flight = store.in_flight_by_source().await?;
    let mut sources = Vec::new();
    for s in store.sources().await? {
        let n = in_flight.get(&s.source_id).copied().unwrap_or(0);
        let cursor = store.cursor(&s.source_id).await?;
        sources.push(convert::source(s, cursor, n));
    }
    let packages = store.list_packages(&PackageFilter::default(), None, package_limit).await?;
    let ids: Vec<String> = packages.iter().map(|p| p.package_id.clone()).collect();
    let mut placements = store.placements_of(&ids).await?;
    Ok(pb::FleetSnapshot {
        status: Some(status),
        sources,
        rule_sets: store.rule_sets().await?.into_iter().map(convert::rule_set).collect(),
        packages: packages
            .into_iter()
            .map(|p| {
                let pl = placements.remove(&p.package_id).unwrap_or_default();
                convert::package(p, pl)
            })
            .collect(),
        journal: store
            .journal(&JournalFilter::default(), 0, journal_limit)
            .await?
            .into_iter()
            .map(convert::journal_event)
            .collect(),
        stations: store.stations().await?.into_iter().map(convert::station).collect(),
        restores: store.restores(RECENT_RESTORES).await?.into_iter().map(commands_wire::command_info).collect(),
        pending_changes: store
            .pending_changes(false, OPEN_PENDING)
            .await?
            .into_iter()
            .map(convert::pending_change)
            .collect(),
        alerts: {
            let open = store.alerts(&AlertFilter { open: Some(true), ..Default::default() }, OPEN_ALERTS).await?;
            let resolved =
                store.alerts(&AlertFilter { open: Some(false), ..Default::default() }, RECENT_ALERTS).await?;
            open.into_iter().chain(resolved).map(convert::alert).collect()
        },
    })
}

/// A fleet snapshot as a Watch event, built a few at a time.
async fn snapshot_event(state: &Shared, package_limit: u64, journal_limit: u64) -> Result<pb::WatchEvent> {
    let _turn = state.subscribers.builds.acquire().await.map_err(|_| Error::Unavailable("shutting down".into()))?;
    let s = fleet_snapshot(state, package_limit, journal_limit).await?;
    Ok(pb::WatchEvent { kind: Some(Kind::Snapshot(s)) })
}

/// The fleet status as this replica answers it (naming itself: behind a gateway that spreads
/// calls, the dashboard learns which replica serves its stream).
fn status_here(replica: &str, s: &crate::domain::FleetStatus) -> pb::GetStatusResponse {
    pb::GetStatusResponse { replica_id: replica.to_owned(), ..convert::status_response(s) }
}

/// The Watch event of a change as `replica` sends it; `None` for a resync (answered with a
/// snapshot).
fn delta(change: &Change, replica: &str) -> Option<Kind> {
    Some(match change {
        Change::Package(p) => Kind::PackageChanged(convert::package(p.clone(), Vec::new())),
        Change::PackageDeleted(id) => Kind::PackageDeleted(id.clone()),
        Change::Source(v) => Kind::SourceChanged(convert::source(v.source.clone(), v.last_applied_seq, v.in_flight)),
        Change::Journal(j) => Kind::JournalAppended(convert::journal_event(j.clone())),
        Change::Rules(r) => {
            Kind::RulesChanged(pb::RulesChanged { rule_sets: r.iter().cloned().map(convert::rule_set).collect() })
        }
        Change::Status(s) => Kind::StatusChanged(status_here(replica, s)),
        Change::Restore(c) => Kind::RestoreChanged(commands_wire::command_info(c.clone())),
        Change::Pending(c) => Kind::PendingChange(convert::pending_change(c.clone())),
        Change::Alert(a) => Kind::AlertChanged(convert::alert(a.clone())),
        Change::Resync => return None,
    })
}

#[tonic::async_trait]
impl StatusService for StatusApi {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn get_status(&self, r: Request<pb::GetStatusRequest>) -> Result<Response<pb::GetStatusResponse>, Status> {
        super::respond_as(&self.0, &super::caller(&r), self.status().await)
    }

    async fn get_tier_summary(
        &self,
        r: Request<pb::GetTierSummaryRequest>,
    ) -> Result<Response<pb::GetTierSummaryResponse>, Status> {
        let result = async {
            let samples = v::limit("samples", r.get_ref().samples, 0, 50)?;
            let status = self.0.status().await?;
            let mut tiers = Vec::new();
            for row in &status.tiers {
                let list = if samples == 0 { Vec::new() } else { self.0.store.tier_samples(row.tier, samples).await? };
                tiers.push(pb::TierSummary {
                    stats: Some(convert::tier_stats(row)),
                    samples: list.into_iter().map(|p| convert::package(p, Vec::new())).collect(),
                });
            }
            Ok(pb::GetTierSummaryResponse { tiers })
        }
        .await;
        respond(result)
    }

    async fn get_projections(
        &self,
        r: Request<pb::GetProjectionsRequest>,
    ) -> Result<Response<pb::GetProjectionsResponse>, Status> {
        respond(self.projections(r.into_inner()).await)
    }

    async fn watch(&self, r: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let who = super::caller(&r);
        let credential = who.actor();
        let redactor = self.0.redactor(&who);
        let r = r.into_inner();
        let package_limit = v::limit("package_limit", r.package_limit, 500, 10_000)?;
        let journal_limit = v::limit("journal_limit", r.journal_limit, 50, 1000)?;
        let state = self.0.clone();
        let subscriber = state.subscribers.admit(&credential)?;
        // Refuse before building a snapshot that would not fit (it is built only to be dropped).
        let estimate =
            usize::try_from(package_limit * PACKAGE_BYTES + journal_limit * JOURNAL_BYTES).unwrap_or(usize::MAX);
        let reserved = subscriber.try_hold(estimate)?;
        let mut changes = state.hub.subscribe();
        // What leaves for a viewer who sees the fleet privately is redacted first.
        let private = move |mut e: pb::WatchEvent| {
            if let (Some(r), Some(kind)) = (&redactor, e.kind.as_mut()) {
                r.watch(kind);
            }
            e
        };
        let first = private(snapshot_event(&state, package_limit, journal_limit).await?);
        drop(reserved);
        let held = subscriber.try_hold(prost::Message::encoded_len(&first))?;
        // The queue is bounded in bytes by the subscriber's budget (`subscribers`): one that
        // does not read stops getting events, lags in the hub, and is re-synced once it reads.
        let (tx, rx) = mpsc::channel::<(Result<pb::WatchEvent, Status>, Held)>(256);
        tokio::spawn(async move {
            if tx.send((Ok(first), held)).await.is_err() {
                return;
            }
            loop {
                let change = tokio::select! {
                    c = changes.recv() => c,
                    () = state.shutdown.cancelled() => {
                        // Not OK: the subscriber should reconnect, not think the stream is done.
                        // (A subscriber whose budget is full is not reading: its stream just ends.)
                        if let Ok(held) = subscriber.try_hold(0) {
                            let _ = tx.send((Err(Status::unavailable("the catcher is shutting down; reconnect")), held)).await;
                        }
                        return;
                    }
                    () = tx.closed() => return,
                };
                let out = match change.map(|c| delta(&c, &state.replica)) {
                    Ok(Some(kind)) => Ok(private(pb::WatchEvent { kind: Some(kind) })),
                    Ok(None) | Err(RecvError::Lagged(_)) => {
                        tracing::debug!("watch subscriber fell behind or changes were missed; re-sending a snapshot");
                        // One snapshot at a time: wait until the stream has taken what is queued
                        // (what the transport still holds stays counted in the budget).
                        while tx.capacity() < tx.max_capacity() {
                            tokio::select! {
                                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                                () = tx.closed() => return,
                            }
                        }
                        changes = changes.resubscribe();
                        snapshot_event(&state, package_limit, journal_limit).await.map(&private).map_err(Status::from)
                    }
                    Err(RecvError::Closed) => return,
                };
                let size = out.as_ref().map_or(0, prost::Message::encoded_len);
                let held = tokio::select! {
                    h = subscriber.hold(size) => h,
                    () = tx.closed() => return,
                };
                if tx.send((out, held)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(Metered::new(ReceiverStream::new(rx)))))
    }
}
