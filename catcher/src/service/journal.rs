//! JournalService: query, export (server stream) and chain verification.

use std::pin::Pin;

use edgebackup_proto::v1::{self as pb, journal_service_server::JournalService};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::{Shared, convert, respond, validate as v};
use crate::error::Result;
use crate::journal::Verifier;
use crate::store::JournalFilter;

pub struct Journal(pub Shared);

const PAGE: u64 = 1000;

fn filter(source_id: &str, package_id: &str, event_type: &str) -> Result<JournalFilter> {
    Ok(JournalFilter {
        source_id: (!source_id.is_empty()).then(|| v::id("source_id", source_id)).transpose()?,
        package_id: (!package_id.is_empty()).then(|| v::package_id("package_id", package_id)).transpose()?,
        event_type: (!event_type.is_empty()).then(|| v::id("event_type", event_type)).transpose()?,
    })
}

#[tonic::async_trait]
impl JournalService for Journal {
    type ExportJournalStream = Pin<Box<dyn Stream<Item = Result<pb::JournalEvent, Status>> + Send>>;

    async fn query_journal(
        &self,
        r: Request<pb::QueryJournalRequest>,
    ) -> Result<Response<pb::QueryJournalResponse>, Status> {
        let r = r.into_inner();
        let result = async {
            let f = filter(&r.source_id, &r.package_id, &r.event_type)?;
            let limit = v::limit("limit", r.limit, 100, 1000)?;
            let events = self.0.store.journal(&f, r.before_sequence, limit).await?;
            Ok(pb::QueryJournalResponse { events: events.into_iter().map(convert::journal_event).collect() })
        }
        .await;
        respond(result)
    }

    async fn export_journal(
        &self,
        r: Request<pb::ExportJournalRequest>,
    ) -> Result<Response<Self::ExportJournalStream>, Status> {
        let r = r.into_inner();
        let f = filter(&r.source_id, &r.package_id, "")?;
        let store = self.0.store.clone();
        // Pages of PAGE rows, oldest first; memory stays bounded whatever the journal's size.
        let stream = async_stream_pages(store, f, r.from_sequence.max(1));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify_journal(
        &self,
        _: Request<pb::VerifyJournalRequest>,
    ) -> Result<Response<pb::VerifyJournalResponse>, Status> {
        let result = async {
            let mut verifier = Verifier::default();
            let mut from = 1;
            loop {
                let page = self.0.store.journal_page(&JournalFilter::default(), from, PAGE).await?;
                let Some(last) = page.last().map(|e| e.sequence) else { break };
                for e in &page {
                    if let Err(problem) = verifier.check(e) {
                        return Ok(pb::VerifyJournalResponse {
                            ok: false,
                            checked: verifier.checked,
                            first_bad_sequence: e.sequence,
                            problem,
                        });
                    }
                }
                from = last + 1;
            }
            Ok(pb::VerifyJournalResponse {
                ok: true,
                checked: verifier.checked,
                first_bad_sequence: 0,
                problem: String::new(),
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
