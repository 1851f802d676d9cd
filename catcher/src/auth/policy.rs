//! Who may call what: one table over every RPC, enforced by one tower layer in front of all
//! services, so a new RPC cannot be forgotten (it falls to the strictest row, admin only, and
//! the matrix test walks the descriptor set). People's roles nest: viewer < operator < admin.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::identity::{ConnInfo, Identities, Principal};
use crate::domain::Role;

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health, reflection, enrollment (which checks its own token).
    Public,
    /// Only an enrolled agent.
    Agent,
    /// An agent (for its own source: the handler checks which) or a person with the role.
    AgentOr(Role),
    /// A person with at least the role; an agent credential is refused.
    Person(Role),
}

/// What an agent needs besides its stream: its packages and its catalog (restores).
const AGENT_READS: &[&str] = &[
    "/edgebackup.v1.PackageService/GetResumeList",
    "/edgebackup.v1.PackageService/GetPackage",
    "/edgebackup.v1.PackageService/ListPackages",
    "/edgebackup.v1.CatalogService/ListState",
    "/edgebackup.v1.CatalogService/ListFolder",
    "/edgebackup.v1.CatalogService/ListFolders",
    "/edgebackup.v1.CatalogService/ListVersions",
    "/edgebackup.v1.AccessService/WhoAmI",
];

/// Writes an agent makes about its own packages; people do not fabricate packages.
const AGENT_WRITES: &[&str] =
    &["/edgebackup.v1.PackageService/IngestPackage", "/edgebackup.v1.PackageService/UpdatePackage"];

/// What a viewer may read.
const VIEWER: &[&str] = &[
    "/edgebackup.v1.StatusService/GetStatus",
    "/edgebackup.v1.StatusService/GetTierSummary",
    "/edgebackup.v1.StatusService/GetProjections",
    "/edgebackup.v1.StatusService/Watch",
    "/edgebackup.v1.SourceService/ListSources",
    "/edgebackup.v1.SourceService/GetSource",
    "/edgebackup.v1.SourceService/ListCommands",
    "/edgebackup.v1.PolicyService/ListRuleSets",
    "/edgebackup.v1.PolicyService/GetRuleSet",
    "/edgebackup.v1.PolicyService/ListPresets",
    "/edgebackup.v1.PolicyService/ListStations",
    "/edgebackup.v1.PolicyService/ListConfigSnapshots",
    "/edgebackup.v1.PolicyService/GetConfigSnapshot",
    "/edgebackup.v1.PolicyService/ExportConfigSnapshot",
    "/edgebackup.v1.PolicyService/ListPendingChanges",
    "/edgebackup.v1.JournalService/QueryJournal",
    "/edgebackup.v1.JournalService/ExportJournal",
    "/edgebackup.v1.JournalService/VerifyJournal",
    "/edgebackup.v1.CatalogService/SearchFiles",
    "/edgebackup.v1.CatalogService/GetCoverage",
    "/edgebackup.v1.AlertService/ListAlerts",
    "/edgebackup.v1.AlertService/ListChannels",
    "/edgebackup.v1.AlertService/GetRecoveryPoints",
];

/// What an operator may change: rules, presets, snapshots, commands, sources.
const OPERATOR: &[&str] = &[
    "/edgebackup.v1.PolicyService/UpdateRuleSet",
    "/edgebackup.v1.PolicyService/ApplyPreset",
    "/edgebackup.v1.PolicyService/CreateConfigSnapshot",
    "/edgebackup.v1.PolicyService/RestoreConfigSnapshot",
    "/edgebackup.v1.PolicyService/CancelPendingChange",
    "/edgebackup.v1.SourceService/CreateCommand",
    "/edgebackup.v1.SourceService/RegisterSource",
    "/edgebackup.v1.AlertService/AcknowledgeAlert",
    "/edgebackup.v1.AlertService/TestChannel",
];

/// The access row of a method path (`/package.Service/Method`).
pub fn access(path: &str) -> Access {
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return Access::Public;
    }
    match path {
        "/edgebackup.v1.EnrollService/Enroll" => Access::Public,
        // What an agent's checks found is the agent's to vouch for; people order a Verify command.
        "/edgebackup.v1.AgentService/Connect"
        | "/edgebackup.v1.EnrollService/Renew"
        | "/edgebackup.v1.PackageService/ReportCopyChecks" => Access::Agent,
        p if AGENT_READS.contains(&p) => Access::AgentOr(Role::Viewer),
        p if AGENT_WRITES.contains(&p) => Access::AgentOr(Role::Admin),
        p if VIEWER.contains(&p) => Access::Person(Role::Viewer),
        p if OPERATOR.contains(&p) => Access::Person(Role::Operator),
        // Deletes, credentials, and whatever is added later without a row.
        _ => Access::Person(Role::Admin),
    }
}

