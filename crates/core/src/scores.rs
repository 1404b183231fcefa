//! The lake's scores table: every stored forecast of a day, once that day's
//! actuals have landed, beside the actual. `scores/<model>/dt=T/part-<hash>.parquet`
//! holds the forecasts of target day T made at origins T-1 .. T-H (H =
//! `forecast.horizon_days`), one row per forecast of a series with a sales
//! row that day. Columns, in order: `series`, the series keys, `target_date`,
//! `origin` (the forecast's data day: its `predictions/<model>/dt=` folder),
//! `horizon`, `forecast`, `lower`, `upper` (null without an interval),
//! `actual`, `open` (false when the open flag is 0), `model_sha256`; rows by
//! series, then origin.
//!
//! A day's file is rebuilt whole from the predictions and the sales
//! partition each time it is scored and written content-addressed with
//! [`Lake::write_days_in`]: the same inputs give the same bytes (nothing
//! written), a forecast or actual that changed replaces the day's file (new
//! file first, then the old removed). Partitioned by model, like the
//! predictions, so two models of one lake do not replace each other's rows.
//!
//! Closed days (open flag 0) keep their rows (`open` = false); live metrics
//! leave them out, as the holdout does (`train::split`).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ingest::{date_from_days, days_from_date};
use crate::lake::{DayFile, Lake, LakeError, WriteCounts, decode_parquet};
use crate::mapping::DataMapping;
use crate::predictions::{PredictionsError, PredictionsManifest, read_predictions};
use crate::storage::ObjectMeta;

pub const SCORES_ROOT: &str = "scores/";

#[derive(Debug, thiserror::Error)]
pub enum ScoresError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Predictions(#[from] PredictionsError),
    /// A stored predictions or scores file without the columns it needs.
    #[error("{uri}: {problem}")]
    Unreadable { uri: String, problem: String },
}

/// One scored forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    pub series: String,
    /// The series key values, in `data.series_keys` order.
    pub keys: Vec<String>,
    pub target_date: NaiveDate,
    pub origin: NaiveDate,
    pub horizon: u32,
    pub forecast: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub actual: f64,
    pub open: bool,
    pub model_sha256: String,
}

/// The partition root of one model's scores: `scores/<model>/dt=`.
pub fn scores_root(model: &str) -> String {
    format!("{SCORES_ROOT}{model}/dt=")
}

/// One target day's sales: actual and open flag by series name (the keys
/// joined with "/", as in the predictions' `series`).
pub struct Actuals {
    pub day: NaiveDate,
    by_series: HashMap<String, (f64, bool)>,
}

impl Actuals {
    /// From a sales partition of `day` typed by `mapping` (see [`Lake::read_day`]).
    pub fn from_sales(frame: &DataFrame, mapping: &DataMapping, day: NaiveDate) -> PolarsResult<Self> {
        let keys: Vec<StringChunked> = mapping
            .series_keys
            .iter()
            .map(|k| frame.column(k).and_then(|c| c.str().cloned()))
            .collect::<PolarsResult<_>>()?;
        let target = frame.column(&mapping.target)?.cast(&DataType::Float64)?;
        let target = target.f64()?;
        let open = match &mapping.open_flag {
            Some(flag) => Some(frame.column(flag)?.cast(&DataType::Float64)?),
            None => None,
        };
        let open = open.as_ref().map(|c| c.f64()).transpose()?;
        let mut by_series = HashMap::with_capacity(frame.height());
        for i in 0..frame.height() {
            let parts: Option<Vec<&str>> = keys.iter().map(|k| k.get(i)).collect();
            let (Some(parts), Some(actual)) = (parts, target.get(i)) else {
                continue;
            };
            let is_open = open.is_none_or(|o| o.get(i) != Some(0.0));
            by_series.insert(parts.join("/"), (actual, is_open));
        }
        Ok(Self { day, by_series })
    }

    /// The actual and open flag of a series that day.
    pub fn get(&self, series: &str) -> Option<(f64, bool)> {
        self.by_series.get(series).copied()
    }
}

/// Which committed forecasts of one origin were read: the model that made
/// them and its part files' SHA-256 (a partition committed again with other
/// rows has other files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionVersion {
    pub origin: NaiveDate,
    pub model_sha256: String,
    pub files: Vec<String>,
}

impl PredictionVersion {
    pub fn of(manifest: &PredictionsManifest) -> Self {
        Self {
            origin: manifest.data_day,
            model_sha256: manifest.model_sha256.clone(),
            files: manifest.files.iter().map(|f| f.sha256.clone()).collect(),
        }
    }
}

/// The rows of one stored predictions partition, indexed by target day.
pub struct OriginForecasts {
    pub origin: NaiveDate,
    pub version: PredictionVersion,
    by_target: BTreeMap<NaiveDate, Vec<ScoreRow>>,
}

