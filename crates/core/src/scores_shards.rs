//! The intermediates of a sharded `monitor` (`monitor --shard K/N`, then
//! `monitor --fan-in N`): each shard's share of the scores table's rows and
//! its marker, staged beside the table where no reader looks, and the
//! fan-in's check that every shard is there, complete, and scored from the
//! forecasts and actuals the lake holds now, before the day files of the
//! table are written (by `scores::write_scores`, as an unsharded monitor
//! writes them).
//!
//! Layout: `scores/<model>/_shards/dt=D/` (D: the monitor's `--date`)
//! - `part-<k>-of-<n>-<first 16 hex of its SHA-256>.parquet`: the shard's
//!   scored rows of every target day (the table's columns), day by day;
//! - `shard-<k>-of-<n>.json`: its marker, written LAST: model, day,
//!   horizon, shard, the forecasts it read (origin, model, part files'
//!   SHA-256) and the actuals (each target day's sales files), per target
//!   day the origins, rows and forecasts without an actual, the rows and
//!   the file's SHA-256 and size.
//! - `committed.json`: written by a fan-in after it committed, before it
//!   deletes the shards: the N and inputs it checked, the days it scored
//!   and the table's files of those days, so that a retried fan-in reports
//!   that commit instead of refusing for want of shards
//!   (`pipeline::monitor_shards`).
//!
//! Staging itself (create-only, content-addressed, marker last) is
//! `staging.rs`, shared with sharded predict. The folder is outside the
//! table's `dt=` partitions (and starts with `_`), so no reader sees it.
//! After committing, the fan-in deletes the day's shards, every N's:
//! markers first, then files (a retried fan-in answered by the record
//! removes its own N's leftovers only); the record stays until its folder
//! expires (a fan-in of a day over `staging::KEEP_DAYS` later).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError, WriteOutcome, decode_parquet, encode_parquet};
use crate::scores::{
    DayScores, PredictionVersion, SCORES_ROOT, ScoreRow, ScoresError, rows_of_frame, scores_frame,
};
use crate::shard::Shard;
use crate::staging::{StagedFile, StagingError, marker_name, part_stem, read_file, read_marker, stage};
use crate::storage::StoreError;

pub const SCORES_SHARD_FORMAT: u32 = 1;

/// The name of a fan-in's record of its commit in the day's folder.
pub const COMMITTED_RECORD: &str = "committed.json";

#[derive(Debug, thiserror::Error)]
pub enum ScoresShardsError {
    /// The fan-in found shards missing, unfinished, damaged, stale or of
    /// another N: nothing was written.
    #[error("cannot fan in the {n} monitor shards of {date}: {}", problems.join("; "))]
    Incomplete {
        date: NaiveDate,
        n: u32,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Scores(#[from] ScoresError),
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sales files of one target day that a run read its actuals from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualsVersion {
    pub day: NaiveDate,
    pub files: Vec<String>,
}

/// What a monitor run of a day read: the committed forecasts of its
/// origin days and the sales files of its target days, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub predictions: Vec<PredictionVersion>,
    pub actuals: Vec<ActualsVersion>,
}

/// One target day of a shard: its share of the day's scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDay {
    pub day: NaiveDate,
    /// The origins with forecasts of the day for the shard's series.
    pub origins: Vec<NaiveDate>,
    pub rows: u64,
    pub without_actual: u64,
}

/// `shard-<k>-of-<n>.json`: one monitor shard's output, complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoresShardMarker {
    pub format: u32,
    pub model: String,
    pub date: NaiveDate,
    pub horizon_days: u32,
    pub shard: Shard,
    pub inputs: Inputs,
    pub days: Vec<ShardDay>,
    pub rows: u64,
    pub file: StagedFile,
    pub salescast: String,
}

/// What [`write_shard`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoresShardWritten {
    /// `written`: a new marker; `unchanged`: the same marker and file were
    /// there; `replaced`: the marker or file changed.
    pub outcome: WriteOutcome,
    pub marker_key: String,
    pub marker: ScoresShardMarker,
    /// This shard's earlier part files, deleted.
    pub removed: Vec<String>,
}

/// What every marker of a fan-in must say.
pub struct Expected<'a> {
    pub model: &'a str,
    pub date: NaiveDate,
    pub horizon_days: u32,
    pub inputs: &'a Inputs,
}

/// The staging folder of one monitor day's shards.
pub fn shards_prefix(model: &str, date: NaiveDate) -> String {
    format!("{}dt={}/", staging_root(model), date.format("%Y-%m-%d"))
}

