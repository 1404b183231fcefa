//! The store pages: the list of stores the caller may see, one store's page
//! (its next days' forecast with the interval band next to the last eight
//! weeks of sales, its KPIs and forecast error) and its forecast as CSV. A
//! `store` user asking for another store gets the same 404 as for a store
//! that does not exist: the check is made here, where the data is read.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use salescast_core::insights::{Period, StoreForecast};
use salescast_core::pipeline::serving::{Snapshot, Source};

use super::PageError;
use super::charts::{Band, Chart, Line};
use super::extract::PagePath;
use super::view::{self, Nav, amount, change, render, share};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Days of actual sales drawn before the forecast.
const HISTORY_DAYS: u32 = 56;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stores", get(list))
        .route("/stores/{store}", get(store_page))
        .route("/stores/{store}/forecast.csv", get(store_csv))
}

pub struct ListRow {
    store: String,
    link: String,
    sales_7: String,
    forecast_7: String,
}

#[derive(Template)]
#[template(path = "stores.html")]
struct ListPage {
    nav: Option<Nav>,
    data_day: String,
    model: String,
    rows: Vec<ListRow>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, PageError> {
    let snapshot = view::snapshot(&state)?;
    let board = &snapshot.board;
    let rows = board
        .stores()
        .filter(|s| caller.may_see(s))
        .map(|s| ListRow {
            store: s.to_string(),
            link: view::path_segment(s),
            sales_7: amount(board.period(Some(s), 7).total),
            forecast_7: amount(board.forecast_total(Some(s), &snapshot.forecasts, 7)),
        })
        .collect();
    render(&ListPage {
        nav: Some(Nav::new(&caller, "stores")),
        data_day: snapshot.data_day.to_string(),
        model: view::short(snapshot.version()),
        rows,
    })
}

/// A period's figures as the page shows them.
pub struct PeriodView {
    pub total: String,
    pub growth: String,
    pub yoy: String,
}

impl From<Period> for PeriodView {
    fn from(p: Period) -> Self {
        Self {
            total: amount(p.total),
            growth: change(p.growth()),
            yoy: change(p.year_on_year()),
        }
    }
}

pub struct ForecastLine {
    day: String,
    forecast: String,
    lower: String,
    upper: String,
    planned: &'static str,
}

#[derive(Template)]
#[template(path = "store.html")]
struct StorePage {
    nav: Option<Nav>,
    store: String,
    link: String,
    data_day: String,
    model: String,
    source: &'static str,
    interval: Option<String>,
    horizon: u32,
    week: PeriodView,
    month: PeriodView,
    forecast_7: String,
    error: String,
    error_note: String,
    chart: String,
    rows: Vec<ForecastLine>,
}

/// The store's forecast, if the caller may see it and it exists (else 404).
fn visible(snapshot: &Snapshot, caller: &Caller, store: &str) -> Result<Vec<StoreForecast>, PageError> {
    if !caller.may_see(store) || !snapshot.board.has_store(store) {
        return Err(ApiError::not_found(format!("no store {store:?} here")).into());
    }
    Ok(snapshot.board.store_forecast(store, &snapshot.forecasts))
}

async fn store_page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PagePath(store): PagePath<String>,
) -> Result<Response, PageError> {
    let snapshot = view::snapshot(&state)?;
    let forecast = visible(&snapshot, &caller, &store)?;
    let board = &snapshot.board;
    let (error, error_note) = match &board.accuracy {
        Some(a) => (
            share(a.by_store.get(&store).copied()),
            format!("forecasts of {} scored through {}", a.data_day, a.through),
        ),
        None => ("—".into(), "no earlier forecasts to score yet".into()),
    };
    let title = format!("Store {store}: sales and forecast");
    let chart = store_chart(
        &title,
        board.daily(Some(&store), HISTORY_DAYS),
        &forecast,
        snapshot.data_day,
    );
    render(&StorePage {
        nav: Some(Nav::new(&caller, "stores")),
        link: view::path_segment(&store),
        data_day: snapshot.data_day.to_string(),
        model: view::short(snapshot.version()),
        source: match snapshot.source {
            Source::Stored => "stored forecasts",
            Source::Computed => "forecast at load",
        },
        interval: snapshot
            .forecaster
            .interval()
            .map(|i| format!("{:.0}%", i * 100.0)),
        horizon: snapshot.forecaster.horizon(),
        week: board.period(Some(&store), 7).into(),
        month: board.period(Some(&store), 28).into(),
        forecast_7: amount(board.forecast_total(Some(&store), &snapshot.forecasts, 7)),
        error,
        error_note,
        chart,
        rows: forecast
            .iter()
            .map(|f| ForecastLine {
                day: f.target_date.format("%a %Y-%m-%d").to_string(),
                forecast: amount(Some(f.forecast)),
                lower: amount(f.lower),
                upper: amount(f.upper),
                planned: if f.planned { "planned" } else { "usual week" },
            })
            .collect(),
        store,
    })
}

/// Actual sales, then the forecast line and its band, split at the data day.
pub fn store_chart(
    title: &str,
    actual: Vec<(chrono::NaiveDate, Option<f64>)>,
    forecast: &[StoreForecast],
    data_day: chrono::NaiveDate,
) -> String {
    let band: Vec<_> = forecast
        .iter()
        .filter_map(|f| Some((f.target_date, f.lower?, f.upper?)))
        .collect();
    Chart {
        title,
        lines: vec![
            Line {
                name: "actual sales",
                class: "actual",
                points: actual,
            },
            Line {
                name: "forecast",
                class: "forecast",
                points: forecast
                    .iter()
                    .map(|f| (f.target_date, Some(f.forecast)))
                    .collect(),
            },
        ],
        band: (!band.is_empty()).then_some(Band {
            name: "forecast interval",
            points: band,
        }),
        marker: Some((data_day, "data day")),
        percent: false,
    }
    .svg()
}

async fn store_csv(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PagePath(store): PagePath<String>,
) -> Result<Response, PageError> {
    let snapshot = view::snapshot(&state)?;
    let forecast = visible(&snapshot, &caller, &store)?;
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let rows: Vec<Vec<String>> = forecast
        .iter()
        .map(|f| {
            vec![
                store.clone(),
                f.target_date.to_string(),
                number(Some(f.forecast)),
                number(f.lower),
                number(f.upper),
                f.planned.to_string(),
                snapshot.data_day.to_string(),
                snapshot.version().to_string(),
            ]
        })
        .collect();
    let name: String = store.chars().filter(char::is_ascii_alphanumeric).collect();
    Ok(view::csv(
        &format!("forecast-store-{name}-{}.csv", snapshot.data_day),
        &[
            snapshot.board.store_key.as_str(),
            "target_date",
            "forecast",
            "lower",
            "upper",
            "planned",
            "data_day",
            "model_sha256",
        ],
        &rows,
    ))
}
