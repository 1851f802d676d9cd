//! PolicyService: rule sets, presets, stations, config snapshots.

use edgebackup_proto::v1::{self as pb, policy_service_server::PolicyService};
use tonic::{Request, Response, Status};

use super::{Shared, convert, respond, respond_as, validate as v};
use crate::domain::Spelling;
use crate::error::{Error, Result};
use crate::rules::{self, RuleSet};
use crate::writer::{
    CancelPending, CreateSnapshot, Queued, RestoreSnapshot, RuleChange, RulesOutcome, SetRules, parse_config,
};

pub struct Policy(pub Shared);

impl Policy {
    async fn change_rules<O: Queued<Output = RulesOutcome>>(&self, op: O) -> Result<RulesOutcome> {
        let out = self.0.writer.submit(op).await?;
        if out.snapshot_id != 0 {
            broadcast_rules(&self.0.sessions, &out.rule_sets);
        }
        if !out.pending.is_empty() {
            // The applier sleeps until the next change is due.
            self.0.pending_due.notify_one();
        }
        Ok(out)
    }

    async fn snapshot(&self, id: u64) -> Result<crate::domain::ConfigSnapshot> {
        if id == 0 {
            return Err(Error::invalid("snapshot_id", "required"));
        }
        self.0.store.snapshot(id).await?.ok_or_else(|| Error::not_found("snapshot", id.to_string()))
    }
}

/// Agents keep a copy of the rules: tells the connected ones.
pub fn broadcast_rules(sessions: &super::sessions::Sessions, rule_sets: &[RuleSet]) {
    let msg = pb::CatcherMessage {
        body: Some(pb::catcher_message::Body::RulesChanged(pb::RulesChanged {
            rule_sets: rule_sets.iter().cloned().map(convert::rule_set).collect(),
        })),
    };
    sessions.broadcast(&msg);
}

fn reason(field: &str, r: &str, default: &str) -> Result<String> {
    if r.chars().count() > 1024 {
        return Err(Error::invalid(field, "longer than 1024 characters"));
    }
    Ok(if r.is_empty() { default.to_owned() } else { r.to_owned() })
}

fn snapshot_pb(s: crate::domain::ConfigSnapshot, with_body: bool) -> Result<pb::ConfigSnapshot> {
    let (rule_sets, stations) = if with_body { parse_config(&s.config_json)? } else { (Vec::new(), Vec::new()) };
    Ok(pb::ConfigSnapshot {
        snapshot_id: s.snapshot_id,
        created_at: Some(convert::ts(s.created_at)),
        reason: s.reason,
        sha256: s.sha256,
        rule_sets: rule_sets.into_iter().map(convert::rule_set).collect(),
        stations: stations.into_iter().map(convert::station).collect(),
        actor: s.actor,
    })
}

#[tonic::async_trait]
impl PolicyService for Policy {
    async fn list_rule_sets(
        &self,
        _: Request<pb::ListRuleSetsRequest>,
    ) -> Result<Response<pb::ListRuleSetsResponse>, Status> {
        let result = async {
            Ok(pb::ListRuleSetsResponse {
                rule_sets: self.0.store.rule_sets().await?.into_iter().map(convert::rule_set).collect(),
            })
        }
        .await;
        respond(result)
    }

    async fn get_rule_set(&self, r: Request<pb::GetRuleSetRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let result = async {
            let t = v::package_type("package_type", r.get_ref().package_type, true)?.expect("required");
            let rs = self.0.store.rule_sets().await?.into_iter().find(|r| r.package_type == t);
            rs.map(convert::rule_set).ok_or_else(|| Error::not_found("rule set", t.as_str()))
        }
        .await;
        respond(result)
    }

