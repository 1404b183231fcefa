//! The forecast partitions of the lake: writing and reading
//! `predictions/<model>/dt=YYYY-MM-DD/` (dt = the data day D; the rows forecast
//! D+1 .. D+H), the frame's schema check, and the `_manifest.json` commit marker.
//!
//! A partition is one `part-<first 16 hex of its SHA-256>.parquet` and a
//! manifest written LAST that lists it with its SHA-256 and size. Readers use
//! only partitions with a manifest and only the files it lists, verified.
//! Neither file carries a timestamp: a rerun for the same day and champion
//! finds the same bytes and writes nothing. A new champion for the same day
//! writes its part file, replaces the manifest (conditionally on the version
//! read, so two writers cannot both commit from the same state), then deletes
//! the part files the manifest no longer lists (Athena reads every file of the
//! folder). Two writers of one day at once are not supported beyond that: the
//! loser fails, but its cleanup window may remove the other's uncommitted file,
//! which the readers' hash check then reports.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::ingest::days_from_date;
use crate::lake::{Lake, WriteOutcome, decode_parquet, encode_parquet};
use crate::storage::{PutMode, StoreError, Version, check_key};

pub const PREDICTIONS_ROOT: &str = "predictions/";
pub const MANIFEST_FILE: &str = "_manifest.json";
pub const MANIFEST_FORMAT: u32 = 1;

/// The columns after the series keys, in order, with their types.
fn fixed_columns() -> [(&'static str, DataType); 8] {
    [
        ("target_date", DataType::Date),
        ("horizon", DataType::Int32),
        ("forecast", DataType::Float64),
        ("lower", DataType::Float64),
        ("upper", DataType::Float64),
        ("model_sha256", DataType::String),
        ("data_day", DataType::Date),
        ("planned", DataType::Boolean),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum PredictionsError {
    /// The frame handed to [`write_predictions`] breaks the schema: a caller's bug.
    #[error("predictions column {column:?}: {problem}")]
    Frame { column: String, problem: String },
    #[error("invalid predictions argument {name}: {problem}")]
    Argument { name: &'static str, problem: String },
    /// A stored manifest or part file that does not hold what it should.
    #[error("{uri}: {problem}")]
    Corrupt { uri: String, problem: String },
    /// Another writer changed the manifest while this write ran.
    #[error("{uri}: changed by another writer during this write; run again")]
    Concurrent { uri: String },
    #[error("{key}")]
    Polars {
        key: String,
        #[source]
        source: PolarsError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A test-only pause point failed (see `registry::pause`).
    #[error("test pause point: {0}")]
    Pause(#[from] std::io::Error),
}

/// One file of a partition, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionFile {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
}

/// One forecast day of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    pub target_date: NaiveDate,
    pub horizon: u32,
    pub forecast: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Covariates from a plan (false: the documented defaults).
    pub planned: bool,
}

/// `_manifest.json`: the commit marker of one forecast partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionsManifest {
    pub format: u32,
    pub model: String,
    pub model_sha256: String,
    pub data_day: NaiveDate,
    pub horizon_days: u32,
    pub interval: f64,
    pub rows: u64,
    pub files: Vec<PredictionFile>,
    /// The salescast version that wrote it.
    pub salescast: String,
}

/// What [`write_predictions`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionsWritten {
    /// `written`: the day had no manifest; `unchanged`: nothing was put;
    /// `replaced`: an existing manifest or a damaged part file was replaced.
    pub outcome: WriteOutcome,
    pub manifest_key: String,
    pub manifest: PredictionsManifest,
    /// Part files of the folder the manifest does not list, deleted.
    pub removed: Vec<String>,
}

/// The folder of one model's forecasts made from data up to `data_day`.
pub fn predictions_prefix(model: &str, data_day: NaiveDate) -> String {
    format!("{PREDICTIONS_ROOT}{model}/dt={}/", data_day.format("%Y-%m-%d"))
}

fn check_model(model: &str) -> Result<(), PredictionsError> {
    let invalid = |problem: String| PredictionsError::Argument {
        name: "model",
        problem,
    };
    if model.contains('/') || model.starts_with("dt=") {
        return Err(invalid(format!("{model:?} must be one path segment")));
    }
    check_key(&format!("{PREDICTIONS_ROOT}{model}/{MANIFEST_FILE}")).map_err(|e| invalid(e.to_string()))
}

/// Is `key` a part file directly inside `prefix`?
fn is_part_file(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|name| name.starts_with("part-") && name.ends_with(".parquet") && !name.contains('/'))
}

fn frame_error(column: &str, problem: impl Into<String>) -> PredictionsError {
    PredictionsError::Frame {
        column: column.to_string(),
        problem: problem.into(),
    }
}

fn polars(column: &str) -> impl Fn(PolarsError) -> PredictionsError + '_ {
    move |e| frame_error(column, e.to_string())
}

