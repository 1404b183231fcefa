//! The intermediates of a sharded `predict` (`predict --shard K/N`, then
//! `predict --fan-in N`): each shard's forecasts and its marker, staged
//! where no reader looks, and the fan-in's check that every shard is there,
//! complete and from the champion before the day's partition is committed.
//!
//! Layout: `predictions/<model>/_shards/dt=D/<model sha256>/`
//! - `part-<k>-of-<n>-<first 16 hex of its SHA-256>.parquet`: the shard's
//!   rows (the predictions schema, sorted by series and target date);
//! - `shard-<k>-of-<n>.json`: its marker, written LAST: model and its
//!   SHA-256, data day, horizon, interval, shard, rows and the file's
//!   SHA-256 and size.
//!
//! The folder is outside every `dt=` partition, so readers that go through
//! the manifest, and Athena, DuckDB or pyarrow reading a partition folder,
//! never see it (and `_` hides it from Hive-style discovery). Part files are
//! content-addressed: a retried shard that makes the same bytes finds its
//! file and marker and writes nothing; one that makes other bytes (the
//! window was re-ingested) writes its new file, then its marker, then
//! removes its old file. The champion's SHA-256 is in the path, so shards
//! run with different champions cannot meet in one folder: the fan-in reads
//! only the current champion's, and names any shard that is missing there
//! but was run with another model. After a commit the fan-in deletes the
//! day's folders of other champions and keeps the champion's own, so a
//! retried fan-in finds the same shards and writes nothing. Staging itself
//! (content-addressed file, marker last) is `staging.rs`, shared with
//! sharded monitor.

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::short;
use crate::lake::{Lake, WriteOutcome, decode_parquet, encode_parquet};
use crate::predictions::{PREDICTIONS_ROOT, PredictionFile, PredictionsError, check_arguments, check_frame};
use crate::shard::Shard;
use crate::staging::{StagingError, marker_name, read_file, read_marker, stage};
use crate::storage::StoreError;

