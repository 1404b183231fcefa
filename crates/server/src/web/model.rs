//! The model page (analyst and up): the champion, its accuracy per horizon
//! with interval coverage, the pooled WAPE of every run's challenger and
//! champion over time, its worst series, and the decision log with each
//! decision's actor and reason. The registry is read on a blocking thread
//! and kept for `serve.poll_seconds` (see `AppState::model_history`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use salescast_core::accounts::Role;
use salescast_core::insights::history::ModelHistory;

use super::PageError;
use super::charts::{Chart, Line};
use super::view::{self, Nav, amount, render, share};
use crate::auth::Caller;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/model", get(page))
}

pub struct ChampionView {
    version: String,
    family: String,
    since: String,
    kind: String,
    trained_through: String,
    holdout_wape: String,
    reason: String,
}

pub struct DecisionView {
    sequence: u64,
    at: String,
    kind: String,
    actor: String,
    after: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    nav: Option<Nav>,
    model: String,
    champion: Option<ChampionView>,
    scores_date: String,
    /// (days ahead, WAPE, bias, coverage)
    horizons: Vec<(String, String, String, String)>,
    chart: String,
    worst: Vec<(String, String, String)>,
    decisions: Vec<DecisionView>,
}

async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, PageError> {
    caller.require(Role::Analyst)?;
    let history = state.model_history().await?;
    render(&page_of(&caller, &history))
}

fn page_of(caller: &Caller, h: &ModelHistory) -> ModelPage {
    let deciding = |sequence: Option<u64>| h.decisions.iter().find(|d| Some(d.sequence) == sequence);
    let champion = h.champion.as_ref().map(|c| ChampionView {
        version: c.version.clone(),
        family: h
            .manifest
            .as_ref()
            .map(|m| m.family.to_string().replace('_', " "))
            .unwrap_or_default(),
        since: c.since.format("%Y-%m-%d %H:%M UTC").to_string(),
        kind: c.kind.as_str().replace('_', " "),
        trained_through: h
            .manifest
            .as_ref()
            .map(|m| m.lineage.trained_through.to_string())
            .unwrap_or_default(),
        holdout_wape: share(h.manifest.as_ref().map(|m| m.holdout_metrics.wape)),
        reason: deciding(c.decision)
            .map(|d| d.what.reason.clone())
            .unwrap_or_default(),
    });
    let mut horizons = Vec::new();
    if let Some(scores) = &h.scores {
        for row in &scores.horizons.per_horizon {
            horizons.push((
                row.horizon.to_string(),
                share(Some(row.metrics.wape)),
                view::change(Some(row.metrics.bias)),
                String::new(),
            ));
        }
        for bucket in &scores.horizons.buckets {
            horizons.push((
                format!("{}–{} pooled", bucket.first, bucket.last),
                share(Some(bucket.metrics.wape)),
                view::change(Some(bucket.metrics.bias)),
                share(bucket.coverage),
            ));
        }
    }
    let chart = Chart {
        title: "Pooled holdout WAPE by run",
        lines: vec![
            Line {
                name: "challenger",
                class: "challenger",
                points: h.wape.iter().map(|p| (p.run_date, p.challenger)).collect(),
            },
            Line {
                name: "champion",
                class: "champion",
                points: h.wape.iter().map(|p| (p.run_date, p.champion)).collect(),
            },
        ],
        band: None,
        marker: None,
        percent: true,
    }
    .svg();
    ModelPage {
        nav: Some(Nav::new(caller, "model")),
        model: h.model.clone(),
        champion,
        scores_date: h
            .scores
            .as_ref()
            .map(|s| s.run_date.to_string())
            .unwrap_or_default(),
        horizons,
        chart,
        worst: h
            .scores
            .iter()
            .flat_map(|s| &s.worst_series)
            .map(|(series, actual, wape)| (series.clone(), amount(Some(*actual)), share(Some(*wape))))
            .collect(),
        decisions: h
            .decisions
            .iter()
            .map(|d| DecisionView {
                sequence: d.sequence,
                at: d.at.format("%Y-%m-%d %H:%M").to_string(),
                kind: d.what.kind.as_str().replace('_', " "),
                actor: d.what.actor.clone(),
                after: d
                    .what
                    .champion_after
                    .as_deref()
                    .map(view::short)
                    .unwrap_or_default(),
                reason: d.what.reason.clone(),
            })
            .collect(),
    }
}
