//! Sharded `monitor`: `monitor --date D --shard K/N` scores the stored
//! forecasts of the series of shard K (see `shard.rs`, the assignment
//! predict uses) against their actuals and stages its share of the scores
//! table's rows with a marker, and `monitor --date D --fan-in N` checks
//! that all N shards are there, complete and scored from the forecasts and
//! actuals the lake holds now, then writes the table's day files through
//! the unsharded monitor's writer and reports as it does.
//!
//! The written day files are the unsharded `monitor --date D`'s, byte for
//! byte: a series' scores depend on its own forecasts and actuals alone,
//! the fan-in orders each day's rows by series and origin as `score_day`
//! does, and a day is scored when any shard had forecasts of it. Staging
//! and the checks: `scores_shards.rs`.
//!
//! A fan-in retried after it committed (a build retried after a later
//! step failed) finds the shards gone; the record it left of its commit
//! (`scores_shards::COMMITTED_RECORD`: N, inputs, days, the table's files
//! of those days) lets it report that commit (exit 0, nothing written)
//! when the lake still holds the same forecasts and actuals and the table
//! the files it wrote, instead of refusing.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::monitor::{DaySummary, MonitorReport, Plan, commit, report};
use crate::config::Config;
use crate::lake::{Lake, WriteCounts};
use crate::predictions::read_predictions_manifest;
use crate::progress;
use crate::registry::Registry;
use crate::scores::{OriginForecasts, PredictionVersion, scores_root};
use crate::scores_shards::{
    ActualsVersion, COMMITTED_RECORD, Expected, Inputs, ScoresShardWritten, ScoresShardsError, ShardDay,
    read_shards, remove_staged, shards_prefix, staging_root, write_shard,
};
use crate::shard::Shard;
use crate::staging::read_marker;
use crate::storage::PutMode;