pub const SHARD_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ShardsError {
    /// The fan-in found shards missing, unfinished, damaged or from another
    /// model: nothing was committed.
    #[error("cannot fan in the {n} shards of {data_day}: {}", problems.join("; "))]
    Incomplete {
        data_day: NaiveDate,
        n: u32,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Predictions(#[from] PredictionsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `shard-<k>-of-<n>.json`: one shard's output, complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardMarker {
    pub format: u32,
    pub model: String,
    pub model_sha256: String,
    pub data_day: NaiveDate,
    pub horizon_days: u32,
    pub interval: f64,
    pub shard: Shard,
    pub series: u64,
    pub rows: u64,
    pub file: PredictionFile,
    pub salescast: String,
}

/// What [`write_shard`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardWritten {
    /// `written`: a new marker; `unchanged`: the same marker and file were
    /// there; `replaced`: the marker or file changed.
    pub outcome: WriteOutcome,
    pub marker_key: String,
    pub marker: ShardMarker,
    /// This shard's earlier part files, deleted.
    pub removed: Vec<String>,
}

/// The staging folder of one day's shards for one champion.
pub fn shards_prefix(model: &str, data_day: NaiveDate, model_sha256: &str) -> String {
    format!("{}{model_sha256}/", day_prefix(model, data_day))
}

/// The staging folder of one day's shards, every champion.
fn day_prefix(model: &str, data_day: NaiveDate) -> String {
    format!("{}dt={}/", staging_root(model), data_day.format("%Y-%m-%d"))
}

fn frame_error(problem: String) -> PredictionsError {
    PredictionsError::Frame {
        column: "series".into(),
        problem,
    }
}

/// The series keys of a predictions frame: the columns between `series`
/// and `target_date` (its schema is checked first).
fn key_columns(frame: &DataFrame) -> Result<Vec<StringChunked>, PredictionsError> {
    let names: Vec<&str> = frame.get_column_names().iter().map(|n| n.as_str()).collect();
    let end = names.iter().position(|n| *n == "target_date").unwrap_or(1);
    names
        .get(1..end)
        .unwrap_or_default()
        .iter()
        .map(|n| {
            frame
                .column(n)
                .and_then(|c| c.str().cloned())
                .map_err(|e| frame_error(e.to_string()))
        })
        .collect()
}

/// Every row's series is in `shard`; returns how many series there are.
fn check_membership(frame: &DataFrame, shard: Shard) -> Result<u64, PredictionsError> {
    let keys = key_columns(frame)?;
    let mut iters: Vec<_> = keys.iter().map(|c| c.iter()).collect();
    let mut previous: Option<Vec<&str>> = None;
    let mut series = 0;
    for i in 0..frame.height() {
        let row: Vec<&str> = iters.iter_mut().filter_map(|it| it.next().flatten()).collect();
        if previous.as_ref() == Some(&row) {
            continue;
        }
        if !shard.holds(&row) {
            return Err(frame_error(format!(
                "row {}: series {:?} is not in shard {shard}",
                i + 1,
                row.join("/")
            )));
        }
        series += 1;
        previous = Some(row);
    }
    Ok(series)
}

/// Writes one shard's forecasts (the predictions schema, the series of
/// `shard` only) and then its marker; see the module doc.
#[allow(clippy::too_many_arguments)]
pub fn write_shard(
    lake: &Lake,
    model: &str,
    model_sha256: &str,
    data_day: NaiveDate,
    horizon_days: u32,
    interval: f64,
    shard: Shard,
    frame: &mut DataFrame,
) -> Result<ShardWritten, ShardsError> {
    check_arguments(model, model_sha256, horizon_days, interval)?;
    check_frame(frame, model_sha256, data_day, horizon_days)?;
    let series = check_membership(frame, shard)?;
    let prefix = shards_prefix(model, data_day, model_sha256);
    let bytes = encode_parquet(frame).map_err(|source| PredictionsError::Polars {
        key: prefix.clone(),
        source,
    })?;
    let rows = frame.height() as u64;
    let make = |file: PredictionFile| ShardMarker {
        format: SHARD_FORMAT,
        model: model.to_string(),
        model_sha256: model_sha256.to_string(),
        data_day,
        horizon_days,
        interval,
        shard,
        series,
        rows,
        file,
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    let staged = stage(lake.store(), &prefix, shard, &bytes, make).map_err(|e| match e {
        StagingError::Store(e) => ShardsError::Store(e),
        StagingError::Pause(e) => ShardsError::Predictions(PredictionsError::Pause(e)),
    })?;
    let marker = make(staged.file);
    Ok(ShardWritten {
        outcome: staged.outcome,
        marker_key: staged.marker_key,
        marker,
        removed: staged.removed,
    })
}

/// What the fan-in expects every marker to say.
pub struct Expected<'a> {
    pub model: &'a str,
    pub model_sha256: &'a str,
    pub data_day: NaiveDate,
    pub horizon_days: u32,
    pub interval: f64,
}

/// The N shards of the champion `expected.model_sha256`, checked and
/// combined: every marker there, saying what is expected; every file there
/// with its marker's SHA-256, size and rows; every row in its shard. The
/// rows are sorted by series and target date, as an unsharded `predict`
/// writes them. Any problem: [`ShardsError::Incomplete`] naming each bad
/// shard.
pub fn read_shards(
    lake: &Lake,
    expected: &Expected,
    n: u32,
) -> Result<(Vec<ShardMarker>, DataFrame), ShardsError> {
    let store = lake.store();
    let prefix = shards_prefix(expected.model, expected.data_day, expected.model_sha256);
    let others = store.list(&day_prefix(expected.model, expected.data_day))?;
    let mut problems = Vec::new();
    let mut markers = Vec::new();
    let mut frames = Vec::new();
    for k in 0..n {
        let shard = Shard { k, n };
        let name = marker_name(shard);
        let key = format!("{prefix}{name}");
        match read_one(lake, expected, shard, &key) {
            Ok(Some((marker, frame))) => {
                markers.push(marker);
                frames.push(frame);
            }
            Ok(None) => {
                let mut problem = format!(
                    "shard {shard}: no marker {} (not run, or not finished)",
                    store.uri_of(&key)
                );
                let stale: Vec<String> = others
                    .iter()
                    .filter(|m| m.key.ends_with(&format!("/{name}")) && !m.key.starts_with(&prefix))
                    .map(|m| store.uri_of(&m.key))
                    .collect();
                if !stale.is_empty() {
                    problem += &format!(
                        "; it was run with another model than the champion {} ({}): run it again",
                        short(expected.model_sha256),
                        stale.join(", ")
                    );
                }
                problems.push(problem);
            }
            Err(problem) => problems.push(format!("shard {shard}: {problem}")),
        }
    }
    if !problems.is_empty() {
        return Err(ShardsError::Incomplete {
            data_day: expected.data_day,
            n,
            problems,
        });
    }
    let mut iter = frames.into_iter();
    let mut frame = iter.next().unwrap_or_default();
    let corrupt = |e: PolarsError| PredictionsError::Corrupt {
        uri: store.uri_of(&prefix),
        problem: e.to_string(),
    };
    for next in iter {
        frame.vstack_mut_owned(next).map_err(corrupt)?;
    }
    let mut frame = frame
        .sort(["series", "target_date"], SortMultipleOptions::default())
        .map_err(corrupt)?;
    frame.rechunk_mut();
    Ok((markers, frame))
}

/// One shard's marker and rows: `Ok(None)` when it has no marker, `Err`
/// with the problem when anything disagrees.
fn read_one(
    lake: &Lake,
    expected: &Expected,
    shard: Shard,
    key: &str,
) -> Result<Option<(ShardMarker, DataFrame)>, String> {
    let store = lake.store();
    let Some(marker) = read_marker::<ShardMarker>(store, key)? else {
        return Ok(None);
    };
    let uri = store.uri_of(key);
    let says = (
        marker.model.as_str(),
        marker.model_sha256.as_str(),
        marker.data_day,
        marker.horizon_days,
        marker.interval,
        marker.shard,
    );
    let wanted = (
        expected.model,
        expected.model_sha256,
        expected.data_day,
        expected.horizon_days,
        expected.interval,
        shard,
    );
    if says != wanted || marker.format != SHARD_FORMAT {
        return Err(format!(
            "{uri} describes model {} ({}) for {}, horizon {}, interval {}, shard {} (format {}); \
             expected {} ({}) for {}, horizon {}, interval {}, shard {shard} (format {SHARD_FORMAT})",
            says.0,
            short(says.1),
            says.2,
            says.3,
            says.4,
            says.5,
            marker.format,
            wanted.0,
            short(wanted.1),
            wanted.2,
            wanted.3,
            wanted.4,
        ));
    }
    let bytes = read_file(store, key, &marker.file)?;
    let file_uri = store.uri_of(&marker.file.key);
    let frame = decode_parquet(bytes).map_err(|e| format!("{file_uri}: not readable Parquet: {e}"))?;
    if frame.height() as u64 != marker.rows {
        return Err(format!(
            "{file_uri}: {} rows, its marker lists {}",
            frame.height(),
            marker.rows
        ));
    }
    check_frame(
        &frame,
        expected.model_sha256,
        expected.data_day,
        expected.horizon_days,
    )
    .map_err(|e| format!("{file_uri}: {e}"))?;
    check_membership(&frame, shard).map_err(|e| format!("{file_uri}: {e}"))?;
    Ok(Some((marker, frame)))
}

/// After a commit: deletes the day's staged shards of other champions
/// (the champion's own stay, for a retried fan-in). Returns the keys.
pub fn remove_stale(
    lake: &Lake,
    model: &str,
    data_day: NaiveDate,
    model_sha256: &str,
) -> Result<Vec<String>, StoreError> {
    let store = lake.store();
    let keep = shards_prefix(model, data_day, model_sha256);
    let mut removed = Vec::new();
    for meta in store.list(&day_prefix(model, data_day))? {
        if !meta.key.starts_with(&keep) {
            store.delete(&meta.key)?;
            removed.push(meta.key);
        }
    }
    Ok(removed)
}

/// The folder of every day's staged shards (`staging::expire_after_commit`
/// deletes days more than `staging::KEEP_DAYS` old, kept until then for a
/// retried fan-in).
pub fn staging_root(model: &str) -> String {
    format!("{PREDICTIONS_ROOT}{model}/_shards/")
}

#[cfg(test)]
#[path = "predictions_shards_tests.rs"]
mod tests;
