//! AlertService: alerts, acknowledgements, notification channels, recovery points.

use edgebackup_proto::v1::{self as pb, alert_service_server::AlertService};
use tonic::{Request, Response, Status};

use super::{Shared, convert, respond_as, validate as v};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::notify::{ChannelKind, test_message};
use crate::store::AlertFilter;
use crate::writer::{AcknowledgeAlert, ChannelTested};

pub struct Alerts(pub Shared);

/// Longest acknowledgement note.
const NOTE_CHARS: usize = 500;

#[tonic::async_trait]
impl AlertService for Alerts {
    async fn list_alerts(&self, r: Request<pb::ListAlertsRequest>) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let open = match pb::AlertState::try_from(r.state) {
                Ok(pb::AlertState::Unspecified) => None,
                Ok(pb::AlertState::Open) => Some(true),
                Ok(pb::AlertState::Resolved) => Some(false),
                Err(_) => return Err(Error::invalid("state", format!("unknown value {}", r.state))),
            };
            let f = AlertFilter {
                open,
                kind: v::alert_kind("kind", r.kind, false)?,
                source_id: if r.source_id.is_empty() { None } else { Some(v::id("source_id", &r.source_id)?) },
            };
            let limit = v::limit("limit", r.limit, 100, 1000)?;
            let alerts = self.0.store.alerts(&f, limit).await?;
            let (open, unacknowledged) = self.0.store.alert_counts().await?;
            Ok(pb::ListAlertsResponse {
                alerts: alerts.into_iter().map(convert::alert).collect(),
                open,
                unacknowledged,
            })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn acknowledge_alert(&self, r: Request<pb::AcknowledgeAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let id = v::id("id", &r.id)?;
            if r.note.chars().count() > NOTE_CHARS {
                return Err(Error::invalid("note", format!("longer than {NOTE_CHARS} characters")));
            }
            if r.note.chars().any(|c| c.is_control() && c != '\n') {
                return Err(Error::invalid("note", "holds control characters"));
            }
            let a = self.0.writer.submit(AcknowledgeAlert { id, actor: who.actor(), note: r.note }).await?;
            Ok(convert::alert(a))
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn list_channels(
        &self,
        r: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            let stats = self.0.store.channel_stats().await?;
            let channels = self
                .0
                .channels
                .iter()
                .map(|c| {
                    let s = stats.get(&c.name).cloned().unwrap_or_default();
                    pb::Channel {
                        name: c.name.clone(),
                        kind: match c.kind {
                            ChannelKind::Webhook => pb::ChannelKind::Webhook,
                            ChannelKind::Slack => pb::ChannelKind::Slack,
                            ChannelKind::Email => pb::ChannelKind::Email,
                        } as i32,
                        target: c.target.clone(),
                        kinds: c.kinds.iter().map(|k| convert::alert_kind(*k) as i32).collect(),
                        pending: s.pending,
                        delivered: s.delivered,
                        last_delivered_at: convert::ts_opt(s.last_delivered_at),
                        last_error: if s.pending > 0 { s.last_error } else { String::new() },
                    }
                })
                .collect();
            Ok(pb::ListChannelsResponse { channels })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn test_channel(
        &self,
        r: Request<pb::TestChannelRequest>,
    ) -> Result<Response<pb::TestChannelResponse>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let name = v::id("name", &r.name)?;
            let channel = self.0.channels.get(&name).ok_or_else(|| Error::not_found("channel", name.clone()))?;
            let m = test_message(&name, &who.actor(), &self.0.catcher_name);
            let (delivered, message) = match channel.send(&m).await {
                Ok(answer) => (true, answer),
                Err(error) => (false, error),
            };
            self.0
                .writer
                .submit(ChannelTested { channel: name, delivered, message: message.clone(), actor: who.actor() })
                .await?;
            Ok(pb::TestChannelResponse { delivered, message })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn get_recovery_points(
        &self,
        r: Request<pb::GetRecoveryPointsRequest>,
    ) -> Result<Response<pb::GetRecoveryPointsResponse>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let source = if r.source_id.is_empty() { None } else { Some(v::id("source_id", &r.source_id)?) };
            let sources = match &source {
                Some(id) => self.0.store.source(id).await?.into_iter().collect(),
                None => self.0.store.sources().await?,
            };
            let by_source = &self.0.config.rpo_by_source;
            let all =
                crate::workers::rpo::views(&self.0.store, by_source, &sources, source.as_deref(), now_ms()).await?;
            let breached_only = r.breached_only;
            Ok(convert::recovery_points(all, |p| !breached_only || p.state == RpoState::Breached))
        }
        .await;
        respond_as(&self.0, &who, result)
    }
}