/// A fan-in's record of its commit (`scores_shards::COMMITTED_RECORD`).
#[derive(Debug, Serialize, Deserialize)]
struct Committed {
    n: u32,
    inputs: Inputs,
    days: Vec<DaySummary>,
    /// The scores table's files of those days right after the commit: key,
    /// size and version (a file rewritten since, even under its own name,
    /// is a change).
    files: Vec<(String, u64, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorShardReport {
    pub model: String,
    pub date: NaiveDate,
    pub horizon_days: u32,
    pub shard: Shard,
    /// The target days this shard has forecasts of, oldest first.
    pub days: Vec<ShardDay>,
    pub rows: u64,
    pub written: ScoresShardWritten,
    pub seconds: f64,
}

/// The sales files of the plan's target days.
fn actuals(plan: &Plan) -> Vec<ActualsVersion> {
    plan.targets
        .iter()
        .map(|&day| {
            let mut files: Vec<String> = plan
                .partitions
                .get(&day)
                .map(|f| f.iter().map(|m| m.key.clone()).collect())
                .unwrap_or_default();
            files.sort();
            ActualsVersion { day, files }
        })
        .collect()
}

/// `monitor --shard K/N`: scores the forecasts of the series of `shard`
/// and stages them with their marker (nothing a reader sees).
pub fn monitor_shard(
    config: &Config,
    lake: &Lake,
    model: &str,
    date: NaiveDate,
    shard: Shard,
) -> anyhow::Result<MonitorShardReport> {
    let started = Instant::now();
    let plan = Plan::of(config, lake, model, date)?;
    let origins = plan.read_origins(lake, Some(shard))?;
    let scored = plan.score_days(lake, &origins)?;
    let inputs = Inputs {
        predictions: origins
            .iter()
            .map(|o: &OriginForecasts| o.version.clone())
            .collect(),
        actuals: actuals(&plan),
    };
    let expected = Expected {
        model,
        date,
        horizon_days: plan.horizon,
        inputs: &inputs,
    };
    let written = progress::phase("staging the shard's scores", || {
        write_shard(lake, &expected, shard, &plan.mapping.series_keys, &scored)
    })
    .with_context(|| format!("staging the scores of shard {shard}"))?;
    Ok(MonitorShardReport {
        model: model.to_string(),
        date,
        horizon_days: plan.horizon,
        shard,
        days: written.marker.days.clone(),
        rows: written.marker.rows,
        written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `monitor --fan-in N`: the N shards of `date`, checked and combined,
/// written as the scores table's day files, reported as `monitor` reports;
/// then the commit is recorded and the day's staged shards are removed.
/// Refuses (nothing written) unless every shard is complete and current
/// (`scores_shards::read_shards`), or a fan-in of the same N and inputs
/// committed and the table still holds its files (a retried build: that
/// commit is reported).
pub fn monitor_fan_in(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    date: NaiveDate,
    n: u32,
) -> anyhow::Result<MonitorReport> {
    let started = Instant::now();
    let model = registry.model();
    let plan = Plan::of(config, lake, model, date)?;
    let mut predictions = Vec::with_capacity(plan.origin_days.len());
    for &day in &plan.origin_days {
        let read = read_predictions_manifest(lake, model, day)
            .with_context(|| format!("reading the manifest of the forecasts made on {day}"))?;
        predictions.extend(read.map(|(manifest, _)| PredictionVersion::of(&manifest)));
    }
    let inputs = Inputs {
        predictions,
        actuals: actuals(&plan),
    };
    let expected = Expected {
        model,
        date,
        horizon_days: plan.horizon,
        inputs: &inputs,
    };
    let store = lake.store();
    let record_key = format!("{}{COMMITTED_RECORD}", shards_prefix(model, date));
    // The error names the day and N itself.
    let scored = match progress::phase("reading the shards", || {
        read_shards(lake, &expected, &plan.mapping.series_keys, n)
    }) {
        Ok(scored) => scored,
        Err(refused @ ScoresShardsError::Incomplete { .. }) => {
            // A retried fan-in: this N's commit of these inputs is recorded.
            return match retried(lake, &record_key, (model, date, n), &inputs)? {
                Some(days) => {
                    let unchanged = days.iter().filter(|d| d.rows > 0).count();
                    let written = WriteCounts {
                        unchanged,
                        ..WriteCounts::default()
                    };
                    let mut done = report(config, lake, registry, &plan, (days, written), Some(n), started)?;
                    done.committed_already = true;
                    Ok(done)
                }
                None => Err(refused.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let committed = commit(config, lake, registry, &plan, &scored, Some(n), started)?;
    let record = Committed {
        n,
        inputs,
        files: table_files(lake, model, &committed.days)?,
        days: committed.days.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&record).context("encoding the fan-in's record")?;
    store
        .put(&record_key, &bytes, PutMode::Overwrite)
        .context("recording the fan-in's commit")?;
    remove(lake, model, date, None)?;
    crate::staging::expire_after_commit(store, &staging_root(model), date);
    Ok(committed)
}

/// The days a fan-in of `n` shards committed from `inputs`, when its record
/// says so and the scores table still holds the files it left: then the
/// rest of this N's shards (a deletion cut short) are removed. None when
/// the record is absent, of another N or inputs, or the table changed since
/// (a monitor rewrote or lost a day): the shards must run again.
fn retried(
    lake: &Lake,
    record_key: &str,
    (model, date, n): (&str, NaiveDate, u32),
    inputs: &Inputs,
) -> anyhow::Result<Option<Vec<DaySummary>>> {
    let recorded = match read_marker::<Committed>(lake.store(), record_key) {
        Ok(Some(c)) if c.n == n && c.inputs == *inputs => c,
        Ok(_) => return Ok(None),
        Err(problem) => {
            tracing::warn!("the fan-in's record of an earlier commit does not read back: {problem}");
            return Ok(None);
        }
    };
    if table_files(lake, model, &recorded.days)? != recorded.files {
        tracing::warn!(
            "the scores table changed since the fan-in of {date} committed (its record {}): run the shards again",
            lake.store().uri_of(record_key)
        );
        return Ok(None);
    }
    tracing::info!(
        "the {n} shards of {date} were fanned in already, from the same forecasts and actuals: nothing to write"
    );
    remove(lake, model, date, Some(n))?;
    Ok(Some(recorded.days))
}

/// The scores table's files of `days` now (key, size, version), sorted.
fn table_files(lake: &Lake, model: &str, days: &[DaySummary]) -> anyhow::Result<Vec<(String, u64, String)>> {
    let partitions = lake
        .partitions_in(&scores_root(model))
        .context("listing the scores table")?;
    let mut files: Vec<(String, u64, String)> = days
        .iter()
        .filter_map(|d| partitions.get(&d.day))
        .flatten()
        .map(|m| (m.key.clone(), m.size, m.version.clone()))
        .collect();
    files.sort();
    Ok(files)
}

/// Removes the day's staged shards, of every N or of `only` (not the
/// fan-in's record).
fn remove(lake: &Lake, model: &str, date: NaiveDate, only: Option<u32>) -> anyhow::Result<()> {
    let removed = remove_staged(lake, model, date, only).context("removing the staged shards")?;
    if !removed.is_empty() {
        tracing::info!("removed {} staged shard files", removed.len());
    }
    Ok(())
}
