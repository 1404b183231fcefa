//! `salescast predict [--date D]`: forecasts every active series for days
//! D+1 .. D+H with the champion (hash verified), with its calibrated
//! intervals, and writes them to the lake's `predictions/<model>/dt=D/`
//! (data files first, the manifest last).
//!
//! A series is active when it has a row in the last seven days up to D.
//! Each target day's covariates come from the plan of that day
//! (`ingest --plan`); without one, from the same series on the same weekday
//! of the newest week at or before D (a store's usual opening days and
//! promotions repeat weekly), and the row is marked `planned = false`.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{Days, NaiveDate};
use polars::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::features::build_features;
use crate::forecast::recursive::{self, Feed, History, Path};
use crate::ingest::{date_from_days, days_from_date};
use crate::lake::Lake;
use crate::mapping::{AttributeTable, DataMapping};
use crate::models::Artifact;
use crate::plans::PlanWindow;
use crate::predictions::{self, PredictionsWritten};
use crate::registry::{LoadedModel, Registry};
use crate::train::frame_rows;
use crate::window::Window;

/// Days before D (and D) in which a series must have a row to be forecast.
const ACTIVE_DAYS: i32 = 7;

/// How many days of the first series the report shows.
const PREVIEW_DAYS: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("the registry has no champion for model {model}: run `salescast retrain` first")]
    NoChampion { model: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    pub model: String,
    pub version: String,
    pub data_day: NaiveDate,
    pub horizon_days: u32,
    /// The central probability of the intervals; none when the champion
    /// has no calibration (stored before intervals existed).
    pub interval: Option<f64>,
    pub series: usize,
    pub rows: usize,
    /// Rows whose covariates came from a plan, and rows that used the defaults.
    pub planned_rows: usize,
    pub unplanned_rows: usize,
    pub written: PredictionsWritten,
    /// The next days of the first series.
    pub preview: Vec<PreviewRow>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewRow {
    pub series: String,
    pub target_date: NaiveDate,
    pub forecast: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub planned: bool,
}

pub fn predict(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    data_day: NaiveDate,
) -> anyhow::Result<PredictReport> {
    let started = Instant::now();
    let state = registry
        .peek_state()
        .context("reading the champion pointer and the decision log")?;
    let pointer = state.champion.ok_or_else(|| PredictError::NoChampion {
        model: registry.model().to_string(),
    })?;
    let LoadedModel { artifact, manifest } = registry
        .load_model(&pointer.version)
        .with_context(|| format!("loading the champion {}", pointer.version))?;
    let mapping = &artifact.mapping;
    let horizon = config.forecast.horizon_days;
    let window =
        Window::ending(&config.window, data_day).map_err(|e| crate::config::ConfigError::Argument {
            flag: "--date".into(),
            problem: e.to_string(),
        })?;
    let sales = lake
        .read_days(mapping, &config.validation, &window)
        .with_context(|| format!("reading {} .. {data_day}", window.first_day))?;
    let mut attributes: Vec<(AttributeTable, DataFrame)> = Vec::new();
    for table in &mapping.attributes {
        let df = lake
            .read_attributes(table, mapping)
            .with_context(|| format!("reading attribute table {}", table.table))?;
        attributes.push((table.clone(), df));
    }
    let last_target = data_day
        .checked_add_days(Days::new(horizon.into()))
        .ok_or_else(|| anyhow::anyhow!("{data_day} + {horizon} days is outside the calendar"))?;
    let first_target = data_day.succ_opt().unwrap_or(last_target);
    let plans = crate::plans::read_plans(lake, mapping, &config.validation, first_target, last_target)
        .with_context(|| format!("reading the plans of {first_target} .. {last_target}"))?;

    let future = future_rows(&sales.frame, &plans, mapping, data_day, horizon)?;
    let unplanned = future.unplanned_rows.len();
    if unplanned > 0 {
        tracing::warn!(
            "no plan for {} of {} forecast rows: used the covariates of the same weekday in the newest week \
             up to {data_day}; those rows are marked planned = false",
            unplanned,
            future.frame.height()
        );
    }
    // Features of the future rows only: the recursion recomputes their
    // history features (lags, rolling means, series mean) from the actuals
    // of the whole window and its own forecasts; calendar, covariates and
    // attributes come from here.
    let features = build_features(&future.frame, &attributes, mapping, &artifact.features)
        .map_err(anyhow::Error::from)
        .context("building features")?;
    let history = History::split(&sales.frame, &features, mapping)?;
    let origin = days_from_date(data_day);
    let paths: Vec<Path> = future
        .series
        .iter()
        .filter_map(|name| history.id(name))
        .map(|series| Path { series, origin })
        .collect();
    let forecasts = recursive::forecast(&artifact, &features, &history, &paths, horizon, Feed::Forecasts)?;
    if manifest.calibration.is_none() {
        tracing::warn!(
            "the champion {} has no interval calibration (stored before intervals): lower and upper are empty",
            pointer.version
        );
    }
    let mut frame = output_frame(
        &artifact,
        &features,
        &history,
        &forecasts,
        manifest.calibration.as_ref(),
        &future.unplanned_rows,
        (&pointer.version, data_day),
    )?;
    let preview = preview(&frame)?;
    let written = predictions::write_predictions(
        lake,
        registry.model(),
        &pointer.version,
        data_day,
        horizon,
        config.forecast.interval,
        &mut frame,
    )
    .context("writing the predictions")?;
    Ok(PredictReport {
        model: registry.model().to_string(),
        version: pointer.version,
        data_day,
        horizon_days: horizon,
        interval: manifest.calibration.map(|c| c.interval),
        series: paths.len(),
        rows: frame.height(),
        planned_rows: frame.height() - unplanned,
        unplanned_rows: unplanned,
        written,
        preview,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The rows of the days to forecast, shaped like the sales rows (target null).
struct Future {
    frame: DataFrame,
    /// The active series, by name.
    series: Vec<String>,
    /// (series, day number) of rows without a plan.
    unplanned_rows: HashSet<(String, i32)>,
}

fn future_rows(
    sales: &DataFrame,
    plans: &PlanWindow,
    mapping: &DataMapping,
    data_day: NaiveDate,
    horizon: u32,
) -> anyhow::Result<Future> {
    let history = History::new(sales, mapping)?;
    let origin = days_from_date(data_day);
    let active: Vec<u32> = (0..history.series() as u32)
        .filter(|&s| (origin - ACTIVE_DAYS + 1..=origin).any(|d| history.row(s, d).is_some()))
        .collect();
    let plan_index = plan_index(&plans.frame, mapping)?;
    let mut from_plan = Vec::new();
    let (mut from_sales, mut sales_days) = (Vec::new(), Vec::new());
    let mut unplanned_rows = HashSet::new();
    for &s in &active {
        let name = history.name(s);
        let newest = (origin - 366..=origin).rev().find_map(|d| history.row(s, d));
        for h in 1..=horizon as i32 {
            let day = origin + h;
            if let Some(&row) = plan_index.get(&(name.to_string(), day)) {
                from_plan.push(row as IdxSize);
                continue;
            }
            let weeks_back = 7 * ((h + 6) / 7);
            let source = history.row(s, day - weeks_back).or(newest);
            if let Some(row) = source {
                from_sales.push(row as IdxSize);
                sales_days.push(day);
                unplanned_rows.insert((name.to_string(), day));
            }
        }
    }
    // Default rows: a sales row moved to the target day, its target emptied.
    let mut frame = sales.take(&IdxCa::from_vec("rows".into(), from_sales))?;
    let n = frame.height();
    frame.with_column(Column::new(mapping.date_column.as_str().into(), sales_days).cast(&DataType::Date)?)?;
    frame.with_column(Column::full_null(
        mapping.target.as_str().into(),
        n,
        &DataType::Float64,
    ))?;
    if !from_plan.is_empty() {
        let planned = plans
            .with_target(mapping)?
            .take(&IdxCa::from_vec("rows".into(), from_plan))?;
        frame.vstack_mut(&planned)?;
    }
    Ok(Future {
        frame,
        series: active.iter().map(|&s| history.name(s).to_string()).collect(),
        unplanned_rows,
    })
}

/// (series name, day number) -> plan row.
fn plan_index(
    plans: &DataFrame,
    mapping: &DataMapping,
) -> anyhow::Result<std::collections::HashMap<(String, i32), usize>> {
    if plans.height() == 0 {
        return Ok(Default::default());
    }
    let dates = plans.column(&mapping.date_column)?.date()?.physical().clone();
    let keys: Vec<StringChunked> = mapping
        .series_keys
        .iter()
        .map(|k| Ok(plans.column(k)?.str()?.clone()))
        .collect::<anyhow::Result<_>>()?;
    Ok((0..plans.height())
        .filter_map(|i| Some(((recursive::series_name(&keys, i), dates.get(i)?), i)))
        .collect())
}

/// The predictions frame (schema of `predictions`), sorted by series and day.
fn output_frame(
    artifact: &Artifact,
    features: &DataFrame,
    history: &History,
    forecasts: &[recursive::Forecast],
    calibration: Option<&crate::forecast::intervals::Calibration>,
    unplanned: &HashSet<(String, i32)>,
    (version, data_day): (&str, NaiveDate),
) -> anyhow::Result<DataFrame> {
    let mapping = &artifact.mapping;
    let mut order: Vec<usize> = (0..forecasts.len()).collect();
    let key = |f: &recursive::Forecast| history.of_row(f.row);
    order.sort_by(|&a, &b| {
        let (sa, da) = key(&forecasts[a]);
        let (sb, db) = key(&forecasts[b]);
        history.name(sa).cmp(history.name(sb)).then(da.cmp(&db))
    });
    let sorted: Vec<&recursive::Forecast> = order.iter().map(|&i| &forecasts[i]).collect();
    let rows: Vec<usize> = sorted.iter().map(|f| f.row).collect();
    let keys = frame_rows(features, &rows)?.select(mapping.series_keys.iter().map(String::as_str))?;
    let names: Vec<String> = sorted
        .iter()
        .map(|f| history.name(key(f).0).to_string())
        .collect();
    let days: Vec<i32> = sorted.iter().map(|f| key(f).1).collect();
    let bounds: Vec<Option<(f64, f64)>> = sorted
        .iter()
        .map(|f| calibration.map(|c| c.bounds(f.horizon, f.value)))
        .collect();
    let planned: Vec<bool> = names
        .iter()
        .zip(&days)
        .map(|(n, &d)| !unplanned.contains(&(n.clone(), d)))
        .collect();
    let n = sorted.len();
    let mut columns = vec![Column::new("series".into(), names)];
    columns.extend(keys.columns().iter().cloned());
    columns.extend([
        Column::new("target_date".into(), days).cast(&DataType::Date)?,
        Column::new(
            "horizon".into(),
            sorted.iter().map(|f| f.horizon as i32).collect::<Vec<_>>(),
        ),
        Column::new(
            "forecast".into(),
            sorted.iter().map(|f| f.value).collect::<Vec<_>>(),
        ),
        Column::new(
            "lower".into(),
            bounds.iter().map(|b| b.map(|b| b.0)).collect::<Vec<_>>(),
        ),
        Column::new(
            "upper".into(),
            bounds.iter().map(|b| b.map(|b| b.1)).collect::<Vec<_>>(),
        ),
        Column::new("model_sha256".into(), vec![version; n]),
        Column::new("data_day".into(), vec![days_from_date(data_day); n]).cast(&DataType::Date)?,
        Column::new("planned".into(), planned),
    ]);
    Ok(DataFrame::new(n, columns)?)
}

/// The first series' next days, for the report.
fn preview(frame: &DataFrame) -> anyhow::Result<Vec<PreviewRow>> {
    let n = frame.height().min(PREVIEW_DAYS);
    let series = frame.column("series")?.str()?;
    let dates = frame.column("target_date")?.date()?.physical().clone();
    let value = |name: &str| -> anyhow::Result<Float64Chunked> { Ok(frame.column(name)?.f64()?.clone()) };
    let (forecast, lower, upper) = (value("forecast")?, value("lower")?, value("upper")?);
    let planned = frame.column("planned")?.bool()?;
    let first = series.get(0).unwrap_or_default();
    Ok((0..n)
        .take_while(|&i| series.get(i) == Some(first))
        .filter_map(|i| {
            Some(PreviewRow {
                series: first.to_string(),
                target_date: date_from_days(dates.get(i)?)?,
                forecast: forecast.get(i)?,
                lower: lower.get(i),
                upper: upper.get(i),
                planned: planned.get(i).unwrap_or(false),
            })
        })
        .collect())
}
