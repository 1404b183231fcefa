//! Sharded `predict`: `predict --date D --shard K/N` forecasts only the
//! series of shard K (see `shard.rs`) into the day's staging folder, and
//! `predict --date D --fan-in N` checks that all N shards are there,
//! complete and from the champion, then commits the day's partition.
//!
//! The committed partition is the one an unsharded `predict` of the same
//! day and champion writes, byte for byte: the fan-in sorts the shards'
//! rows by series and target date and writes them through
//! `predictions::write_predictions`, so the part file, its name and the
//! manifest are the same (and a partition already committed either way is
//! left unchanged). Staging and the checks: `predictions_shards.rs`.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::Serialize;

use super::forecaster::{Forecaster, Forecasts};
use super::predict::{PredictReport, champion, load, preview};
use crate::config::Config;
use crate::lake::Lake;
use crate::predictions::write_predictions;
use crate::predictions_shards::{
    Expected, ShardWritten, read_shards, remove_stale, staging_root, write_shard,
};
use crate::progress;
use crate::registry::Registry;
use crate::shard::Shard;

#[derive(Debug, Clone, Serialize)]
pub struct ShardReport {
    pub model: String,
    pub version: String,
    pub data_day: NaiveDate,
    pub horizon_days: u32,
    pub shard: Shard,
    /// The active series of this shard, and their forecast rows.
    pub series: usize,
    pub rows: usize,
    pub unplanned_rows: usize,
    pub written: ShardWritten,
    pub seconds: f64,
}

/// `predict --shard K/N`: forecasts the active series of `shard` with the
/// champion and stages them with their marker (nothing a reader sees).
pub fn predict_shard(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    data_day: NaiveDate,
    shard: Shard,
) -> anyhow::Result<ShardReport> {
    let started = Instant::now();
    let version = champion(registry)?;
    let model = load(registry, &version)?;
    let forecaster = progress::phase("loading the window and plans", || {
        Forecaster::load_shard(config, lake, model, &version, data_day, Some(shard))
    })?;
    let Forecasts {
        mut frame,
        series,
        unplanned_rows,
    } = progress::phase("forecasting", || forecaster.forecast(None, None))?;
    if unplanned_rows > 0 {
        tracing::warn!(
            "shard {shard}: no plan for {unplanned_rows} of {} forecast rows: used the covariates of the same \
             weekday in the newest week up to {data_day}; those rows are marked planned = false",
            frame.height()
        );
    }
    let horizon = config.forecast.horizon_days;
    let written = progress::phase("staging the shard's predictions", || {
        write_shard(
            lake,
            registry.model(),
            &version,
            data_day,
            horizon,
            config.forecast.interval,
            shard,
            &mut frame,
        )
    })
    .with_context(|| format!("staging the predictions of shard {shard}"))?;
    Ok(ShardReport {
        model: registry.model().to_string(),
        version,
        data_day,
        horizon_days: horizon,
        shard,
        series,
        rows: frame.height(),
        unplanned_rows,
        written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `predict --fan-in N`: the N shards of the champion, checked and
/// combined, committed as the day's partition. Refuses (nothing written)
/// unless every shard is complete; see `predictions_shards::read_shards`.
pub fn fan_in(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    data_day: NaiveDate,
    n: u32,
) -> anyhow::Result<PredictReport> {
    let started = Instant::now();
    let version = champion(registry)?;
    let horizon = config.forecast.horizon_days;
    let expected = Expected {
        model: registry.model(),
        model_sha256: &version,
        data_day,
        horizon_days: horizon,
        interval: config.forecast.interval,
    };
    // The error names the day and N itself.
    let (markers, mut frame) = progress::phase("reading the shards", || read_shards(lake, &expected, n))?;
    let series = markers.iter().map(|m| m.series as usize).sum();
    let planned_rows = frame.column("planned")?.bool()?.sum().unwrap_or(0) as usize;
    let has_bounds = frame.column("lower")?.null_count() < frame.height();
    let preview = preview(&frame)?;
    let written = progress::phase("writing predictions", || {
        write_predictions(
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
    let stale = remove_stale(lake, registry.model(), data_day, &version)
        .context("removing the staged shards of other champions")?;
    if !stale.is_empty() {
        tracing::info!("removed {} staged shard files of other champions", stale.len());
    }
    crate::staging::expire_after_commit(lake.store(), &staging_root(registry.model()), data_day);
    Ok(PredictReport {
        model: registry.model().to_string(),
        version,
        fan_in: Some(n),
        data_day,
        horizon_days: horizon,
        interval: has_bounds.then_some(config.forecast.interval),
        series,
        rows: frame.height(),
        planned_rows,
        unplanned_rows: frame.height() - planned_rows,
        written,
        preview,
        seconds: started.elapsed().as_secs_f64(),
    })
}
