//! `salescast monitor [--date D]`: live accuracy. Scores the stored forecasts
//! of the target days D-H+1 .. D (H = `forecast.horizon_days`) whose sales
//! partitions exist (D's must) against those actuals into the scores table
//! (`scores.rs`; a rerun with the same inputs writes nothing, so the days
//! before D cost only reads and are filled in when a run was missed or
//! late), then reports live WAPE, bias and interval coverage per bucket of
//! horizons over the last 7 and 28 days (`live.rs`) beside the champion's
//! holdout figures. The daily job runs it after ingest, before retrain,
//! whose report then carries the same live section. Sharded over
//! machines (`--shard K/N`, `--fan-in N`): `monitor_shards.rs`, which plans,
//! scores and commits through the functions here.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::digest::short;
use crate::evaluate::{Metrics, metrics};
use crate::forecast::origins::HorizonScores;
use crate::lake::{Lake, WriteCounts};
use crate::live::{HoldoutFigures, LiveSummary, live_summary};
use crate::mapping::DataMapping;
use crate::predictions::list_prediction_days;
use crate::progress::{self, Phase};
use crate::registry::Registry;
use crate::scores::{Actuals, DayScores, OriginForecasts, score_day, write_scores};
use crate::shard::Shard;
use crate::storage::ObjectMeta;

#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    pub model: String,
    pub date: NaiveDate,
    pub horizon_days: u32,
    /// `monitor --fan-in N`: the N shards combined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fan_in: Option<u32>,
    /// A retried fan-in: an earlier fan-in of the same N and inputs wrote
    /// these days (its record, `monitor_shards`); nothing was written now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub committed_already: bool,
    /// Each target day scored by this run (those with forecasts), oldest first.
    pub days: Vec<DaySummary>,
    /// Day files of the scores table written, left unchanged, replaced.
    pub written: WriteCounts,
    /// None when the scores table has no rows in the last 28 days.
    pub live: Option<LiveSummary>,
    /// The champion's holdout figures (none without a champion).
    pub holdout: Option<HoldoutFigures>,
    pub seconds: f64,
}

/// One target day's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaySummary {
    pub day: NaiveDate,
    pub origins: Vec<NaiveDate>,
    pub rows: usize,
    pub open_rows: usize,
    /// Forecasts of the day for a series without a sales row that day.
    pub without_actual: usize,
    /// Over the day's open rows, every horizon pooled.
    pub metrics: Metrics,
}

impl DaySummary {
    fn of(scores: &DayScores) -> Self {
        let open: Vec<_> = scores.rows.iter().filter(|r| r.open).collect();
        let actual: Vec<f64> = open.iter().map(|r| r.actual).collect();
        let forecast: Vec<f64> = open.iter().map(|r| r.forecast).collect();
        Self {
            day: scores.day,
            origins: scores.origins.clone(),
            rows: scores.rows.len(),
            open_rows: open.len(),
            without_actual: scores.without_actual,
            metrics: metrics(&actual, &forecast),
        }
    }
}

pub fn monitor(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    date: NaiveDate,
) -> anyhow::Result<MonitorReport> {
    let started = Instant::now();
    let plan = Plan::of(config, lake, registry.model(), date)?;
    let origins = plan.read_origins(lake, None)?;
    let scored = plan.score_days(lake, &origins)?;
    commit(config, lake, registry, &plan, &scored, None, started)
}

fn back(day: NaiveDate, days: u32) -> NaiveDate {
    day.checked_sub_days(Days::new(u64::from(days))).unwrap_or(day)
}

/// What a monitor run of a day scores: the target days (oldest first) of
/// the H days up to it that have a sales partition, and the days of the
/// committed forecasts that may target them. A sharded run plans the same.
pub(crate) struct Plan<'a> {
    pub mapping: &'a DataMapping,
    pub model: &'a str,
    pub date: NaiveDate,
    pub horizon: u32,
    pub partitions: BTreeMap<NaiveDate, Vec<ObjectMeta>>,
    pub targets: Vec<NaiveDate>,
    pub origin_days: Vec<NaiveDate>,
}

impl<'a> Plan<'a> {
    pub(crate) fn of(
        config: &'a Config,
        lake: &Lake,
        model: &'a str,
        date: NaiveDate,
    ) -> anyhow::Result<Self> {
        let horizon = config.forecast.horizon_days;
        let partitions = lake.partitions().context("listing the sales partitions")?;
        lake.require_day(
            &partitions,
            date,
            "the day whose actuals the stored forecasts are scored against",
        )?;
        let targets: Vec<NaiveDate> = (0..horizon)
            .rev()
            .map(|k| back(date, k))
            .filter(|d| partitions.contains_key(d))
            .collect();
        let first_origin = back(targets.first().copied().unwrap_or(date), horizon);
        let origin_days = list_prediction_days(lake, model)?
            .into_iter()
            .filter(|d| (first_origin..date).contains(d))
            .collect();
        Ok(Self {
            mapping: &config.data,
            model,
            date,
            horizon,
            partitions,
            targets,
            origin_days,
        })
    }

