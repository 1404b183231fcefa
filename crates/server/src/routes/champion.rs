//! `GET /v1/champion`: the served champion, since when, its holdout metrics,
//! the decision that made it champion, and whose forecasts are served
//! (analysts and admins: the model is theirs to see).

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use salescast_core::accounts::Role;
use salescast_core::evaluate::Metrics;
use salescast_core::models::Family;
use salescast_core::pipeline::serving::Source;
use salescast_core::registry::Decision;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/champion", get(champion))
}

#[derive(Serialize)]
struct ChampionView {
    model: String,
    model_sha256: String,
    family: Family,
    since: DateTime<Utc>,
    previous: Option<String>,
    created_at: DateTime<Utc>,
    holdout_metrics: Metrics,
    decision: Option<Decision>,
    /// Whose forecasts `GET /v1/forecasts` serves: the data day and source.
    data_day: NaiveDate,
    source: Source,
    interval: Option<f64>,
    horizon_days: u32,
}

async fn champion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ChampionView>, ApiError> {
    caller.require(Role::Analyst)?;
    let snapshot = state.snapshot.load_full().ok_or_else(ApiError::not_ready)?;
    Ok(Json(ChampionView {
        model: snapshot.manifest.model.clone(),
        model_sha256: snapshot.version().to_string(),
        family: snapshot.manifest.family,
        since: snapshot.champion.since,
        previous: snapshot.champion.previous.clone(),
        created_at: snapshot.manifest.created_at,
        holdout_metrics: snapshot.manifest.holdout_metrics.clone(),
        decision: snapshot.decision.clone(),
        data_day: snapshot.data_day,
        source: snapshot.source,
        interval: snapshot.forecaster.interval(),
        horizon_days: snapshot.forecaster.horizon(),
    }))
}
