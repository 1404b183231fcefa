//! The router: each resource's `router()`, and around every route one layer
//! that bounds its time (`serve.request_timeout_seconds`), counts it in the
//! metrics and writes its access-log line.

mod champion;
mod forecasts;
mod health;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

pub fn app(state: AppState) -> Router {
    // Everything but health, metrics and the login needs a session.
    let protected = Router::new()
        .merge(forecasts::router(&state))
        .merge(champion::router())
        .route("/logout", post(auth::logout))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
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
    let limit = state.config.serve.request_timeout_seconds;
    let response = match tokio::time::timeout(Duration::from_secs_f64(limit), next.run(request)).await {
        Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
            let mut json = with_model(&state, ApiError::method_not_allowed(&method_text)).into_response();
            if let Some(allow) = response.headers().get(header::ALLOW) {
                json.headers_mut().insert(header::ALLOW, allow.clone());
            }
            json
        }
        Ok(response) => response,
        Err(_) => with_model(&state, ApiError::timeout(limit)).into_response(),
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
    let browser = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let response = if browser {
        crate::web::PageError(error).into_response()
    } else {
        with_model(&state, error).into_response()
    };
    state.metrics.observe(
        "unmatched",
        method_label(request.method()),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The error, with the hash of the model being served (if one is).
fn with_model(state: &AppState, error: ApiError) -> ApiError {
    match state.snapshot.load().as_ref() {
        Some(s) => error.model(s.version()),
        None => error,
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
