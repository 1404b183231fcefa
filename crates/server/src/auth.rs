//! Who is calling. Sessions are signed cookies (HMAC-SHA256 with the key
//! every task reads from the registry's store): a random 128-bit session id,
//! the user, the account's session epoch, the login time and the last-seen
//! time. A session ends after `serve.session_idle_minutes` without a request,
//! `serve.session_max_hours` after login, and as soon as the account's epoch
//! moves (password, role or stores changed, disabled, logged out) on every
//! task (accounts are re-read at most every `serve.poll_seconds`). State-
//! changing requests carry a CSRF token bound to the session id: the
//! `X-CSRF-Token` header (API clients), or a form's `csrf` field (pages).
//! Logins are throttled per client address (`throttle.rs`) and per account
//! in the account itself (see `salescast_core::accounts`). Machine clients
//! send a bearer API token instead of a cookie (`bearer.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore as _;
use salescast_core::accounts::{Accounts, Role, User};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::bearer;
use crate::error::ApiError;
use crate::state::AppState;

pub const COOKIE: &str = "salescast_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The signed content of a session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    sid: String,
    user: String,
    epoch: u64,
    /// Login and last request, seconds since the epoch.
    iat: i64,
    seen: i64,
}

/// The authenticated caller of a request (an extension set by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Arc<User>,
    /// The session's CSRF token, for the forms a page renders.
    pub csrf: String,
}

impl Caller {
    /// 403 unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not see this (needs {} or above)",
                self.user.role.as_str(),
                role.as_str()
            )))
        }
    }

    /// May the caller see this store's data? Store users only their own.
    pub fn may_see(&self, store: &str) -> bool {
        self.user.role != Role::Store || self.user.stores.iter().any(|s| s == store)
    }
}

fn sign(key: &[u8; 32], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: the error cannot happen.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn encode(key: &[u8; 32], claims: &Claims) -> String {
    let payload = hex::encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = hex::encode(sign(key, payload.as_bytes()));
    format!("{payload}.{tag}")
}

fn decode(key: &[u8; 32], cookie: &str) -> Option<Claims> {
    let (payload, tag) = cookie.split_once('.')?;
    let tag = hex::decode(tag).ok()?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&tag).ok()?;
    serde_json::from_slice(&hex::decode(payload).ok()?).ok()
}

/// Equal bytes, compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The CSRF token of a session: bound to its id, unguessable without the key.
fn csrf_token(key: &[u8; 32], sid: &str) -> String {
    hex::encode(sign(key, format!("csrf:{sid}").as_bytes()))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// `Set-Cookie` for a session (or its removal with `None`).
fn set_cookie(state: &AppState, headers: &HeaderMap, value: Option<&str>) -> HeaderValue {
    let secure = state.config.serve.behind_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let max_age = match value {
        Some(_) => i64::from(state.config.serve.session_max_hours) * 3600,
        None => 0,
    };
    let text = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        value.unwrap_or(""),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The client's address: the socket's, or behind a load balancer the last
/// `X-Forwarded-For` entry (the one the balancer appended).
pub fn client_address(state: &AppState, headers: &HeaderMap, socket: SocketAddr) -> String {
    if state.config.serve.behind_proxy
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
    {
        return last.to_string();
    }
    socket.ip().to_string()
}

/// Runs the request, renewing a session cookie's last-seen time once a
/// minute (`session`: its claims and key; `None` for a bearer token).
pub(crate) async fn renew(
    state: &AppState,
    request: Request,
    next: Next,
    session: Option<(Claims, [u8; 32])>,
) -> Response {
    let headers = request.headers().clone();
    let mut response = next.run(request).await;
    let now = Utc::now().timestamp();
    // A response that sets the cookie itself (logout clears it) keeps it so.
    let sets_cookie = response.headers().contains_key(header::SET_COOKIE);
    if let Some((claims, key)) = session
        && !sets_cookie
        && now - claims.seen >= 60
    {
        let renewed = encode(&key, &Claims { seen: now, ..claims });
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(state, &headers, Some(&renewed)));
    }
    response
}

/// Is the body an HTML form's (`application/x-www-form-urlencoded`)?
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

/// Is the body's media type `expected` (its parameters, such as a charset,
/// aside)? `application/jsonx` is not `application/json`.
pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// A form post's `csrf` field: its body is read (at most
/// `serve.max_body_bytes`) and put back for the handler.
pub(crate) async fn form_csrf(
    state: &AppState,
    request: Request,
) -> Result<(Request, Option<String>), ApiError> {
    if !is_form(request.headers()) || matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.serve.max_body_bytes)
        .await
        .map_err(|_| ApiError::too_large("the form is larger than serve.max_body_bytes"))?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, axum::body::Body::from(bytes)), token))
}