/// Whether `who` may call a method with `access`; the refusal otherwise.
pub fn check(access: Access, who: &Principal) -> Result<(), Status> {
    let role_needed = match (access, who) {
        (Access::Public, _) => return Ok(()),
        (Access::Agent | Access::AgentOr(_), Principal::Agent { .. }) => return Ok(()),
        (Access::Agent, Principal::Anonymous | Principal::Person { .. }) => {
            return Err(Status::unauthenticated(
                "an agent credential is required: enroll the agent (agent enroll --catcher URL --token TOKEN) \
                 and connect over TLS",
            ));
        }
        (Access::Person(_), Principal::Agent { source_id, .. }) => {
            return Err(Status::permission_denied(format!("an agent credential ({source_id}) may not call this")));
        }
        (Access::AgentOr(role) | Access::Person(role), _) => role,
    };
    match who {
        Principal::Person { role, .. } if *role >= role_needed => Ok(()),
        Principal::Person { name, role, .. } => {
            Err(Status::permission_denied(format!("this needs the {role_needed} role; the token {name:?} is {role}")))
        }
        _ => Err(Status::unauthenticated(
            "a credential is required: `authorization: Bearer <token>` (catcher token create), \
             or an agent's certificate",
        )),
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
                let authorization = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
                identities.resolve(req.extensions().get::<ConnInfo>(), authorization).await.map_err(Status::from)
            };
            match who.and_then(|who| check(access, &who).map(|()| who)) {
                Ok(who) => {
                    let revoked = match &who {
                        Principal::Person { name, .. } => Some(identities.ended_when_revoked(name)),
                        _ => None,
                    };
                    req.extensions_mut().insert(who);
                    let response = inner.call(req).await?;
                    Ok(match revoked {
                        // A stream (Watch, exports) must not outlive its token.
                        Some(revoked) => {
                            response.map(|body| tonic::body::Body::new(EndsWhenRevoked::new(body, revoked)))
                        }
                        None => response,
                    })
                }
                Err(status) => Ok(refusal(status)),
            }
        })
    }
}

/// A response body that ends with UNAUTHENTICATED once its caller's token is revoked.
struct EndsWhenRevoked {
    inner: tonic::body::Body,
    revoked: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    done: bool,
}

impl EndsWhenRevoked {
    fn new(inner: tonic::body::Body, revoked: tokio_util::sync::CancellationToken) -> Self {
        Self { inner, revoked: Box::pin(revoked.cancelled_owned()), done: false }
    }
}

impl http_body::Body for EndsWhenRevoked {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.revoked.as_mut().poll(cx).is_ready() {
            self.done = true;
            let status = Status::unauthenticated("authorization: the token was revoked");
            let mut trailers = http::HeaderMap::new();
            let _ = status.add_header(&mut trailers);
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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

    #[test]
    fn roles_nest_and_new_rpcs_need_an_admin() {
        let person = |role| Principal::Person { name: "p".into(), role, unredacted: false };
        let code = |path: &str, who: &Principal| check(access(path), who).err().map(|s| s.code());
        let (viewer, operator, admin) = (person(Role::Viewer), person(Role::Operator), person(Role::Admin));
        let read = "/edgebackup.v1.StatusService/GetStatus";
        let change = "/edgebackup.v1.PolicyService/UpdateRuleSet";
        let delete = "/edgebackup.v1.PackageService/DeletePackage";
        assert_eq!([code(read, &viewer), code(read, &operator), code(read, &admin)], [None, None, None]);
        assert_eq!(code(change, &viewer), Some(Code::PermissionDenied));
        assert_eq!([code(change, &operator), code(change, &admin)], [None, None]);
        assert_eq!(code(delete, &operator), Some(Code::PermissionDenied));
        assert_eq!(code(delete, &admin), None);
        assert_eq!(code("/edgebackup.v1.NewService/Anything", &operator), Some(Code::PermissionDenied));
        assert_eq!(code(read, &Principal::Anonymous), Some(Code::Unauthenticated));
        assert_eq!(code("/edgebackup.v1.AgentService/Connect", &admin), Some(Code::Unauthenticated));
    }
}
