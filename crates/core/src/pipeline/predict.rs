//! `salescast predict [--date D]`: forecasts every active series for days
//! D+1 .. D+H with the champion (hash verified), with its calibrated
//! intervals, and writes them to the lake's `predictions/<model>/dt=D/`
//! (data files first, the manifest last).
//!
//! Which series, and which covariates each target day gets: see
//! `pipeline/forecaster.rs`. The sharded form (`--shard K/N`, `--fan-in N`)
//! is `pipeline/predict_shards.rs`.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::forecaster::{Forecaster, Forecasts, ReadWindow};
use crate::config::Config;
use crate::ingest::date_from_days;
use crate::lake::Lake;
use crate::predictions::{self, PredictionsWritten};
use crate::progress;
use crate::registry::{LoadedModel, Registry};

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
    /// `predict --fan-in N`: the number of shards combined (none: one run).
    pub fan_in: Option<u32>,
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
    predict_from(config, lake, registry, data_day, None)
}

/// [`predict`] starting from a window of `data_day` already read and
/// validated with the configuration's mapping (`read`, by the retrain run
/// just before in the same process: `retrain --predict`), when the
/// champion was built with that mapping; otherwise, or without one, the
/// window is read as `predict` reads it. Either way the same rows, so the
/// same forecasts.
pub fn predict_from(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    data_day: NaiveDate,
    read: Option<ReadWindow>,
) -> anyhow::Result<PredictReport> {
    let started = Instant::now();
    let version = champion(registry)?;
    let model = load(registry, &version)?;
    let read =
        read.filter(|r| r.data_day == data_day && model.artifact.mapping.same_for_models(&config.data));
    let forecaster = match read {
        Some(read) => progress::phase("loading the plans", || {
            Forecaster::from_window(config, lake, model, &version, read)
        })?,
        None => progress::phase("loading the window and plans", || {
            Forecaster::load(config, lake, model, &version, data_day)
        })?,
    };
    let Forecasts {
        mut frame,
        series,
        unplanned_rows,
    } = progress::phase("forecasting", || forecaster.forecast(None, None))?;
    if unplanned_rows > 0 {
        tracing::warn!(
            "no plan for {} of {} forecast rows: used the covariates of the same weekday in the newest week \
             up to {data_day}; those rows are marked planned = false",
            unplanned_rows,
            frame.height()
        );
    }
    if forecaster.interval().is_none() {
        tracing::warn!(
            "the champion {} has no interval calibration (stored before intervals): lower and upper are empty",
            version
        );
    }
    let horizon = config.forecast.horizon_days;
    let preview = preview(&frame)?;
    let written = progress::phase("writing predictions", || {
        predictions::write_predictions(
            lake,
            registry.model(),
            &version,
            data_day,
            horizon,
            config.forecast.interval,
            &mut frame,
        )
    })
    .context("writing the predictions")?;
    Ok(PredictReport {
        model: registry.model().to_string(),
        version,
        fan_in: None,
        data_day,
        horizon_days: horizon,
        interval: forecaster.interval(),
        series,
        rows: frame.height(),
        planned_rows: frame.height() - unplanned_rows,
        unplanned_rows,
        written,
        preview,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The champion's version, or [`PredictError::NoChampion`].
pub(super) fn champion(registry: &Registry) -> anyhow::Result<String> {
    let state = registry
        .peek_state()
        .context("reading the champion pointer and the decision log")?;
    let pointer = state.champion.ok_or_else(|| PredictError::NoChampion {
        model: registry.model().to_string(),
    })?;
    Ok(pointer.version)
}

/// A stored version, re-hashed and decoded.
pub(super) fn load(registry: &Registry, version: &str) -> anyhow::Result<LoadedModel> {
    registry
        .load_model(version)
        .with_context(|| format!("loading the champion {version}"))
}

/// The first series' next days, for the report.
pub(super) fn preview(frame: &DataFrame) -> anyhow::Result<Vec<PreviewRow>> {
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
