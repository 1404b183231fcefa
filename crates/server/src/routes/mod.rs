//! The router: each resource's `router()`, the API's session check, and
//! around every route one layer that bounds its time
//! (`serve.request_timeout_seconds`), counts it in the metrics and writes its
//! access-log line. Errors here are JSON, or a page for a browser.

mod champion;
mod forecasts;
mod health;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::answer;

pub fn app(state: AppState) -> Router {
    // Everything but health, metrics and the login needs a session.
    let protected = Router::new()
        .merge(forecasts::router(&state))
        .merge(champion::router())
        .route("/logout", post(auth::logout))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(protected)
        .merge(health::router())
        .merge(crate::web::router(&state))
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .fallback(unmatched)
        .with_state(state)
}

/// Times out, counts and logs one routed request.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let method_text = request.method().to_string();
    let uri = request.uri().clone();
    let html = wants_html(request.headers());
    let limit = state.config.serve.request_timeout_seconds;
    let response = match tokio::time::timeout(Duration::from_secs_f64(limit), next.run(request)).await {
        Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
            let mut error = answer(&state, html, ApiError::method_not_allowed(&method_text));
            if let Some(allow) = response.headers().get(header::ALLOW) {
                error.headers_mut().insert(header::ALLOW, allow.clone());
            }
            error
        }
        Ok(response) => response,
        Err(_) => answer(&state, html, ApiError::timeout(limit)),
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe(&route, method, status, elapsed);
    if state.config.serve.access_log {
        tracing::info!(
            target: "access",
            method,
            path = uri.path(),
            query = uri.query().unwrap_or(""),
            route,
            status,
            micros = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}

/// Any path that is not a route: a 404 (an HTML page for a browser, else
/// JSON), counted as `unmatched`.
async fn unmatched(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let error = ApiError::not_found(format!("no such resource: {}", request.uri().path()));
    let response = answer(&state, wants_html(request.headers()), error);
    state.metrics.observe(
        "unmatched",
        method_label(request.method()),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Does the client want a page (a browser's `Accept`), not JSON?
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Everything under the API needs a session cookie or a bearer token. A
/// refusal is a JSON error carrying the served model's hash, except to a
/// page's form post (the dashboard's Log out button): with no session left
/// it goes to the login page, else it gets an HTML error page.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let form = auth::is_form(request.headers());
    let refuse = |error: ApiError| {
        if form && error.status() == StatusCode::UNAUTHORIZED {
            Redirect::to("/login?ended=1").into_response()
        } else {
            answer(&state, form, error)
        }
    };
    let (mut request, form_csrf) = match auth::form_csrf(&state, request).await {
        Ok(found) => found,
        Err(e) => return refuse(e),
    };
    let method = request.method().clone();
    match auth::check(&state, request.headers(), method, form_csrf.as_deref()).await {
        Ok((caller, session)) => {
            request.extensions_mut().insert(caller);
            auth::renew(&state, request, next, session).await
        }
        Err(e) => refuse(e),
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}
