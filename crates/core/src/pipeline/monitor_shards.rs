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

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::Serialize;

use super::monitor::{MonitorReport, Plan, commit};
use crate::config::Config;
use crate::lake::Lake;
use crate::predictions::read_predictions_manifest;
use crate::progress;
use crate::registry::Registry;
use crate::scores::{OriginForecasts, PredictionVersion};
use crate::scores_shards::{
    ActualsVersion, Expected, Inputs, ScoresShardWritten, ShardDay, read_shards, remove_staged, staging_root,
    write_shard,
};
use crate::shard::Shard;

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
/// then the day's staged shards are removed. Refuses (nothing written)
/// unless every shard is complete and current; see
/// `scores_shards::read_shards`.
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
    // The error names the day and N itself.
    let scored = progress::phase("reading the shards", || {
        read_shards(lake, &expected, &plan.mapping.series_keys, n)
    })?;
    let report = commit(config, lake, registry, &plan, &scored, Some(n), started)?;
    let removed = remove_staged(lake, model, date).context("removing the staged shards")?;
    tracing::info!("removed {} staged shard files", removed.len());
    crate::staging::expire_after_commit(lake.store(), &staging_root(model), date);
    Ok(report)
}
