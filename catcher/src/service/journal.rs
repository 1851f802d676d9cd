//! JournalService: query, export (server stream) and chain verification.

use std::pin::Pin;

use edgebackup_proto::v1::{self as pb, journal_service_server::JournalService};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::{Shared, convert, respond, respond_as, validate as v};
use crate::domain::EventType;
use crate::error::{Error, Result};
use crate::journal::Verifier;
use crate::store::JournalFilter;

pub struct Journal(pub Shared);

const PAGE: u64 = 1000;

fn filter(source_id: &str, package_id: &str, event_type: Option<EventType>) -> Result<JournalFilter> {
    Ok(JournalFilter {
        source_id: (!source_id.is_empty()).then(|| v::id("source_id", source_id)).transpose()?,
        package_id: (!package_id.is_empty()).then(|| v::package_id("package_id", package_id)).transpose()?,
        event_type,
        text: None,
    })
}

/// The journal's event type on the wire (one exhaustive table: the compiler keeps it complete).
pub fn event_type(t: EventType) -> pb::JournalEventType {
    use pb::JournalEventType as W;
    match t {
        EventType::PackageIngested => W::PackageIngested,
        EventType::PackageStarted => W::PackageStarted,
        EventType::PackageRetried => W::PackageRetried,
        EventType::PackageCompleted => W::PackageCompleted,
        EventType::PackageFailed => W::PackageFailed,
        EventType::PackageDeleted => W::PackageDeleted,
        EventType::PackageTierChanged => W::PackageTierChanged,
        EventType::PackageExpired => W::PackageExpired,
        EventType::PackageKeptForever => W::PackageKeptForever,
        EventType::PackageMoveStarted => W::PackageMoveStarted,
        EventType::PackageMoveFailed => W::PackageMoveFailed,
        EventType::PackageExpiryStarted => W::PackageExpiryStarted,
        EventType::PackageDeleteFailed => W::PackageDeleteFailed,
        EventType::PackageResendStarted => W::PackageResendStarted,
        EventType::PackageResendFailed => W::PackageResendFailed,
        EventType::SourceRegistered => W::SourceRegistered,
        EventType::SourceConnected => W::SourceConnected,
        EventType::SourceDisconnected => W::SourceDisconnected,
        EventType::SourceStoppedForSafety => W::SourceStoppedForSafety,
        EventType::SourceResumed => W::SourceResumed,
        EventType::CommandCreated => W::CommandCreated,
        EventType::CommandFinished => W::CommandFinished,
        EventType::ConfigSnapshot => W::ConfigSnapshot,
        EventType::ConfigRestored => W::ConfigRestored,
        EventType::RulesUpdated => W::RulesUpdated,
        EventType::RulesPresetApplied => W::RulesPresetApplied,
        EventType::StationsChanged => W::StationsChanged,
        EventType::RestoreDrillPassed => W::RestoreDrillPassed,
        EventType::RestoreDrillFailed => W::RestoreDrillFailed,
        EventType::AgentEventRejected => W::AgentEventRejected,
        EventType::PackageRetained => W::PackageRetained,
        EventType::FolderEntriesSkipped => W::FolderEntriesSkipped,
        EventType::PackageCompacted => W::PackageCompacted,
        EventType::EnrollmentCreated => W::EnrollmentCreated,
        EventType::AgentEnrolled => W::AgentEnrolled,
        EventType::AgentRevoked => W::AgentRevoked,
        EventType::AgentRenewed => W::AgentRenewed,
        EventType::TokenCreated => W::TokenCreated,
        EventType::TokenRevoked => W::TokenRevoked,
        EventType::PendingChangeCreated => W::PendingChangeCreated,
        EventType::PendingChangeCancelled => W::PendingChangeCancelled,
        EventType::PendingChangeApplied => W::PendingChangeApplied,
        EventType::PendingChangeFailed => W::PendingChangeFailed,
        EventType::PackageCopyDamaged => W::PackageCopyDamaged,
        EventType::AlertRaised => W::AlertRaised,
        EventType::AlertResolved => W::AlertResolved,
        EventType::AlertAcknowledged => W::AlertAcknowledged,
        EventType::AlertChannelTested => W::AlertChannelTested,
    }
}