/// Stages one shard's scored days (the series of `shard` only, as
/// `Plan::score_days` returns them) and then its marker.
pub fn write_shard(
    lake: &Lake,
    expected: &Expected,
    shard: Shard,
    series_keys: &[String],
    days: &[DayScores],
) -> Result<ScoresShardWritten, ScoresShardsError> {
    let prefix = shards_prefix(expected.model, expected.date);
    let rows: Vec<ScoreRow> = days.iter().flat_map(|d| d.rows.iter().cloned()).collect();
    let polars = |source| {
        ScoresError::Lake(LakeError::Polars {
            key: prefix.clone(),
            source,
        })
    };
    let mut frame = scores_frame(&rows, series_keys).map_err(polars)?;
    let bytes = encode_parquet(&mut frame).map_err(polars)?;
    let make = |file: StagedFile| ScoresShardMarker {
        format: SCORES_SHARD_FORMAT,
        model: expected.model.to_string(),
        date: expected.date,
        horizon_days: expected.horizon_days,
        shard,
        inputs: expected.inputs.clone(),
        days: days
            .iter()
            .map(|d| ShardDay {
                day: d.day,
                origins: d.origins.clone(),
                rows: d.rows.len() as u64,
                without_actual: d.without_actual as u64,
            })
            .collect(),
        rows: rows.len() as u64,
        file,
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    let staged = stage(lake.store(), &prefix, shard, &bytes, make)?;
    Ok(ScoresShardWritten {
        outcome: staged.outcome,
        marker_key: staged.marker_key,
        marker: make(staged.file),
        removed: staged.removed,
    })
}

/// The N shards of `expected.date`, checked and combined into the scored
/// days an unsharded monitor makes: every marker there, saying what is
/// expected (the same inputs as the lake holds now); every file there with
/// its marker's SHA-256, size and rows; every row in its shard. A day's
/// rows are ordered by series, then origin. Any problem:
/// [`ScoresShardsError::Incomplete`] naming each bad shard.
pub fn read_shards(
    lake: &Lake,
    expected: &Expected,
    series_keys: &[String],
    n: u32,
) -> Result<Vec<DayScores>, ScoresShardsError> {
    let store = lake.store();
    let prefix = shards_prefix(expected.model, expected.date);
    let mut problems = Vec::new();
    let mut days: BTreeMap<NaiveDate, DayScores> = BTreeMap::new();
    for k in 0..n {
        let shard = Shard { k, n };
        let key = format!("{prefix}{}", marker_name(shard));
        match read_one(lake, expected, shard, &key, series_keys) {
            Ok(Some((marker, rows))) => {
                for d in &marker.days {
                    let day = days.entry(d.day).or_insert_with(|| DayScores {
                        day: d.day,
                        origins: Vec::new(),
                        rows: Vec::new(),
                        without_actual: 0,
                    });
                    day.origins.extend(&d.origins);
                    day.without_actual += d.without_actual as usize;
                }
                for row in rows {
                    if let Some(day) = days.get_mut(&row.target_date) {
                        day.rows.push(row);
                    }
                }
            }
            Ok(None) => problems.push(format!(
                "shard {shard}: no marker {} (not run, or not finished)",
                store.uri_of(&key)
            )),
            Err(problem) => problems.push(format!("shard {shard}: {problem}")),
        }
    }
    if !problems.is_empty() {
        let others: Vec<String> = store
            .list(&prefix)?
            .into_iter()
            .filter_map(|m| m.key.strip_prefix(&prefix).map(str::to_string))
            .filter(|name| {
                name.ends_with(".json")
                    && !name.ends_with(&format!("-of-{n}.json"))
                    && name != COMMITTED_RECORD
            })
            .collect();
        if !others.is_empty() {
            problems.push(format!(
                "shards of another N are staged ({}): they do not count towards --fan-in {n}",
                others.join(", ")
            ));
        }
        return Err(ScoresShardsError::Incomplete {
            date: expected.date,
            n,
            problems,
        });
    }
    Ok(days
        .into_values()
        .map(|mut day| {
            day.origins.sort();
            day.origins.dedup();
            day.rows
                .sort_by(|a, b| (&a.series, a.origin).cmp(&(&b.series, b.origin)));
            day
        })
        .collect())
}

/// One shard's marker and rows: `Ok(None)` when it has no marker, `Err`
/// with the problem when anything disagrees.
fn read_one(
    lake: &Lake,
    expected: &Expected,
    shard: Shard,
    key: &str,
    series_keys: &[String],
) -> Result<Option<(ScoresShardMarker, Vec<ScoreRow>)>, String> {
    let store = lake.store();
    let Some(marker) = read_marker::<ScoresShardMarker>(store, key)? else {
        return Ok(None);
    };
    let uri = store.uri_of(key);
    let says = (
        marker.model.as_str(),
        marker.date,
        marker.horizon_days,
        marker.shard,
    );
    let wanted = (expected.model, expected.date, expected.horizon_days, shard);
    if says != wanted || marker.format != SCORES_SHARD_FORMAT {
        return Err(format!(
            "{uri} describes model {} on {}, horizon {}, shard {} (format {}); \
             expected {} on {}, horizon {}, shard {shard} (format {SCORES_SHARD_FORMAT})",
            says.0, says.1, says.2, says.3, marker.format, wanted.0, wanted.1, wanted.2,
        ));
    }
    if &marker.inputs != expected.inputs {
        return Err(format!(
            "{uri} is stale: it scored {}, the lake holds other ones now: run it again",
            differences(&marker.inputs, expected.inputs)
        ));
    }
    let bytes = read_file(store, key, &marker.file)?;
    let file_uri = store.uri_of(&marker.file.key);
    let frame = decode_parquet(bytes).map_err(|e| format!("{file_uri}: not readable Parquet: {e}"))?;
    let rows = rows_of_frame(&frame, series_keys).map_err(|e| format!("{file_uri}: {e}"))?;
    let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if !shard.holds(&row.keys) {
            return Err(format!(
                "{file_uri}: row {}: series {:?} is not in shard {shard}",
                i + 1,
                row.series
            ));
        }
        *per_day.entry(row.target_date).or_default() += 1;
    }
    let listed: BTreeMap<NaiveDate, u64> = marker
        .days
        .iter()
        .filter(|d| d.rows > 0)
        .map(|d| (d.day, d.rows))
        .collect();
    if rows.len() as u64 != marker.rows || per_day != listed {
        return Err(format!(
            "{file_uri}: {} rows ({per_day:?} by target day), its marker lists {} ({listed:?})",
            rows.len(),
            marker.rows
        ));
    }
    Ok(Some((marker, rows)))
}

