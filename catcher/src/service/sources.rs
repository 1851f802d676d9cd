//! SourceService: sources and the commands queued for their agents.

use edgebackup_proto::v1::{self as pb, source_service_server::SourceService};
use tonic::{Request, Response, Status};

use super::{Shared, commands_wire, convert, respond, respond_as, validate as v};
use crate::domain::CommandKind;
use crate::error::{Error, Result};
use crate::store::CommandFilter;
use crate::writer::{CreateCommand, NewCommand, RegisterSource};

pub struct Sources(pub Shared);

impl Sources {
    async fn get(&self, id: &str) -> Result<pb::Source> {
        let s = self.0.store.source(id).await?.ok_or_else(|| Error::not_found("source", id))?;
        let in_flight = self.0.store.resume_list(id).await?.len() as u64;
        Ok(convert::source(s, self.0.store.cursor(id).await?, in_flight))
    }

    async fn create_command(&self, actor: String, r: pb::CreateCommandRequest) -> Result<pb::CommandInfo> {
        let source_id = v::id("source_id", &r.source_id)?;
        let kind = v::command_kind("kind", r.kind, true)?.expect("required");
        let args = commands_wire::request_args("args", kind, r.args)?;
        let package_id =
            if r.package_id.is_empty() { String::new() } else { v::package_id("package_id", &r.package_id)? };
        if kind == CommandKind::Verify && package_id.is_empty() {
            return Err(Error::invalid("package_id", "required for verify"));
        }
        let n = NewCommand { source_id, package_id, args, actor };
        let c = self.0.writer.submit(CreateCommand(n)).await?;
        self.0.commands_due.notify_one();
        Ok(commands_wire::command_info(c))
    }
}

#[tonic::async_trait]
impl SourceService for Sources {
    async fn list_sources(
        &self,
        r: Request<pb::ListSourcesRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let who = super::caller(&r);
        let result = async {
            let in_flight = self.0.store.in_flight_by_source().await?;
            let mut out = Vec::new();
            for s in self.0.store.sources().await? {
                let n = in_flight.get(&s.source_id).copied().unwrap_or(0);
                let cursor = self.0.store.cursor(&s.source_id).await?;
                out.push(convert::source(s, cursor, n));
            }
            Ok(pb::ListSourcesResponse { sources: out })
        }
        .await;
        respond_as(&self.0, &who, result)
    }

    async fn get_source(&self, r: Request<pb::GetSourceRequest>) -> Result<Response<pb::Source>, Status> {
        let who = super::caller(&r);
        let result = async { self.get(&v::id("source_id", &r.get_ref().source_id)?).await }.await;
        respond_as(&self.0, &who, result)
    }

    async fn register_source(&self, r: Request<pb::RegisterSourceRequest>) -> Result<Response<pb::Source>, Status> {
        let actor = super::caller(&r).actor();
        let r = r.into_inner();
        let result = async {
            let source_id = v::id("source_id", &r.source_id)?;
            if r.label.chars().count() > 256 {
                return Err(Error::invalid("label", "longer than 256 characters"));
            }
            self.0.writer.submit(RegisterSource { source_id: source_id.clone(), label: r.label, actor }).await?;
            self.get(&source_id).await
        }
        .await;
        respond(result)
    }

    async fn create_command(&self, r: Request<pb::CreateCommandRequest>) -> Result<Response<pb::CommandInfo>, Status> {
        let actor = super::caller(&r).actor();
        respond(Sources::create_command(self, actor, r.into_inner()).await)
    }

    async fn list_commands(
        &self,
        r: Request<pb::ListCommandsRequest>,
    ) -> Result<Response<pb::ListCommandsResponse>, Status> {
        let who = super::caller(&r);
        let r = r.into_inner();
        let result = async {
            let source = (!r.source_id.is_empty()).then(|| v::id("source_id", &r.source_id)).transpose()?;
            let state = v::command_state("state", r.state, false)?;
            if state.is_some() && r.open {
                return Err(Error::invalid("open", "excludes state"));
            }
            let kind = v::command_kind("kind", r.kind, false)?;
            let limit = v::limit("limit", r.limit, 100, 1000)?;
            let filter = CommandFilter { source_id: source, state, open: r.open.then_some(true), kind };
            let cmds = self.0.store.commands(&filter, limit).await?;
            Ok(pb::ListCommandsResponse { commands: cmds.into_iter().map(commands_wire::command_info).collect() })
        }
        .await;
        respond_as(&self.0, &who, result)
    }
}