/// A journal filter's event type: the typed field, or the spelling; never both, never unknown.
pub fn event_type_filter(spelled: &str, typed: i32) -> Result<Option<EventType>> {
    let typed = match pb::JournalEventType::try_from(typed) {
        Ok(pb::JournalEventType::Unspecified) => None,
        Ok(w) => Some(
            <EventType as strum::VariantArray>::VARIANTS
                .iter()
                .copied()
                .find(|t| event_type(*t) == w)
                .ok_or_else(|| Error::invalid("type", "unknown event type"))?,
        ),
        Err(_) => return Err(Error::invalid("type", format!("unknown value {typed}"))),
    };
    let spelled = spelled.trim();
    match (typed, spelled.is_empty()) {
        (Some(_), false) => Err(Error::invalid("event_type", "excludes type; give one or the other")),
        (Some(t), true) => Ok(Some(t)),
        (None, true) => Ok(None),
        (None, false) => EventType::parse(spelled).map(Some).ok_or_else(|| {
            Error::invalid("event_type", format!("unknown event type {spelled:?}, e.g. \"package.ingested\""))
        }),
    }
}

#[tonic::async_trait]
impl JournalService for Journal {
    type ExportJournalStream = Pin<Box<dyn Stream<Item = Result<pb::JournalEvent, Status>> + Send>>;

    async fn query_journal(
        &self,
        r: Request<pb::QueryJournalRequest>,
    ) -> Result<Response<pb::QueryJournalResponse>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let f = JournalFilter {
                text: (!r.text.is_empty()).then(|| v::search_text("text", &r.text)).transpose()?,
                ..filter(&r.source_id, &r.package_id, event_type_filter(&r.event_type, r.r#type)?)?
            };
            let limit = v::limit("limit", r.limit, 100, 1000)?;
            let events = self.0.store.journal(&f, r.before_sequence, limit).await?;
            Ok(pb::QueryJournalResponse { events: events.into_iter().map(convert::journal_event).collect() })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn export_journal(
        &self,
        r: Request<pb::ExportJournalRequest>,
    ) -> Result<Response<Self::ExportJournalStream>, Status> {
        let redactor = self.0.redactor(&super::caller(&r));
        let r = r.into_inner();
        let f = filter(&r.source_id, &r.package_id, None)?;
        let store = self.0.store.clone();
        // Pages of PAGE rows, oldest first; memory stays bounded whatever the journal's size.
        let stream = async_stream_pages(store, f, r.from_sequence.max(1)).map(move |e| {
            let mut e = e?;
            if let Some(r) = &redactor {
                r.journal(&mut e);
            }
            Ok(e)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify_journal(
        &self,
        _: Request<pb::VerifyJournalRequest>,
    ) -> Result<Response<pb::VerifyJournalResponse>, Status> {
        let result = async {
            let mut verifier = Verifier::default();
            let bad = self.0.store.verify_journal_from(&mut verifier).await?;
            let (first_bad_sequence, problem) = bad.unwrap_or_default();
            Ok(pb::VerifyJournalResponse {
                ok: first_bad_sequence == 0,
                checked: verifier.checked,
                first_bad_sequence,
                problem,
            })
        }
        .await;
        respond(result)
    }
}

fn async_stream_pages(
    store: crate::store::Store,
    f: JournalFilter,
    from: u64,
) -> impl Stream<Item = Result<pb::JournalEvent, Status>> + Send {
    futures::stream::unfold(Some(from), move |next| {
        let store = store.clone();
        let f = f.clone();
        async move {
            let from = next?;
            match store.journal_page(&f, from, PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|e| e.sequence + 1);
                    let items: Vec<Result<pb::JournalEvent, Status>> =
                        page.into_iter().map(|e| Ok(convert::journal_event(e))).collect();
                    Some((futures::stream::iter(items), next))
                }
                Err(e) => Some((futures::stream::iter(vec![Err(Status::from(e))]), None)),
            }
        }
    })
    .flatten()
}

use futures::StreamExt as _;

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn every_event_type_has_its_own_wire_value_named_after_its_spelling() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::VARIANTS {
            let w = event_type(*t);
            assert!(seen.insert(w as i32), "{t} shares a wire value");
            let name = w.as_str_name().trim_start_matches("JOURNAL_EVENT_TYPE_").to_ascii_lowercase();
            assert_eq!(name, t.as_str().replace('.', "_"), "the proto name spells {t}");
            assert_eq!(event_type_filter("", w as i32).unwrap(), Some(*t));
            assert_eq!(event_type_filter(t.as_str(), 0).unwrap(), Some(*t));
        }
        assert!(event_type_filter("source.safety_stopped", 0).is_err());
    }
}