impl OriginForecasts {
    /// Reads `predictions/<model>/dt=origin/` (`None` without a manifest);
    /// `actual` and `open` are left to [`score_day`].
    pub fn read(
        lake: &Lake,
        model: &str,
        origin: NaiveDate,
        series_keys: &[String],
    ) -> Result<Option<Self>, ScoresError> {
        let Some((manifest, frame)) = read_predictions(lake, model, origin)? else {
            return Ok(None);
        };
        let uri = lake
            .store()
            .uri_of(&crate::predictions::predictions_prefix(model, origin));
        let unreadable = |e: PolarsError| ScoresError::Unreadable {
            uri: uri.clone(),
            problem: format!("{e} (data.series_keys: {series_keys:?})"),
        };
        let rows = forecast_rows(&frame, series_keys, origin).map_err(unreadable)?;
        let mut by_target: BTreeMap<NaiveDate, Vec<ScoreRow>> = BTreeMap::new();
        for mut row in rows {
            row.model_sha256.clone_from(&manifest.model_sha256);
            by_target.entry(row.target_date).or_default().push(row);
        }
        Ok(Some(Self {
            origin,
            version: PredictionVersion::of(&manifest),
            by_target,
        }))
    }

    /// Keeps the forecasts for which `keep` holds (a shard's series).
    pub fn retain(&mut self, keep: impl Fn(&ScoreRow) -> bool) {
        for rows in self.by_target.values_mut() {
            rows.retain(&keep);
        }
        self.by_target.retain(|_, rows| !rows.is_empty());
    }

    /// Its forecasts of `day`.
    pub fn of_day(&self, day: NaiveDate) -> &[ScoreRow] {
        self.by_target.get(&day).map_or(&[], Vec::as_slice)
    }
}

fn forecast_rows(
    frame: &DataFrame,
    series_keys: &[String],
    origin: NaiveDate,
) -> PolarsResult<Vec<ScoreRow>> {
    let text = |name: &str| frame.column(name).and_then(|c| c.str().cloned());
    let f64s = |name: &str| frame.column(name).and_then(|c| c.f64().cloned());
    let series = text("series")?;
    let keys: Vec<StringChunked> = series_keys.iter().map(|k| text(k)).collect::<PolarsResult<_>>()?;
    let targets = frame.column("target_date")?.date()?.physical().clone();
    let horizons = frame.column("horizon")?.i32()?.clone();
    let (forecast, lower, upper) = (f64s("forecast")?, f64s("lower")?, f64s("upper")?);
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let (Some(name), Some(target), Some(h), Some(f)) = (
            series.get(i),
            targets.get(i).and_then(date_from_days),
            horizons.get(i),
            forecast.get(i),
        ) else {
            continue;
        };
        rows.push(ScoreRow {
            series: name.to_string(),
            keys: keys
                .iter()
                .map(|k| k.get(i).unwrap_or_default().to_string())
                .collect(),
            target_date: target,
            origin,
            horizon: h.unsigned_abs(),
            forecast: f,
            lower: lower.get(i),
            upper: upper.get(i),
            actual: f64::NAN,
            open: true,
            model_sha256: String::new(),
        });
    }
    Ok(rows)
}

/// What scoring one target day found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayScores {
    pub day: NaiveDate,
    /// The origins whose forecasts of the day were scored.
    pub origins: Vec<NaiveDate>,
    pub rows: Vec<ScoreRow>,
    /// Forecasts of the day for series with no sales row that day (not scored).
    pub without_actual: usize,
}

/// The forecasts of `actuals.day` among `origins` beside their actuals,
/// ordered by series, then origin.
pub fn score_day(actuals: &Actuals, origins: &[&OriginForecasts]) -> DayScores {
    let mut rows = Vec::new();
    let mut used = Vec::new();
    let mut without_actual = 0;
    for origin in origins {
        let forecasts = origin.of_day(actuals.day);
        if forecasts.is_empty() {
            continue;
        }
        used.push(origin.origin);
        for forecast in forecasts {
            match actuals.get(&forecast.series) {
                Some((actual, open)) => rows.push(ScoreRow {
                    actual,
                    open,
                    ..forecast.clone()
                }),
                None => without_actual += 1,
            }
        }
    }
    rows.sort_by(|a, b| (&a.series, a.origin).cmp(&(&b.series, b.origin)));
    used.sort();
    DayScores {
        day: actuals.day,
        origins: used,
        rows,
        without_actual,
    }
}