    /// The committed forecasts of the origin days; with `shard`, of its
    /// series only.
    pub(crate) fn read_origins(
        &self,
        lake: &Lake,
        shard: Option<Shard>,
    ) -> anyhow::Result<Vec<OriginForecasts>> {
        let mut origins = Vec::with_capacity(self.origin_days.len());
        let reading = Phase::start("reading stored forecasts", Some(self.origin_days.len() as u64));
        for &day in &self.origin_days {
            let read = OriginForecasts::read(lake, self.model, day, &self.mapping.series_keys)
                .with_context(|| format!("reading the forecasts made on {day}"))?;
            if let Some(mut read) = read {
                if let Some(shard) = shard {
                    read.retain(|row| shard.holds(&row.keys));
                }
                origins.push(read);
            }
            reading.advance(1, &day.to_string());
        }
        reading.finish();
        Ok(origins)
    }

    /// Each target day that `origins` forecast, scored against its actuals.
    pub(crate) fn score_days(
        &self,
        lake: &Lake,
        origins: &[OriginForecasts],
    ) -> anyhow::Result<Vec<DayScores>> {
        let horizon = self.horizon;
        let mut scored = Vec::new();
        let scoring = Phase::start("scoring days", Some(self.targets.len() as u64));
        for &day in &self.targets {
            scoring.advance(1, &day.to_string());
            // The forecasts made at origins day-H .. day-1.
            let made: Vec<&OriginForecasts> = origins
                .iter()
                .filter(|o| (back(day, horizon)..day).contains(&o.origin))
                .collect();
            if made.iter().all(|o| o.of_day(day).is_empty()) {
                continue;
            }
            let sales = lake
                .read_day(self.mapping, &self.partitions, day)
                .with_context(|| format!("reading the actuals of {day}"))?
                .ok_or_else(|| anyhow::anyhow!("the sales partition of {day} disappeared while scoring"))?;
            let actuals = Actuals::from_sales(&sales, self.mapping, day)
                .with_context(|| format!("reading the actuals of {day}"))?;
            scored.push(score_day(&actuals, &made));
        }
        scoring.finish();
        Ok(scored)
    }
}

/// Writes the scored days into the scores table (one writer for sharded
/// and unsharded runs) and reports them beside the live figures.
pub(crate) fn commit(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    plan: &Plan,
    scored: &[DayScores],
    fan_in: Option<u32>,
    started: Instant,
) -> anyhow::Result<MonitorReport> {
    let (model, keys) = (plan.model, &plan.mapping.series_keys);
    let written = progress::phase("writing scores", || write_scores(lake, model, keys, scored))
        .context("writing the scores")?;
    let days = scored.iter().map(DaySummary::of).collect();
    report(config, lake, registry, plan, (days, written), fan_in, started)
}

/// The report of a monitor that scored `days` and wrote `written`: with the
/// live accuracy the scores table now gives and the champion's holdout.
pub(crate) fn report(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    plan: &Plan,
    (days, written): (Vec<DaySummary>, WriteCounts),
    fan_in: Option<u32>,
    started: Instant,
) -> anyhow::Result<MonitorReport> {
    let (model, keys) = (plan.model, &plan.mapping.series_keys);
    let live = live_summary(lake, model, keys, config.forecast.horizon_days, plan.date)
        .context("reading the scores")?;
    let holdout = champion_holdout(registry)?;
    Ok(MonitorReport {
        model: model.to_string(),
        date: plan.date,
        horizon_days: plan.horizon,
        fan_in,
        committed_already: false,
        days,
        written,
        live,
        holdout,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The part of a stored run report that holds the challenger's holdout per bucket.
#[derive(Deserialize)]
struct ReportView {
    challenger: ChallengerView,
}

#[derive(Deserialize)]
struct ChallengerView {
    version: String,
    horizons: HorizonScores,
}

/// The champion's holdout metrics from its manifest, per bucket from the
/// report of the run that stored it when that report still describes it.
pub(crate) fn champion_holdout(registry: &Registry) -> anyhow::Result<Option<HoldoutFigures>> {
    let state = registry
        .peek_state()
        .context("reading the champion pointer and the decision log")?;
    let Some(champion) = state.champion else {
        return Ok(None);
    };
    let manifest = registry
        .manifest(&champion.version)
        .with_context(|| format!("reading the manifest of the champion {}", champion.version))?;
    let horizons = match registry.report::<ReportView>(manifest.lineage.window_last_day) {
        Ok(Some(view)) if view.challenger.version == champion.version => Some(view.challenger.horizons),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(
                "the run report of {} does not give the champion's holdout per horizon: {e}",
                manifest.lineage.window_last_day
            );
            None
        }
    };
    Ok(Some(HoldoutFigures {
        label: format!("champion `{}`", short(&champion.version)),
        pooled: manifest.holdout_metrics,
        horizons,
    }))
}