fn expected_order() -> String {
    let fixed: Vec<&str> = fixed_columns().iter().map(|(n, _)| *n).collect();
    format!("series, <series keys>, {}", fixed.join(", "))
}

/// Checks the columns, their types and order, then the values: no nulls but
/// in lower/upper (null together), `series` the keys joined with "/",
/// one model and data day, horizons 1..=H with target_date = data_day +
/// horizon, rows strictly ordered by series then target_date.
pub fn check_frame(
    frame: &DataFrame,
    model_sha256: &str,
    data_day: NaiveDate,
    horizon_days: u32,
) -> Result<(), PredictionsError> {
    let fixed = fixed_columns();
    let columns = frame.columns();
    for (name, dtype) in std::iter::once(&("series", DataType::String)).chain(fixed.iter()) {
        let column = frame
            .column(name)
            .map_err(|_| frame_error(name, format!("missing (expected {})", expected_order())))?;
        if column.dtype() != dtype {
            return Err(frame_error(
                name,
                format!("has type {}, expected {dtype}", column.dtype()),
            ));
        }
    }
    let n_keys = columns.len().saturating_sub(fixed.len() + 1);
    let names: Vec<&str> = columns.iter().map(|c| c.name().as_str()).collect();
    let in_place = names.first() == Some(&"series")
        && names.get(1 + n_keys..).is_some_and(|tail| {
            tail.iter()
                .zip(fixed.iter())
                .all(|(have, (want, _))| have == want)
        });
    if !in_place || n_keys == 0 {
        let problem = format!(
            "columns are [{}], expected {}",
            names.join(", "),
            expected_order()
        );
        return Err(frame_error("series", problem));
    }
    let keys = columns.get(1..=n_keys).unwrap_or_default();
    for key in keys {
        if key.dtype() != &DataType::String {
            return Err(frame_error(
                key.name(),
                format!("series key has type {}, expected String", key.dtype()),
            ));
        }
    }
    for column in columns {
        let name = column.name().as_str();
        if name != "lower" && name != "upper" && column.null_count() > 0 {
            return Err(frame_error(
                name,
                format!("has {} null values", column.null_count()),
            ));
        }
    }
    check_values(frame, keys, model_sha256, data_day, horizon_days)
}

