//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the catcher's spans and logs reach a
//! real OTLP/gRPC collector (a tonic server speaking the OpenTelemetry protocol, here in the
//! test): an agent stream read is one trace, its group commit links to it, the live views'
//! publication is a child of the commit. A collector not on loopback is refused, and the catcher
//! runs on without exporting.

use std::sync::{Arc, Mutex};

use edgebackup_proto::v1 as pb;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};

use crate::agent::{ScriptedAgent, complete, ingest};
use crate::harness::{Catcher, Db, TestDb, eventually};

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    logs: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        r: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in r.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push((service.clone(), s));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        r: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let mut logs = self.logs.lock().unwrap();
        for rl in r.into_inner().resource_logs {
            for record in rl.scope_logs.into_iter().flat_map(|s| s.log_records) {
                let body = match record.body.and_then(|b| b.value) {
                    Some(Value::StringValue(s)) => s,
                    other => format!("{other:?}"),
                };
                logs.push(body);
            }
        }
        Ok(Response::new(ExportLogsServiceResponse { partial_success: None }))
    }
}

impl Collector {
    /// Serves OTLP/gRPC on a loopback port; answers its URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self.clone()))
            .add_service(LogsServiceServer::new(self.clone()));
        tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
        format!("http://{addr}")
    }

    fn named(&self, name: &str) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().iter().filter(|(_, s)| s.name == name).cloned().collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_logs_reach_an_otlp_collector() {
    let collector = Collector::default();
    let url = collector.start().await;
    let db = TestDb::new(Db::Sqlite).await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
    ];
    let catcher = Catcher::start_with(&db, &env).await;
    let mut agent = ScriptedAgent::enroll(&catcher, "edge-o", &[pb::Capability::Backup]).await;
    let id = uuid::Uuid::now_v7().to_string();
    let sha = "cd".repeat(32);
    agent.send(1, ingest(&id, "/srv/t.bin", 64, "")).await;
    agent.send(2, complete(&id, &sha, 64, "hot")).await;
    agent.wait_ack(2).await;

    // The stream's read, the commit that made it durable (linked), the publication (a child).
    let (reads, commit) = eventually("an agent_events span and the group commit linked to it", 30, || async {
        let reads = collector.named("agent_events");
        let commit = collector.named("group_commit").into_iter().map(|(_, s)| s).find(|c| {
            c.links.iter().any(|l| reads.iter().any(|(_, r)| r.span_id == l.span_id && r.trace_id == l.trace_id))
        })?;
        Some((reads, commit))
    })
    .await;
    assert!(reads.iter().all(|(service, _)| service == "edgebackup-catcher"), "{reads:?}");
    let read = &reads[0].1;
    let attribute = |s: &Span, key: &str| s.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone());
    assert!(
        matches!(attribute(read, "source_id").and_then(|v| v.value), Some(Value::StringValue(s)) if s == "edge-o"),
        "{read:?}"
    );
    eventually("the publication as a child of a commit", 30, || async {
        let commits: Vec<Span> = collector.named("group_commit").into_iter().map(|(_, s)| s).collect();
        collector
            .named("publish_changes")
            .into_iter()
            .any(|(_, p)| commits.iter().any(|c| c.span_id == p.parent_span_id && c.trace_id == p.trace_id))
            .then_some(())
    })
    .await;
    assert!(!commit.trace_id.is_empty());
    eventually("the catcher's log records", 30, || async {
        let logs = collector.logs.lock().unwrap().clone();
        (logs.iter().any(|l| l.contains("agent connected")) && logs.iter().any(|l| l.contains("catcher serving")))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_off_this_host_is_refused_and_the_catcher_runs_on() {
    let db = TestDb::new(Db::Sqlite).await;
    let catcher =
        Catcher::start_with(&db, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example.com:4317")]).await;
    let log = catcher.log_text();
    assert!(log.contains("OpenTelemetry export is off") && log.contains("loopback"), "{log}");
    let mut c = catcher.clients().await;
    c.status.get_status(pb::GetStatusRequest {}).await.expect("serving");
}