/// The origins and target days whose inputs differ, in words.
fn differences(scored: &Inputs, now: &Inputs) -> String {
    let mut origins: Vec<NaiveDate> = Vec::new();
    for v in scored.predictions.iter().chain(&now.predictions) {
        let (a, b) = (
            scored.predictions.iter().find(|p| p.origin == v.origin),
            now.predictions.iter().find(|p| p.origin == v.origin),
        );
        if a != b && !origins.contains(&v.origin) {
            origins.push(v.origin);
        }
    }
    let mut days: Vec<NaiveDate> = Vec::new();
    for v in scored.actuals.iter().chain(&now.actuals) {
        let (a, b) = (
            scored.actuals.iter().find(|p| p.day == v.day),
            now.actuals.iter().find(|p| p.day == v.day),
        );
        if a != b && !days.contains(&v.day) {
            days.push(v.day);
        }
    }
    origins.sort();
    days.sort();
    let list = |days: &[NaiveDate]| days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    match (origins.is_empty(), days.is_empty()) {
        (false, true) => format!("other forecasts made on {}", list(&origins)),
        (true, false) => format!("other actuals of {}", list(&days)),
        _ => format!(
            "other forecasts made on {} and actuals of {}",
            list(&origins),
            list(&days)
        ),
    }
}

/// After a commit: deletes the day's staged shards (of every N, or of
/// `only`), markers first, then files; not the fan-in's record
/// ([`COMMITTED_RECORD`]). Returns the keys.
pub fn remove_staged(
    lake: &Lake,
    model: &str,
    date: NaiveDate,
    only: Option<u32>,
) -> Result<Vec<String>, StoreError> {
    let store = lake.store();
    let prefix = shards_prefix(model, date);
    let record = format!("{prefix}{COMMITTED_RECORD}");
    // Told apart by the file name alone (a model's name may hold `-of-2-`).
    let of_n = |key: &str| {
        only.is_none_or(|n| {
            key.strip_prefix(&prefix).is_some_and(|name| {
                (0..n)
                    .map(|k| Shard { k, n })
                    .any(|shard| name == marker_name(shard) || name.starts_with(&part_stem(shard)))
            })
        })
    };
    let mut keys: Vec<String> = store
        .list(&prefix)?
        .into_iter()
        .map(|m| m.key)
        .filter(|key| *key != record && of_n(key))
        .collect();
    keys.sort_by_key(|k| !k.ends_with(".json"));
    for key in &keys {
        store.delete(key)?;
    }
    Ok(keys)
}

/// The folder of every monitor day's staged shards (days more than
/// `staging::KEEP_DAYS` old: runs never fanned in, deleted by
/// `staging::expire_after_commit`).
pub fn staging_root(model: &str) -> String {
    format!("{SCORES_ROOT}{model}/_shards/")
}

#[cfg(test)]
#[path = "scores_shards_tests.rs"]
mod tests;
