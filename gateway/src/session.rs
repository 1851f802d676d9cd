//! People's sessions: `POST /api/login` checks a token with the catcher (`WhoAmI`) and keeps it
//! here behind a random session id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS);
//! the forwarder puts the token on every grpc-web call of that session. The page never holds
//! the token. A session ends at logout, after `IDLE` without use, or when the catcher stops
//! accepting its token (revoked or expired: `/api/session` then answers 401).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use edgebackup_proto::v1 as pb;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::server::AppState;

/// The cookie's name.
pub const COOKIE: &str = "ebk_session";
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;
/// How long the catcher gets to answer a login.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a session is, as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub role: &'static str,
    pub unredacted: bool,
}

struct Session {
    token: String,
    used: Instant,
}

/// Every open session, by id.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// The token of the session named by `headers`' cookie, if it is open (and marks it used).
    pub fn token(&self, headers: &HeaderMap) -> Option<String> {
        let id = session_id(headers)?;
        let mut open = self.open.lock().expect("sessions");
        let s = open.get_mut(&id)?;
        if s.used.elapsed() > IDLE {
            open.remove(&id);
            return None;
        }
        s.used = Instant::now();
        Some(s.token.clone())
    }

    fn start(&self, token: String) -> Result<String, String> {
        let mut id = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut id)
            .map_err(|_| "the system random generator failed".to_owned())?;
        let id = hex::encode(id);
        let mut open = self.open.lock().expect("sessions");
        open.retain(|_, s| s.used.elapsed() <= IDLE);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), Session { token, used: Instant::now() });
        Ok(id)
    }

    fn end(&self, headers: &HeaderMap) {
        if let Some(id) = session_id(headers) {
            self.open.lock().expect("sessions").remove(&id);
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_owned())
    })
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Asks the catcher who `token` is; a person's token answers with the person.
async fn who_is(state: &AppState, token: &str) -> Result<Person, Response> {
    let channel = edgebackup_common::client::as_person(state.upstreams.pick().channel.clone(), Some(token))
        .map_err(|e| error(StatusCode::UNAUTHORIZED, format!("token: {e}")))?;
    let mut access = pb::access_service_client::AccessServiceClient::new(channel);
    let answer = tokio::time::timeout(CHECK_TIMEOUT, access.who_am_i(pb::WhoAmIRequest {})).await;
    let who = match answer {
        Ok(Ok(r)) => r.into_inner().who,
        Ok(Err(s)) if matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
            return Err(error(StatusCode::UNAUTHORIZED, s.message()));
        }
        Ok(Err(s)) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, format!("the catcher: {}", s.message()))),
        Err(_) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the catcher did not answer")),
    };
    let Some(pb::who_am_i_response::Who::Person(p)) = who else {
        return Err(error(StatusCode::UNAUTHORIZED, "token: not a person's token"));
    };
    let role = match p.role() {
        pb::Role::Viewer => "viewer",
        pb::Role::Operator => "operator",
        pb::Role::Admin => "admin",
        pb::Role::Unspecified => return Err(error(StatusCode::UNAUTHORIZED, "token: it has no role")),
    };
    Ok(Person { name: p.name, role, unredacted: p.unredacted || role != "viewer" })
}

fn cookie(value: &str, secure: bool, max_age: Option<u32>) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("a cookie of ASCII")
}

/// `POST /api/login` `{"token": "ebk_token_…"}`.
pub async fn login(State(state): State<AppState>, Json(body): Json<Login>) -> Response {
    let token = body.token.trim().to_owned();
    if token.is_empty() || token.len() > 256 {
        return error(StatusCode::BAD_REQUEST, "token: required");
    }
    let person = match who_is(&state, &token).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match state.sessions.start(token) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    tracing::info!(person = %person.name, role = person.role, "signed in");
    let mut response = Json(person).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&id, state.tls, None));
    response
}

/// `GET /api/session`: who is signed in, asked of the catcher again so a revoked token ends it.
pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.sessions.token(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    match who_is(&state, &token).await {
        Ok(person) => Json(person).into_response(),
        Err(r) => {
            if r.status() == StatusCode::UNAUTHORIZED {
                state.sessions.end(&headers);
            }
            r
        }
    }
}

/// `POST /api/logout`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.sessions.end(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie("", state.tls, Some(0)));
    response
}

/// Shared by the server and the forwarder.
pub type SharedSessions = Arc<Sessions>;