/// The rows as the table's frame (see the module doc for the columns).
pub fn scores_frame(rows: &[ScoreRow], series_keys: &[String]) -> PolarsResult<DataFrame> {
    let dates =
        |f: fn(&ScoreRow) -> NaiveDate| -> Vec<i32> { rows.iter().map(|r| days_from_date(f(r))).collect() };
    let mut columns = vec![Column::new(
        "series".into(),
        rows.iter().map(|r| r.series.as_str()).collect::<Vec<_>>(),
    )];
    for (i, key) in series_keys.iter().enumerate() {
        let values: Vec<&str> = rows
            .iter()
            .map(|r| r.keys.get(i).map_or("", String::as_str))
            .collect();
        columns.push(Column::new(key.as_str().into(), values));
    }
    columns.extend([
        Column::new("target_date".into(), dates(|r| r.target_date)).cast(&DataType::Date)?,
        Column::new("origin".into(), dates(|r| r.origin)).cast(&DataType::Date)?,
        Column::new(
            "horizon".into(),
            rows.iter().map(|r| r.horizon as i32).collect::<Vec<_>>(),
        ),
        Column::new(
            "forecast".into(),
            rows.iter().map(|r| r.forecast).collect::<Vec<_>>(),
        ),
        Column::new("lower".into(), rows.iter().map(|r| r.lower).collect::<Vec<_>>()),
        Column::new("upper".into(), rows.iter().map(|r| r.upper).collect::<Vec<_>>()),
        Column::new("actual".into(), rows.iter().map(|r| r.actual).collect::<Vec<_>>()),
        Column::new("open".into(), rows.iter().map(|r| r.open).collect::<Vec<_>>()),
        Column::new(
            "model_sha256".into(),
            rows.iter().map(|r| r.model_sha256.as_str()).collect::<Vec<_>>(),
        ),
    ]);
    DataFrame::new_infer_height(columns)
}

/// The rows of a stored scores frame.
pub fn rows_of_frame(frame: &DataFrame, series_keys: &[String]) -> PolarsResult<Vec<ScoreRow>> {
    let text = |name: &str| frame.column(name).and_then(|c| c.str().cloned());
    let f64s = |name: &str| frame.column(name).and_then(|c| c.f64().cloned());
    let date = |name: &str| frame.column(name).and_then(|c| Ok(c.date()?.physical().clone()));
    let (series, sha) = (text("series")?, text("model_sha256")?);
    let keys: Vec<StringChunked> = series_keys.iter().map(|k| text(k)).collect::<PolarsResult<_>>()?;
    let (targets, origins) = (date("target_date")?, date("origin")?);
    let horizons = frame.column("horizon")?.i32()?.clone();
    let (forecast, lower, upper, actual) =
        (f64s("forecast")?, f64s("lower")?, f64s("upper")?, f64s("actual")?);
    let open = frame.column("open")?.bool()?.clone();
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let row = (|| {
            Some(ScoreRow {
                series: series.get(i)?.to_string(),
                keys: keys
                    .iter()
                    .map(|k| k.get(i).map(str::to_string))
                    .collect::<Option<_>>()?,
                target_date: date_from_days(targets.get(i)?)?,
                origin: date_from_days(origins.get(i)?)?,
                horizon: horizons.get(i)?.unsigned_abs(),
                forecast: forecast.get(i)?,
                lower: lower.get(i),
                upper: upper.get(i),
                actual: actual.get(i)?,
                open: open.get(i)?,
                model_sha256: sha.get(i)?.to_string(),
            })
        })();
        rows.push(row.ok_or_else(|| polars_err!(ComputeError: "row {}: a null value", i + 1))?);
    }
    Ok(rows)
}

/// Writes scored days (each with rows) as their day files under the model's
/// root, replacing a day's older file; unchanged days are not written.
pub fn write_scores(
    lake: &Lake,
    model: &str,
    series_keys: &[String],
    days: &[DayScores],
) -> Result<WriteCounts, ScoresError> {
    let root = scores_root(model);
    let mut files = Vec::new();
    for day in days.iter().filter(|d| !d.rows.is_empty()) {
        let polars = |source| LakeError::Polars {
            key: crate::lake::prefix_in(&root, day.day),
            source,
        };
        let mut frame = scores_frame(&day.rows, series_keys).map_err(polars)?;
        files.push(DayFile::encode_in(&root, day.day, &mut frame)?);
    }
    Ok(lake.write_days_in(&root, &files, true)?)
}

/// The stored score rows of target days `first ..= last`, day by day.
pub fn read_scores(
    lake: &Lake,
    model: &str,
    series_keys: &[String],
    (first, last): (NaiveDate, NaiveDate),
) -> Result<Vec<ScoreRow>, ScoresError> {
    let root = scores_root(model);
    let partitions = lake.partitions_in(&root)?;
    let days: Vec<(&NaiveDate, &Vec<ObjectMeta>)> = partitions.range(first..=last).collect();
    lake.one_file_per_day(&root, days.iter().copied())?;
    let mut rows = Vec::new();
    for file in days.iter().flat_map(|(_, files)| files.iter()) {
        let uri = lake.store().uri_of(&file.key);
        let unreadable = |problem: String| ScoresError::Unreadable {
            uri: uri.clone(),
            problem,
        };
        let bytes = lake.store().get(&file.key).map_err(LakeError::from)?.bytes;
        let frame = decode_parquet(bytes).map_err(|e| unreadable(format!("not readable Parquet: {e}")))?;
        rows.extend(
            rows_of_frame(&frame, series_keys)
                .map_err(|e| unreadable(format!("{e} (data.series_keys: {series_keys:?})")))?,
        );
    }
    Ok(rows)
}

#[cfg(test)]
#[path = "scores_tests.rs"]
mod tests;