    async fn update_rule_set(
        &self,
        r: Request<pb::UpdateRuleSetRequest>,
    ) -> Result<Response<pb::UpdateRuleSetResponse>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            let rs = convert::rule_set_in(r.rule_set.as_ref().ok_or_else(|| Error::invalid("rule_set", "required"))?)?;
            rs.validate()?;
            let reason = reason("reason", &r.reason, &format!("update of {} rules", rs.package_type))?;
            let op = SetRules { rule_sets: vec![rs.clone()], reason, change: RuleChange::Update, actor };
            let out = self.change_rules(op).await?;
            let stored = out.rule_sets.into_iter().find(|r| r.package_type == rs.package_type).unwrap_or(rs);
            Ok(pb::UpdateRuleSetResponse {
                rule_set: Some(convert::rule_set(stored)),
                snapshot_id: out.snapshot_id,
                replanned_packages: out.replanned,
                pending: out.pending.into_iter().next().map(convert::pending_change),
            })
        }
        .await;
        respond(result)
    }

    async fn list_presets(
        &self,
        _: Request<pb::ListPresetsRequest>,
    ) -> Result<Response<pb::ListPresetsResponse>, Status> {
        let presets = rules::presets()
            .into_iter()
            .map(|p| pb::Preset {
                name: p.name.to_owned(),
                description: p.description.to_owned(),
                rule_sets: p.rule_sets.into_iter().map(convert::rule_set).collect(),
            })
            .collect();
        Ok(Response::new(pb::ListPresetsResponse { presets }))
    }

    async fn apply_preset(
        &self,
        r: Request<pb::ApplyPresetRequest>,
    ) -> Result<Response<pb::ApplyPresetResponse>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            let preset = rules::preset(&r.name).ok_or_else(|| {
                Error::invalid("name", format!("unknown preset {:?}; one of cloud, onprem, cost, demo", r.name))
            })?;
            let reason = reason("reason", &r.reason, &format!("preset {}", preset.name))?;
            let op = SetRules {
                rule_sets: preset.rule_sets,
                reason,
                change: RuleChange::Preset(preset.name.to_owned()),
                actor,
            };
            let out = self.change_rules(op).await?;
            Ok(pb::ApplyPresetResponse {
                rule_sets: out.rule_sets.into_iter().map(convert::rule_set).collect(),
                snapshot_id: out.snapshot_id,
                replanned_packages: out.replanned,
                pending: out.pending.into_iter().map(convert::pending_change).collect(),
            })
        }
        .await;
        respond(result)
    }

    async fn list_stations(
        &self,
        r: Request<pb::ListStationsRequest>,
    ) -> Result<Response<pb::ListStationsResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            Ok(pb::ListStationsResponse {
                stations: self.0.store.stations().await?.into_iter().map(convert::station).collect(),
            })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn list_config_snapshots(
        &self,
        r: Request<pb::ListConfigSnapshotsRequest>,
    ) -> Result<Response<pb::ListConfigSnapshotsResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            let limit = v::limit("limit", r.get_ref().limit, 100, 1000)?;
            let snaps = self.0.store.snapshots(limit).await?;
            Ok(pb::ListConfigSnapshotsResponse {
                snapshots: snaps.into_iter().map(|s| snapshot_pb(s, false)).collect::<Result<_>>()?,
            })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn create_config_snapshot(
        &self,
        r: Request<pb::CreateConfigSnapshotRequest>,
    ) -> Result<Response<pb::ConfigSnapshot>, Status> {
        let actor = super::caller(&r).actor();
        let result = async {
            let reason = reason("reason", &r.get_ref().reason, "manual snapshot")?;
            let s = self.0.writer.submit(CreateSnapshot { reason, actor }).await?;
            snapshot_pb(s, true)
        }
        .await;
        respond(result)
    }

    async fn get_config_snapshot(
        &self,
        r: Request<pb::GetConfigSnapshotRequest>,
    ) -> Result<Response<pb::ConfigSnapshot>, Status> {
        let who = super::caller(&r);
        let result = async { snapshot_pb(self.snapshot(r.get_ref().snapshot_id).await?, true) }.await;
        respond_as(&self.0, &who, result)
    }

    async fn restore_config_snapshot(
        &self,
        r: Request<pb::RestoreConfigSnapshotRequest>,
    ) -> Result<Response<pb::RestoreConfigSnapshotResponse>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            let snap = self.snapshot(r.snapshot_id).await?;
            // Refuse a snapshot whose rules no longer validate (written by an older version).
            let (sets, _) = parse_config(&snap.config_json)?;
            sets.iter().try_for_each(RuleSet::validate).map_err(|e| {
                Error::FailedPrecondition(format!("snapshot {} is not restorable: {e}", snap.snapshot_id))
            })?;
            let reason = reason("reason", &r.reason, &format!("restore of snapshot {}", snap.snapshot_id))?;
            let out = self.change_rules(RestoreSnapshot { snapshot_id: snap.snapshot_id, reason, actor }).await?;
            Ok(pb::RestoreConfigSnapshotResponse {
                rule_sets: out.rule_sets.into_iter().map(convert::rule_set).collect(),
                snapshot_id: out.snapshot_id,
                replanned_packages: out.replanned,
                pending: out.pending.into_iter().map(convert::pending_change).collect(),
            })
        }
        .await;
        respond(result)
    }

    async fn export_config_snapshot(
        &self,
        r: Request<pb::ExportConfigSnapshotRequest>,
    ) -> Result<Response<pb::ExportConfigSnapshotResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            let s = self.snapshot(r.get_ref().snapshot_id).await?;
            Ok(pb::ExportConfigSnapshotResponse {
                snapshot_id: s.snapshot_id,
                config_json: s.config_json,
                sha256: s.sha256,
            })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn list_pending_changes(
        &self,
        r: Request<pb::ListPendingChangesRequest>,
    ) -> Result<Response<pb::ListPendingChangesResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            let limit = v::limit("limit", r.get_ref().limit, 100, 1000)?;
            let changes = self.0.store.pending_changes(r.get_ref().include_resolved, limit).await?;
            Ok(pb::ListPendingChangesResponse {
                changes: changes.into_iter().map(convert::pending_change).collect(),
                protection_delay_secs: self.0.config.protection_delay_secs,
            })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn cancel_pending_change(
        &self,
        r: Request<pb::CancelPendingChangeRequest>,
    ) -> Result<Response<pb::PendingChange>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            if r.change_id == 0 {
                return Err(Error::invalid("change_id", "required"));
            }
            let reason = reason("reason", &r.reason, "")?;
            let c = self.0.writer.submit(CancelPending { change_id: r.change_id, reason, actor }).await?;
            Ok(convert::pending_change(c))
        }
        .await;
        respond(result)
    }
}
