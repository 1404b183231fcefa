//! The open endpoints: `/healthz` (the process answers), `/readyz` (200 only
//! once a verified champion and its forecasts are loaded; what a load
//! balancer routes by) and `/metrics` (Prometheus).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

#[derive(Serialize)]
struct Status<'a> {
    status: &'a str,
    model_sha256: Option<String>,
}

async fn healthz(State(state): State<AppState>) -> Json<Status<'static>> {
    Json(Status {
        status: "alive",
        model_sha256: state.snapshot.load().as_ref().map(|s| s.version().to_string()),
    })
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.snapshot.load().as_ref() {
        Some(s) => Json(Status {
            status: "ready",
            model_sha256: Some(s.version().to_string()),
        })
        .into_response(),
        None => ApiError::not_ready().into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot.load_full();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(snapshot.as_deref()),
    )
        .into_response()
}
