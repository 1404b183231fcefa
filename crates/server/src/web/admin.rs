//! The admin page (admin only): user accounts (add, set role and stores,
//! reset password, disable and enable), API tokens (created and shown once,
//! revoked), the rollback of the champion (a reason required; it goes
//! through the registry's one promotion protocol, so the decision log names
//! the admin) and the newest audit entries. Every change is a form post with
//! the session's CSRF token (checked by `require_session`), written by the
//! core with a conditional write and audited with the admin and the client
//! address; a success redirects back (post/redirect/get), a refusal shows the
//! page again with the reason.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use salescast_core::accounts::{Accounts, AccountsError, Change, Role};
use salescast_core::config::ConfigError;
use salescast_core::pipeline::rollback;
use salescast_core::pipeline::rollback::RollbackError;
use salescast_core::registry::RegistryError;
use serde::Deserialize;

use super::PageError;
use super::extract::{Admin, PageForm, PagePath};
use super::view::{self, Nav, render};
use crate::auth::{Caller, client_address};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/users", post(add_user))
        .route("/admin/users/{name}/{action}", post(change_user))
        .route("/admin/rollback", post(roll_back))
        .route("/admin/tokens", post(add_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
}

pub struct UserRow {
    name: String,
    role: Role,
    stores: String,
    disabled: bool,
}

pub struct TokenRow {
    id: String,
    user: String,
    label: String,
    created: String,
    state: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    champion: Option<String>,
    /// (version, label, preselected)
    versions: Vec<(String, String, bool)>,
    users: Vec<UserRow>,
    roles: [Role; 4],
    tokens: Vec<TokenRow>,
    audit: Vec<(String, String, String, String, String, String)>,
}

/// The change a redirect back to the page reports: `done` (what) and `subject` (whom).
#[derive(Debug)]
pub(super) struct Done {
    pub(super) done: Option<String>,
    pub(super) subject: Option<String>,
}

impl Done {
    /// From the raw query string (see [`view::query_values`]).
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let [done, subject] = view::query_values(raw, ["done", "subject"])?;
        Ok(Self { done, subject })
    }
}

/// What a successful change says when the page comes back (fixed texts: a
/// link cannot make the page say anything else).
pub(super) fn done_message(done: &Done) -> Option<String> {
    // A name, a hash prefix or a token id: nothing else is shown.
    let subject = done
        .subject
        .clone()
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))?;
    let text = match done.done.as_deref()? {
        "added" => format!("User {subject} added."),
        "role" => format!("Role and stores of {subject} changed; their sessions ended."),
        "password" => format!("Password of {subject} reset; their sessions ended."),
        "disable" => format!("User {subject} disabled; their sessions ended."),
        "enable" => format!("User {subject} enabled."),
        "rollback" => {
            format!("Rolled back: {subject} is the champion. Servers follow within their poll interval.")
        }
        "revoked" => format!("Token {subject} revoked."),
        _ => return None,
    };
    Some(text)
}

async fn page(
    State(state): State<AppState>,
    Admin(caller): Admin,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let done = Done::parse(raw.as_deref())?;
    show(&state, &caller, done_message(&done), StatusCode::OK).await
}

