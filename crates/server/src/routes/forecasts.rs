//! `/v1/forecasts`: `GET` the served forecasts of one series (by its key
//! columns as query parameters, optionally `from` and `to`), and `POST`
//! on-demand forecasts of some series under the caller's plan ("what if
//! store 12 runs a promotion next Tuesday"), computed by the loaded champion.
//! A `store` user sees only their stores: any other store's series is an
//! unknown series (404), whether it exists or not.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use salescast_core::pipeline::serving::{ForecastRow, Snapshot, Source, rows_by_series};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new().route(
        "/v1/forecasts",
        get(stored)
            .post(on_demand)
            .layer(DefaultBodyLimit::max(state.config.serve.max_body_bytes)),
    )
}

/// The rows of one series, with whose forecasts they are.
#[derive(Serialize)]
struct SeriesForecasts<'a> {
    model: &'a str,
    model_sha256: &'a str,
    data_day: NaiveDate,
    source: Source,
    interval: Option<f64>,
    series: BTreeMap<String, String>,
    forecasts: Vec<&'a ForecastRow>,
}

async fn stored(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot.load_full().ok_or_else(ApiError::not_ready)?;
    let in_model = |e: ApiError| e.model(snapshot.version());
    let StoredQuery { name, keys, from, to } =
        parse_stored_query(raw.as_deref(), &snapshot.forecaster.mapping().series_keys).map_err(in_model)?;
    // Another store's series does not exist for a store user.
    if !caller.may_see(store_of(&state, &snapshot, &keys)) {
        return Err(in_model(unknown_series(&keys)));
    }
    let rows = snapshot
        .forecasts
        .get(&name)
        .ok_or_else(|| in_model(unknown_series(&keys)))?;
    let body = SeriesForecasts {
        model: &snapshot.manifest.model,
        model_sha256: snapshot.version(),
        data_day: snapshot.data_day,
        source: snapshot.source,
        interval: snapshot.forecaster.interval(),
        series: keys.clone(),
        forecasts: rows.iter().filter(|r| in_range(r, from, to)).collect(),
    };
    json(&body).map_err(in_model)
}

/// What `GET /v1/forecasts` asks for: one series (its name and keys) and
/// optionally a range of target dates.
#[derive(Debug, PartialEq)]
struct StoredQuery {
    name: String,
    keys: BTreeMap<String, String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// Parses the raw query string of `GET /v1/forecasts` (percent-decoded as
/// a form; invalid UTF-8 replaced) against the model's series keys: each key
/// once, `from` and `to` at most once each as dates, `from` not after `to`,
/// nothing else. Any other query is a 400 naming the parameter at fault.
fn parse_stored_query(raw: Option<&str>, series_keys: &[String]) -> Result<StoredQuery, ApiError> {
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let (mut from, mut to) = (None, None);
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "from" | "to" => {
                let slot = if name == "from" { &mut from } else { &mut to };
                if slot.replace(date(&name, &value)?).is_some() {
                    return Err(ApiError::bad(&name, format!("{name:?} is given twice")));
                }
                continue;
            }
            key if series_keys.iter().any(|k| k == key) => keys.insert(name.to_string(), value.into_owned()),
            _ => {
                return Err(ApiError::bad(
                    &name,
                    format!(
                        "unknown parameter {name:?} (expected the series keys {} and optionally from, to)",
                        series_keys.join(", ")
                    ),
                ));
            }
        };
        if slot.is_some() {
            return Err(ApiError::bad(&name, format!("{name:?} is given twice")));
        }
    }
    let name = series_name(series_keys, &keys)?;
    check_range(from, to)?;
    Ok(StoredQuery { name, keys, from, to })
}

/// A plan or series value: text, a number or a flag, as a plan file holds it.
#[derive(Debug)]
enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Flag(bool),
}

/// One series or plan row: each column once (a key given twice would be
/// read as its last value, silently), each value text, a number or a flag.
#[derive(Debug)]
struct Row(BTreeMap<String, Scalar>);

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Columns;
        impl<'de> serde::de::Visitor<'de> for Columns {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of columns")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                use serde::de::Error as _;
                let mut row = BTreeMap::new();
                while let Some((column, value)) = map.next_entry::<String, serde_json::Value>()? {
                    let value = match value {
                        serde_json::Value::String(s) => Scalar::Text(s),
                        serde_json::Value::Number(n) => Scalar::Number(n),
                        serde_json::Value::Bool(b) => Scalar::Flag(b),
                        _ => {
                            return Err(A::Error::custom(format!(
                                "column {column:?}: must be text, a number or true/false"
                            )));
                        }
                    };
                    if row.contains_key(&column) {
                        return Err(A::Error::custom(format!("column {column:?} is given twice")));
                    }
                    row.insert(column, value);
                }
                Ok(Row(row))
            }
        }
        deserializer.deserialize_map(Columns)
    }
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Flag(b) => u8::from(*b).to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDemandRequest {
    /// Each series by its key columns.
    series: Vec<Row>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// Plan rows: the date, the series keys and any covariates to set.
    #[serde(default)]
    plan: Vec<Row>,
}

#[derive(Serialize)]
struct OnDemandResponse<'a> {
    model: &'a str,
    model_sha256: &'a str,
    data_day: NaiveDate,
    source: &'static str,
    interval: Option<f64>,
    series: Vec<OnDemandSeries>,
}

#[derive(Serialize)]
struct OnDemandSeries {
    series: BTreeMap<String, String>,
    forecasts: Vec<ForecastRow>,
}

