//! The dashboard: server-rendered pages (askama templates compiled into the
//! binary, charts as inline SVG drawn by `salescast_core::charts`, one vendored stylesheet, no script) behind
//! the same sessions and roles as the API. Each page is a module with its
//! `router()`; every page route sits behind [`require_session`], which sends
//! a browser without a session to the login page and checks the CSRF token
//! of every form post. What a role may see is checked where the data is
//! read, in the handlers, never in a template.

mod admin;
mod chain;
/// The charts are drawn by the core (the run report draws with the same code).
pub use salescast_core::charts;
mod error;
mod extract;
mod login;
mod model;
mod stores;
mod view;

#[cfg(test)]
mod query_props;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::auth::{self, Caller};
use crate::state::AppState;
pub use error::{PageError, answer};

/// The stylesheet, compiled in.
const CSS: &str = include_str!("../../assets/app.css");

pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(home))
        .merge(stores::router())
        .merge(chain::router())
        .merge(model::router())
        .merge(admin::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_session));
    Router::new()
        .merge(pages)
        .merge(login::router())
        .route("/assets/app.css", get(css))
}

/// A session is required: a browser without one goes to the login page
/// (and comes back after); a form post needs the session's CSRF token.
async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let back = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let (mut request, form_csrf) = match auth::form_csrf(&state, request).await {
        Ok(found) => found,
        Err(e) => return PageError::from(e).into_response(),
    };
    match auth::check(&state, request.headers(), method.clone(), form_csrf.as_deref()).await {
        Ok((caller, session)) => {
            request.extensions_mut().insert(caller);
            auth::renew(&state, request, next, session).await
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED && method == Method::GET => {
            let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `/`: the page of the caller's role (a store user with one store goes
/// straight to it).
async fn home(axum::Extension(caller): axum::Extension<Caller>) -> Redirect {
    use salescast_core::accounts::Role;
    match (caller.user.role, caller.user.stores.as_slice()) {
        (Role::Store, [one]) => Redirect::to(&format!("/stores/{}", view::path_segment(one))),
        (Role::Store, _) => Redirect::to("/stores"),
        _ => Redirect::to("/chain"),
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}