/// The admin page, with a message and status (a refusal shows it again).
async fn show(
    state: &AppState,
    caller: &Caller,
    message: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let accounts = Accounts::new(state.registry.store().clone());
    let registry = state.registry.clone();
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let users = accounts.list()?;
        let tokens = accounts.tokens()?;
        let audit = accounts.audit().newest(50)?;
        let versions = registry.versions()?.whole;
        let champion = registry.champion()?.map(|(c, _)| c);
        Ok((users, tokens, audit, versions, champion))
    })
    .await
    .map_err(|e| ApiError::internal(e.into()))?
    .map_err(ApiError::internal)?;
    let (users, tokens, audit, versions, champion) = read;
    let previous = champion.as_ref().and_then(|c| c.previous.clone());
    let current = champion.as_ref().map(|c| c.version.clone());
    let mut page = render(&AdminPage {
        nav: Some(Nav::new(caller, "admin")),
        csrf: caller.csrf.clone(),
        message,
        versions: versions
            .iter()
            .rev()
            .filter(|m| Some(&m.version) != current.as_ref())
            .map(|m| {
                let label = format!(
                    "{} · {} · trained through {} · holdout WAPE {}",
                    view::short(&m.version),
                    m.family,
                    m.lineage.trained_through,
                    view::share(Some(m.holdout_metrics.wape)),
                );
                (m.version.clone(), label, Some(&m.version) == previous.as_ref())
            })
            .collect(),
        champion: current,
        users: users
            .iter()
            .map(|u| UserRow {
                name: u.name.clone(),
                role: u.role,
                stores: u.stores.join(","),
                disabled: u.disabled,
            })
            .collect(),
        roles: [Role::Store, Role::Manager, Role::Analyst, Role::Admin],
        tokens: tokens
            .iter()
            .rev()
            .map(|t| TokenRow {
                id: t.id.clone(),
                user: t.user.clone(),
                label: t.label.clone(),
                created: format!("{} by {}", t.created_at.format("%Y-%m-%d %H:%M"), t.created_by),
                state: match (&t.revoked_at, &t.revoked_by) {
                    (Some(at), Some(by)) => format!("revoked {} by {by}", at.format("%Y-%m-%d %H:%M")),
                    (Some(at), None) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    _ => "active".into(),
                },
                active: t.revoked_at.is_none(),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|a| {
                (
                    a.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    a.actor,
                    a.event,
                    a.subject.unwrap_or_default(),
                    a.from,
                    a.detail,
                )
            })
            .collect(),
    })?;
    *page.status_mut() = status;
    Ok(page)
}

/// A refused change: the page again with why (4xx), or an internal error.
async fn refused(state: &AppState, caller: &Caller, err: anyhow::Error) -> Result<Response, PageError> {
    let status = if let Some(e) = err.downcast_ref::<AccountsError>() {
        match e {
            AccountsError::Invalid { .. } => StatusCode::BAD_REQUEST,
            AccountsError::UnknownUser { .. } | AccountsError::UnknownToken { .. } => StatusCode::NOT_FOUND,
            AccountsError::TokenRevoked { .. } => StatusCode::CONFLICT,
            AccountsError::Exists { .. } | AccountsError::Concurrent { .. } => StatusCode::CONFLICT,
            _ => return Err(ApiError::internal(err).into()),
        }
    } else if err.chain().any(|c| {
        matches!(c.downcast_ref::<ConfigError>(), Some(ConfigError::Invalid { .. }))
            || c.is::<RollbackError>()
            || matches!(
                c.downcast_ref::<RegistryError>(),
                Some(RegistryError::UnknownVersion { .. } | RegistryError::AmbiguousVersion { .. })
            )
    }) {
        StatusCode::BAD_REQUEST
    } else if err.chain().any(|c| {
        matches!(
            c.downcast_ref::<RegistryError>(),
            Some(RegistryError::Superseded { .. })
        )
    }) {
        StatusCode::CONFLICT
    } else if err.chain().any(|c| {
        matches!(
            c.downcast_ref::<RegistryError>(),
            Some(
                RegistryError::Missing { .. }
                    | RegistryError::Corrupt { .. }
                    | RegistryError::Unreadable { .. }
            )
        )
    }) {
        // A rollback target that is not whole: what is wrong with it, and
        // what to do (the registry's message says both).
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        return Err(ApiError::internal(err).into());
    };
    let message = match (err.downcast_ref::<ConfigError>(), status) {
        (Some(ConfigError::Invalid { problem, .. }), _) => problem.clone(),
        // A lost race names storage addresses: say what happened instead.
        (_, StatusCode::CONFLICT) if err.downcast_ref::<AccountsError>().is_none() => {
            "another change to the champion came first; reload the page and try again".into()
        }
        _ => format!("{err:#}"),
    };
    show(state, caller, Some(format!("Not done: {message}")), status).await
}

fn back(done: &str, subject: &str) -> Response {
    let subject: String = form_urlencoded::byte_serialize(subject.as_bytes()).collect();
    Redirect::to(&format!("/admin?done={done}&subject={subject}")).into_response()
}

/// Comma-separated store names, trimmed, empty ones dropped.
fn stores(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    stores: String,
    password: String,
}

async fn add_user(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<NewUser>,
) -> Result<Response, PageError> {
    let accounts =
        Accounts::new(state.registry.store().clone()).from(&client_address(&state, &headers, socket));
    let actor = caller.user.name.clone();
    let name = form.name.trim().to_string();
    let added = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let role: Role = form.role.parse()?;
        accounts.add(&name, role, &stores(&form.stores), &form.password, &actor)?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(e.into()))?;
    match added {
        Ok(()) => Ok(back("added", form.name.trim())),
        Err(e) => refused(&state, &caller, e).await,
    }
}

