//! Who may call what: one table over every RPC, enforced by one tower layer in front of all
//! services, so a new RPC cannot be forgotten (it falls to the strictest row, and the matrix
//! test walks the descriptor set).
//!
//! Until people sign in with tokens (the next step), calls without a credential reach the
//! people's RPCs as before; an agent credential reaches only what agents need, and
//! `AgentService.Connect` needs one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::identity::{ConnInfo, Identities, Principal};

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health, reflection, enrollment (which checks its own token).
    Public,
    /// Only an enrolled agent.
    Agent,
    /// An agent (for its own source: the handler checks which) or a person.
    AgentOrPerson,
    /// People only: an agent credential is refused.
    Person,
}

/// The RPCs an agent needs besides its stream: its packages and its catalog (restores).
const AGENT_CALLS: &[&str] = &[
    "/edgebackup.v1.PackageService/IngestPackage",
    "/edgebackup.v1.PackageService/UpdatePackage",
    "/edgebackup.v1.PackageService/GetResumeList",
    "/edgebackup.v1.PackageService/GetPackage",
    "/edgebackup.v1.CatalogService/ListState",
    "/edgebackup.v1.CatalogService/ListFolder",
    "/edgebackup.v1.CatalogService/ListFolders",
    "/edgebackup.v1.CatalogService/ListVersions",
];

/// The access row of a method path (`/package.Service/Method`).
pub fn access(path: &str) -> Access {
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return Access::Public;
    }
    match path {
        "/edgebackup.v1.EnrollService/Enroll" => Access::Public,
        "/edgebackup.v1.AgentService/Connect" | "/edgebackup.v1.EnrollService/Renew" => Access::Agent,
        p if AGENT_CALLS.contains(&p) => Access::AgentOrPerson,
        _ => Access::Person,
    }
}

/// Whether `who` may call a method with `access`; the refusal otherwise.
pub fn check(access: Access, who: &Principal) -> Result<(), Status> {
    match (access, who) {
        (Access::Public, _) | (Access::AgentOrPerson, _) => Ok(()),
        (Access::Agent, Principal::Agent { .. }) => Ok(()),
        (Access::Agent, Principal::Anonymous) => Err(Status::unauthenticated(
            "an agent credential is required: enroll the agent (agent enroll --catcher URL --token TOKEN) \
             and connect over TLS",
        )),
        (Access::Person, Principal::Anonymous) => Ok(()),
        (Access::Person, Principal::Agent { source_id, .. }) => {
            Err(Status::permission_denied(format!("an agent credential ({source_id}) may not call this")))
        }
    }
}

/// The layer: resolves the caller, applies the table, hands the `Principal` to the handler.
#[derive(Clone)]
pub struct AuthLayer {
    identities: Arc<Identities>,
}

impl AuthLayer {
    pub fn new(identities: Arc<Identities>) -> Self {
        Self { identities }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize { inner, identities: self.identities.clone() }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    identities: Arc<Identities>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Authorize<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone that was made ready serves this call; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let identities = self.identities.clone();
        Box::pin(async move {
            let access = access(req.uri().path());
            let who = if access == Access::Public {
                Ok(Principal::Anonymous)
            } else {
                identities.resolve(req.extensions().get::<ConnInfo>()).await.map_err(Status::from)
            };
            match who.and_then(|who| check(access, &who).map(|()| who)) {
                Ok(who) => {
                    req.extensions_mut().insert(who);
                    inner.call(req).await
                }
                Err(status) => Ok(refusal(status)),
            }
        })
    }
}

fn refusal(status: Status) -> http::Response<tonic::body::Body> {
    if !matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied) {
        tracing::warn!(code = ?status.code(), message = status.message(), "checking a credential failed");
    }
    status.into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_reach_only_what_agents_need() {
        let agent = Principal::Agent { source_id: "a".into(), mover: false, serial: "01".into() };
        let code = |path: &str, who: &Principal| check(access(path), who).err().map(|s| s.code());
        assert_eq!(code("/edgebackup.v1.AgentService/Connect", &agent), None);
        assert_eq!(code("/edgebackup.v1.AgentService/Connect", &Principal::Anonymous), Some(Code::Unauthenticated));
        assert_eq!(code("/edgebackup.v1.CatalogService/ListState", &agent), None);
        for path in [
            "/edgebackup.v1.PackageService/DeletePackage",
            "/edgebackup.v1.PolicyService/UpdateRuleSet",
            "/edgebackup.v1.PolicyService/ApplyPreset",
            "/edgebackup.v1.SourceService/CreateCommand",
            "/edgebackup.v1.NewService/Anything",
        ] {
            assert_eq!(code(path, &agent), Some(Code::PermissionDenied), "{path}");
        }
        assert_eq!(code("/grpc.health.v1.Health/Check", &agent), None);
    }
}