/// The caller, and for a session its claims and the signing key (`None`
/// for a bearer token: no cookie to renew, no CSRF token needed since a
/// browser never sends one by itself).
pub(crate) async fn check(
    state: &AppState,
    headers: &HeaderMap,
    method: Method,
    form_csrf: Option<&str>,
) -> Result<(Caller, Option<(Claims, [u8; 32])>), ApiError> {
    if let Some(token) = bearer::token(headers) {
        let user = bearer::user(state, token).await?;
        return Ok((
            Caller {
                user,
                csrf: String::new(),
            },
            None,
        ));
    }
    let key = *state.session_key.load_full().ok_or_else(|| {
        ApiError::unauthorized("no accounts yet: add the first admin with `salescast users add`")
    })?;
    let cookie =
        cookie_value(headers, COOKIE).ok_or_else(|| ApiError::unauthorized("log in first (POST /login)"))?;
    let ended = || ApiError::unauthorized("the session has ended: log in again");
    let claims = decode(&key, cookie).ok_or_else(ended)?;
    let now = Utc::now().timestamp();
    let settings = &state.config.serve;
    if now - claims.iat > i64::from(settings.session_max_hours) * 3600
        || now - claims.seen > i64::from(settings.session_idle_minutes) * 60
    {
        return Err(ended());
    }
    let user = state.user(&claims.user).await?.ok_or_else(ended)?;
    if user.disabled || user.session_epoch != claims.epoch {
        return Err(ended());
    }
    let csrf = csrf_token(&key, &claims.sid);
    let safe = matches!(method, Method::GET | Method::HEAD);
    if !safe {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .or(form_csrf);
        if !given.is_some_and(|g| same(g.as_bytes(), csrf.as_bytes())) {
            return Err(ApiError::forbidden(
                "missing or wrong CSRF token (send the X-CSRF-Token the login gave)",
            ));
        }
    }
    Ok((Caller { user, csrf }, Some((claims, key))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

#[derive(Serialize)]
struct LoginResponse<'a> {
    user: &'a str,
    role: Role,
    stores: &'a [String],
    csrf_token: String,
}

/// The JSON answer to a login: who, their role and stores, and the CSRF
/// token; the session in the cookie.
pub(crate) fn login_response(user: &User, cookie: HeaderValue, csrf: String) -> Response {
    let body = LoginResponse {
        user: &user.name,
        role: user.role,
        stores: &user.stores,
        csrf_token: csrf,
    };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// The least time a refused login takes (see [`attempt`]): above an argon2id
/// check plus a few storage round trips.
const FAILED_LOGIN_FLOOR: std::time::Duration = std::time::Duration::from_millis(400);

/// One login attempt (throttled per address, checked and audited by the
/// accounts): the user, the new session's `Set-Cookie` and its CSRF token.
/// Every refusal takes at least [`FAILED_LOGIN_FLOOR`].
pub(crate) async fn attempt(
    state: &AppState,
    socket: SocketAddr,
    headers: &HeaderMap,
    name: String,
    password: String,
) -> Result<(User, HeaderValue, String), ApiError> {
    let from = client_address(state, headers, socket);
    if !state.allow_login_attempt(&from) {
        return Err(ApiError::too_many(
            "too many login attempts from this address: wait a minute",
        ));
    }
    let Some(key) = state.session_key.load_full() else {
        return Err(ApiError::unauthorized(
            "no accounts yet: add the first admin with `salescast users add`",
        ));
    };
    let accounts = Accounts::new(state.registry.store().clone());
    let started = tokio::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || accounts.login(&name, &password, &from)).await;
    let user = match outcome {
        Ok(Ok(Some(user))) => user,
        Ok(Ok(None)) => {
            // A wrong password also counts the failure in the account (a
            // read and a write more than for an unknown name): every refusal
            // takes at least this long, so its time does not tell them apart.
            tokio::time::sleep_until(started + FAILED_LOGIN_FLOOR).await;
            return Err(ApiError::unauthorized("wrong user name or password"));
        }
        Ok(Err(e)) => return Err(ApiError::internal(e.into())),
        Err(e) => return Err(ApiError::internal(e.into())),
    };
    state.forget_user(&user.name);
    let mut sid = [0u8; 16];
    rand::rng().fill_bytes(&mut sid);
    let now = Utc::now().timestamp();
    let claims = Claims {
        sid: hex::encode(sid),
        user: user.name.clone(),
        epoch: user.session_epoch,
        iat: now,
        seen: now,
    };
    let cookie = set_cookie(state, headers, Some(&encode(&key, &claims)));
    Ok((user, cookie, csrf_token(&key, &claims.sid)))
}

/// `POST /logout`: ends every session of the caller (the account's epoch
/// moves, on every task) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let accounts = Accounts::new(state.registry.store().clone());
    let from = client_address(&state, &headers, socket);
    let name = caller.user.name.clone();
    let ended = tokio::task::spawn_blocking(move || accounts.end_sessions(&name, &from)).await;
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return ApiError::internal(e.into()).into_response(),
        Err(e) => return ApiError::internal(e.into()).into_response(),
    }
    state.forget_user(&caller.user.name);
    // A page's logout form goes back to the login page.
    let mut response = if is_form(&headers) {
        axum::response::Redirect::to("/login?ended=1").into_response()
    } else {
        axum::Json(serde_json::json!({"logged_out": caller.user.name})).into_response()
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, &headers, None));
    response
}