#[derive(Deserialize)]
struct UserChange {
    role: Option<String>,
    stores: Option<String>,
    password: Option<String>,
}

async fn change_user(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PagePath((name, action)): PagePath<(String, String)>,
    PageForm(form): PageForm<UserChange>,
) -> Result<Response, PageError> {
    let change = match action.as_str() {
        "disable" if name == caller.user.name => {
            return refused(
                &state,
                &caller,
                AccountsError::Invalid {
                    what: "change",
                    problem: "an admin cannot disable their own account here (another admin can)".into(),
                }
                .into(),
            )
            .await;
        }
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "password" => Change::Password(form.password.unwrap_or_default()),
        "role" => match form.role.as_deref().unwrap_or("").parse::<Role>() {
            Ok(role) => Change::Role {
                role,
                stores: stores(form.stores.as_deref().unwrap_or("")),
            },
            Err(e) => return refused(&state, &caller, e.into()).await,
        },
        other => return Err(ApiError::not_found(format!("no user action {other:?}")).into()),
    };
    let accounts =
        Accounts::new(state.registry.store().clone()).from(&client_address(&state, &headers, socket));
    let actor = caller.user.name.clone();
    let subject = name.clone();
    let changed = tokio::task::spawn_blocking(move || accounts.change(&subject, change, &actor))
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    state.forget_user(&name);
    match changed {
        Ok(_) => Ok(back(&action, &name)),
        Err(e) => refused(&state, &caller, e.into()).await,
    }
}

#[derive(Deserialize)]
struct RollbackForm {
    to: String,
    reason: String,
}

async fn roll_back(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<RollbackForm>,
) -> Result<Response, PageError> {
    let registry = state.registry.clone();
    let audit = Accounts::new(state.registry.store().clone())
        .from(&client_address(&state, &headers, socket))
        .audit();
    let actor = caller.user.name.clone();
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let report = rollback(&registry, Some(form.to.trim()), form.reason.trim(), &actor)?;
        // Done and in the decision log: a failed audit write is logged, not
        // answered as a failure of the rollback.
        let detail = format!(
            "{} -> {} (decision {}): {}",
            report.from, report.to, report.decision_sequence, report.reason
        );
        if let Err(e) = audit.record(&actor, "rolled_back", None, &detail) {
            tracing::error!("the rollback ({detail}) is done but its audit entry failed: {e}");
        }
        Ok(report.to)
    })
    .await
    .map_err(|e| ApiError::internal(e.into()))?;
    state.forget_model_history();
    match done {
        Ok(to) => Ok(back("rollback", &view::short(&to))),
        Err(e) => refused(&state, &caller, e).await,
    }
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    nav: Option<Nav>,
    user: String,
    label: String,
    token: String,
}

#[derive(Deserialize)]
struct NewToken {
    user: String,
    label: String,
}

/// A new token, shown on this answer only (never stored or logged in clear).
async fn add_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<NewToken>,
) -> Result<Response, PageError> {
    let accounts = Accounts::new(state.registry.store().clone());
    let from = client_address(&state, &headers, socket);
    let actor = caller.user.name.clone();
    let (user, label) = (form.user.clone(), form.label.clone());
    let made = tokio::task::spawn_blocking(move || accounts.create_token(&user, &label, &actor, &from))
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    match made {
        Ok((token, text)) => {
            let mut page = render(&TokenPage {
                nav: Some(Nav::new(&caller, "admin")),
                user: token.user,
                label: token.label,
                token: text,
            })?;
            *page.status_mut() = StatusCode::CREATED;
            Ok(page)
        }
        Err(e) => refused(&state, &caller, e.into()).await,
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PagePath(id): PagePath<String>,
) -> Result<Response, PageError> {
    let accounts = Accounts::new(state.registry.store().clone());
    let from = client_address(&state, &headers, socket);
    let actor = caller.user.name.clone();
    let token = id.clone();
    let revoked = tokio::task::spawn_blocking(move || accounts.revoke_token(&token, &actor, &from))
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    match revoked {
        Ok(_) => Ok(back("revoked", &id)),
        Err(e) => refused(&state, &caller, e.into()).await,
    }
}