async fn on_demand(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<OnDemandRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot.load_full().ok_or_else(ApiError::not_ready)?;
    let version = snapshot.version().to_string();
    let in_model = |e: ApiError| e.model(&version);
    let Json(request) = body.map_err(|e| in_model(rejected(&e)))?;
    let limit = state.config.serve.max_series;
    if request.series.is_empty() {
        return Err(in_model(ApiError::bad("series", "give at least one series")));
    }
    if request.series.len() > limit {
        return Err(in_model(ApiError::too_large(format!(
            "{} series in one request; at most {limit} (serve.max_series)",
            request.series.len()
        ))));
    }
    let horizon = snapshot.forecaster.horizon() as usize;
    if request.plan.len() > limit * horizon {
        return Err(in_model(ApiError::too_large(format!(
            "{} plan rows in one request; at most {} (serve.max_series x forecast.horizon_days)",
            request.plan.len(),
            limit * horizon
        ))));
    }
    check_range(request.from, request.to).map_err(in_model)?;
    let mut wanted = Vec::with_capacity(request.series.len());
    for given in &request.series {
        let keys: BTreeMap<String, String> = given.0.iter().map(|(k, v)| (k.clone(), v.text())).collect();
        let name = series_name(&snapshot.forecaster.mapping().series_keys, &keys).map_err(in_model)?;
        if !snapshot.forecaster.is_active(&name) || !caller.may_see(store_of(&state, &snapshot, &keys)) {
            return Err(in_model(unknown_series(&keys)));
        }
        if wanted.iter().any(|(n, _)| *n == name) {
            return Err(in_model(ApiError::bad(
                "series",
                format!("series {name:?} is asked for twice"),
            )));
        }
        wanted.push((name, keys));
    }
    let plan: Vec<HashMap<String, String>> = request
        .plan
        .iter()
        .map(|row| row.0.iter().map(|(k, v)| (k.clone(), v.text())).collect())
        .collect();
    for row in &plan {
        let keys: BTreeMap<String, String> = row.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !caller.may_see(store_of(&state, &snapshot, &keys)) {
            return Err(in_model(unknown_series(&keys)));
        }
    }
    // The permit moves into the blocking task: a request that times out
    // stops waiting, but its forecast keeps its core until it ends.
    let permit = Arc::clone(&state.forecast_permits)
        .acquire_owned()
        .await
        .map_err(|e| in_model(ApiError::internal(e.into())))?;
    let worker = snapshot.clone();
    let names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let computed = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let _permit = permit;
        let plan = worker
            .forecaster
            .caller_plan(&plan, "request body: plan")
            .map_err(|e| ApiError::bad("plan", e.to_string()))?;
        let forecasts = worker
            .forecaster
            .forecast(Some(&names), Some(&plan))
            .map_err(ApiError::internal)?;
        rows_by_series(&forecasts.frame).map_err(ApiError::internal)
    })
    .await
    .map_err(|e| in_model(ApiError::internal(e.into())))?
    .map_err(in_model)?;
    let mut computed = computed;
    let series = wanted
        .into_iter()
        .map(|(name, keys)| OnDemandSeries {
            series: keys,
            forecasts: computed
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| in_range(r, request.from, request.to))
                .collect(),
        })
        .collect();
    let body = OnDemandResponse {
        model: &snapshot.manifest.model,
        model_sha256: &version,
        data_day: snapshot.data_day,
        source: "on_demand",
        interval: snapshot.forecaster.interval(),
        series,
    };
    json(&body).map_err(in_model)
}

/// A JSON response, serialized once, straight to bytes.
fn json(body: &impl Serialize) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// A body axum could not take: 413 (too large) and 415 (not JSON) as they
/// are, and every malformed or mistyped body a 400.
fn rejected(rejection: &JsonRejection) -> ApiError {
    ApiError::rejected(rejection.status(), rejection.body_text())
}

fn date(name: &str, value: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|e| ApiError::bad(name, format!("{name}={value:?} is not a date YYYY-MM-DD: {e}")))
}

fn check_range(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(ApiError::bad("from", format!("from {f} is after to {t}"))),
        _ => Ok(()),
    }
}

fn in_range(row: &ForecastRow, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    from.is_none_or(|f| row.target_date >= f) && to.is_none_or(|t| row.target_date <= t)
}

/// The series name (keys joined with "/") of exactly the mapping's keys.
fn series_name(expected: &[String], keys: &BTreeMap<String, String>) -> Result<String, ApiError> {
    if let Some(extra) = keys.keys().find(|k| !expected.contains(k)) {
        return Err(ApiError::bad(
            extra,
            format!("{extra:?} is not a series key (expected {})", expected.join(", ")),
        ));
    }
    expected
        .iter()
        .map(|k| {
            keys.get(k)
                .cloned()
                .ok_or_else(|| ApiError::bad(k, format!("missing series key {k:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|parts| parts.join("/"))
}

/// The store a series (or plan row) belongs to: its `serve.store_key`
/// value (the first series key by default); empty when absent.
fn store_of<'a>(state: &AppState, snapshot: &Snapshot, keys: &'a BTreeMap<String, String>) -> &'a str {
    let mapping = snapshot.forecaster.mapping();
    let key = state
        .config
        .serve
        .store_key
        .as_deref()
        .or(mapping.series_keys.first().map(String::as_str))
        .unwrap_or_default();
    keys.get(key).map(String::as_str).unwrap_or_default()
}

fn unknown_series(keys: &BTreeMap<String, String>) -> ApiError {
    let shown: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ApiError::not_found(format!(
        "unknown series {}: no forecasts for it (not active in the last 7 days of data?)",
        shown.join(", ")
    ))
}

#[cfg(test)]
#[path = "forecasts_props.rs"]
mod props;