fn check_values(
    frame: &DataFrame,
    keys: &[Column],
    model_sha256: &str,
    data_day: NaiveDate,
    horizon_days: u32,
) -> Result<(), PredictionsError> {
    let text = |name: &'static str| {
        frame
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(polars(name))
    };
    let date = |name: &'static str| {
        frame
            .column(name)
            .and_then(|c| c.date().map(|d| d.physical().clone()))
            .map_err(polars(name))
    };
    let f64s = |name: &'static str| {
        frame
            .column(name)
            .and_then(|c| c.f64().cloned())
            .map_err(polars(name))
    };
    let (series, sha, days) = (text("series")?, text("model_sha256")?, date("data_day")?);
    let targets = date("target_date")?;
    let horizons = frame
        .column("horizon")
        .and_then(|c| c.i32().cloned())
        .map_err(polars("horizon"))?;
    let (lower, upper) = (f64s("lower")?, f64s("upper")?);
    let key_columns: Vec<StringChunked> = keys
        .iter()
        .map(|c| c.str().cloned().map_err(polars(c.name())))
        .collect::<Result<_, _>>()?;
    let mut key_iters: Vec<_> = key_columns.iter().map(|c| c.iter()).collect();
    let day = days_from_date(data_day);
    let row_error =
        |name: &str, i: usize, problem: String| frame_error(name, format!("row {}: {problem}", i + 1));
    let mut previous: Option<(&str, i32)> = None;
    let (mut s_it, mut t_it, mut h_it) = (series.iter(), targets.iter(), horizons.iter());
    let (mut m_it, mut d_it) = (sha.iter(), days.iter());
    for i in 0..frame.height() {
        let (s, target, h) = (
            s_it.next().flatten(),
            t_it.next().flatten(),
            h_it.next().flatten(),
        );
        let (row_sha, row_day) = (m_it.next().flatten(), d_it.next().flatten());
        let (Some(s), Some(target), Some(h)) = (s, target, h) else {
            return Err(row_error("series", i, "null value".into()));
        };
        if row_sha != Some(model_sha256) {
            return Err(row_error(
                "model_sha256",
                i,
                format!("{row_sha:?}, expected {model_sha256:?}"),
            ));
        }
        if row_day != Some(day) {
            return Err(row_error("data_day", i, format!("not the data day {data_day}")));
        }
        if h < 1 || h.unsigned_abs() > horizon_days {
            return Err(row_error(
                "horizon",
                i,
                format!("{h} is outside 1..={horizon_days}"),
            ));
        }
        if Some(target) != day.checked_add(h) {
            return Err(row_error(
                "target_date",
                i,
                format!("not data_day + horizon ({h})"),
            ));
        }
        let joined: Vec<&str> = key_iters
            .iter_mut()
            .filter_map(|it| it.next().flatten())
            .collect();
        if joined.len() != key_columns.len() || joined.join("/") != s {
            return Err(row_error(
                "series",
                i,
                format!("{s:?} is not the series keys joined with \"/\""),
            ));
        }
        if previous.is_some_and(|p| p >= (s, target)) {
            return Err(row_error(
                "series",
                i,
                "rows are not strictly ordered by series, then target_date".into(),
            ));
        }
        previous = Some((s, target));
    }
    if let Some(i) = lower
        .iter()
        .zip(upper.iter())
        .position(|(l, u)| l.is_some() != u.is_some())
    {
        return Err(row_error(
            "lower",
            i,
            "lower and upper must be null together".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_arguments(
    model: &str,
    model_sha256: &str,
    horizon_days: u32,
    interval: f64,
) -> Result<(), PredictionsError> {
    check_model(model)?;
    let invalid = |name, problem: &str| {
        Err(PredictionsError::Argument {
            name,
            problem: problem.to_string(),
        })
    };
    if model_sha256.len() != 64
        || !model_sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return invalid("model_sha256", "must be 64 lowercase hex digits");
    }
    if horizon_days == 0 {
        return invalid("horizon_days", "must be at least 1");
    }
    if !(interval > 0.0 && interval < 1.0) {
        return invalid("interval", "must be between 0 and 1");
    }
    Ok(())
}

/// The manifest's bytes: pretty JSON and a newline, the same for the same manifest.
fn manifest_bytes(manifest: &PredictionsManifest) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes one day's forecasts of `model` (schema: see [`check_frame`]) as a
/// part file, then its manifest; see the module doc for reruns and replacement.
#[allow(clippy::too_many_arguments)]
pub fn write_predictions(
    lake: &Lake,
    model: &str,
    model_sha256: &str,
    data_day: NaiveDate,
    horizon_days: u32,
    interval: f64,
    frame: &mut DataFrame,
) -> Result<PredictionsWritten, PredictionsError> {
    check_arguments(model, model_sha256, horizon_days, interval)?;
    check_frame(frame, model_sha256, data_day, horizon_days)?;
    let store = lake.store();
    let prefix = predictions_prefix(model, data_day);
    let bytes = encode_parquet(frame).map_err(|source| PredictionsError::Polars {
        key: prefix.clone(),
        source,
    })?;
    let sha256 = sha256_hex(&bytes);
    let key = format!("{prefix}part-{}.parquet", sha256.get(..16).unwrap_or(&sha256));
    let manifest = PredictionsManifest {
        format: MANIFEST_FORMAT,
        model: model.to_string(),
        model_sha256: model_sha256.to_string(),
        data_day,
        horizon_days,
        interval,
        rows: frame.height() as u64,
        files: vec![PredictionFile {
            key: key.clone(),
            sha256: sha256.clone(),
            bytes: bytes.len() as u64,
        }],
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    let manifest_key = format!("{prefix}{MANIFEST_FILE}");
    let new_manifest = manifest_bytes(&manifest);
    let listing = store.list(&prefix)?;
    let old_manifest = match store.get(&manifest_key) {
        Ok(object) => Some(object),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };

    let mut put_anything = false;
    if listing.iter().any(|m| m.key == key) {
        // Same name, so the same content unless damaged: repair it if so.
        if sha256_hex(&store.get(&key)?.bytes) != sha256 {
            tracing::warn!("{}: damaged, rewriting it", store.uri_of(&key));
            store.put(&key, &bytes, PutMode::Overwrite)?;
            put_anything = true;
        }
    } else {
        match store.put(&key, &bytes, PutMode::Create) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => put_anything = true,
            Err(e) => return Err(e.into()),
        }
    }

    crate::registry::pause::at(crate::registry::pause::Step::PredictionsStaged)?;
    let concurrent = |e: StoreError| match e {
        StoreError::AlreadyExists { .. } | StoreError::Precondition { .. } => PredictionsError::Concurrent {
            uri: store.uri_of(&manifest_key),
        },
        other => other.into(),
    };
    let outcome = match old_manifest {
        Some(old) if old.bytes == new_manifest => {
            if put_anything {
                WriteOutcome::Replaced
            } else {
                WriteOutcome::Unchanged
            }
        }
        Some(old) => {
            store
                .put(&manifest_key, &new_manifest, PutMode::Update(old.version))
                .map_err(concurrent)?;
            WriteOutcome::Replaced
        }
        None => {
            store
                .put(&manifest_key, &new_manifest, PutMode::Create)
                .map_err(concurrent)?;
            WriteOutcome::Written
        }
    };

    let mut removed = Vec::new();
    for stale in listing
        .iter()
        .filter(|m| m.key != key && is_part_file(&prefix, &m.key))
    {
        store.delete(&stale.key)?;
        removed.push(stale.key.clone());
    }
    Ok(PredictionsWritten {
        outcome,
        manifest_key,
        manifest,
        removed,
    })
}

/// The manifest of one committed partition and its store version, without
/// its files: `None` when the folder has no manifest.
pub fn read_predictions_manifest(
    lake: &Lake,
    model: &str,
    data_day: NaiveDate,
) -> Result<Option<(PredictionsManifest, Version)>, PredictionsError> {
    check_model(model)?;
    let key = format!("{}{MANIFEST_FILE}", predictions_prefix(model, data_day));
    let object = match lake.store().get(&key) {
        Ok(object) => object,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let manifest = serde_json::from_slice(&object.bytes).map_err(|e| PredictionsError::Corrupt {
        uri: lake.store().uri_of(&key),
        problem: format!("not a predictions manifest: {e}"),
    })?;
    Ok(Some((manifest, object.version)))
}

/// Reads one committed partition: `None` when the folder has no manifest
/// (nothing written, or a write that did not finish). Reads exactly the files
/// the manifest lists, each checked against its SHA-256 and size.
pub fn read_predictions(
    lake: &Lake,
    model: &str,
    data_day: NaiveDate,
) -> Result<Option<(PredictionsManifest, DataFrame)>, PredictionsError> {
    let Some((manifest, _)) = read_predictions_manifest(lake, model, data_day)? else {
        return Ok(None);
    };
    let store = lake.store();
    let prefix = predictions_prefix(model, data_day);
    let manifest_uri = store.uri_of(&format!("{prefix}{MANIFEST_FILE}"));
    let corrupt = |uri: &str, problem: String| PredictionsError::Corrupt {
        uri: uri.to_string(),
        problem,
    };
    if manifest.format != MANIFEST_FORMAT || manifest.model != model || manifest.data_day != data_day {
        return Err(corrupt(
            &manifest_uri,
            format!(
                "describes format {} of model {:?} for {}, expected format {MANIFEST_FORMAT} of {model:?} for {data_day}",
                manifest.format, manifest.model, manifest.data_day
            ),
        ));
    }
    let mut frames = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let uri = store.uri_of(&file.key);
        if !is_part_file(&prefix, &file.key) {
            return Err(corrupt(
                &manifest_uri,
                format!("lists {:?}, not a part file of {prefix}", file.key),
            ));
        }
        let bytes = match store.get(&file.key) {
            Ok(object) => object.bytes,
            Err(StoreError::NotFound { .. }) => {
                return Err(corrupt(&uri, "listed in the manifest but missing".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let sha256 = sha256_hex(&bytes);
        if bytes.len() as u64 != file.bytes || sha256 != file.sha256 {
            return Err(corrupt(
                &uri,
                format!(
                    "{} bytes with SHA-256 {sha256}, but the manifest lists {} bytes with SHA-256 {}",
                    bytes.len(),
                    file.bytes,
                    file.sha256
                ),
            ));
        }
        frames.push(decode_parquet(bytes).map_err(|e| corrupt(&uri, format!("not readable Parquet: {e}")))?);
    }
    let mut iter = frames.into_iter();
    let mut frame = iter.next().unwrap_or_default();
    for next in iter {
        frame
            .vstack_mut_owned(next)
            .map_err(|e| corrupt(&manifest_uri, e.to_string()))?;
    }
    if frame.height() as u64 != manifest.rows {
        return Err(corrupt(
            &manifest_uri,
            format!("lists {} rows, the files hold {}", manifest.rows, frame.height()),
        ));
    }
    if !manifest.files.is_empty() {
        check_frame(&frame, &manifest.model_sha256, data_day, manifest.horizon_days)
            .map_err(|e| corrupt(&manifest_uri, e.to_string()))?;
    }
    Ok(Some((manifest, frame)))
}

/// Every data day of `model` with a forecast folder, ascending, and whether
/// it is committed (has its manifest).
pub fn prediction_folders(lake: &Lake, model: &str) -> Result<BTreeMap<NaiveDate, bool>, PredictionsError> {
    check_model(model)?;
    let root = format!("{PREDICTIONS_ROOT}{model}/dt=");
    let mut days: BTreeMap<NaiveDate, bool> = BTreeMap::new();
    for meta in lake.store().list(&root)? {
        let Some((day, file)) = meta.key.strip_prefix(&root).and_then(|rest| rest.split_once('/')) else {
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            continue;
        };
        *days.entry(day).or_default() |= file == MANIFEST_FILE;
    }
    Ok(days)
}

/// The data days of `model` with a committed (manifested) partition,
/// ascending; folders of writes that did not finish are skipped (`salescast
/// doctor` lists them).
pub fn list_prediction_days(lake: &Lake, model: &str) -> Result<Vec<NaiveDate>, PredictionsError> {
    Ok(prediction_folders(lake, model)?
        .into_iter()
        .filter_map(|(day, committed)| committed.then_some(day))
        .collect())
}

#[cfg(test)]
#[path = "predictions_tests.rs"]
mod tests;
