//! `salescast backtest --from --to`: how every candidate family would have
//! forecast a past stretch of days, one day ahead and per horizon from
//! rolling origins, next to the seasonal-naive baseline. Reads the lake, writes nothing.
//!
//! Each family is fitted once on the days before `--from` (the same amount of
//! history `retrain` trains on: `window.history_days - window.holdout_days`,
//! with the same inner validation window and early stopping), then forecasts
//! every open day of `--from ..= --to`. Features of a day use actuals up to
//! the day before, as in production. A backtest over the `holdout_days`
//! ending on D scores the same rows as `retrain --date D` does.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::Serialize;

use super::check::{WindowFeatures, read_features};
use crate::config::{Config, ConfigError};
use crate::evaluate::{Metrics, metrics};
use crate::forecast::origins::{HorizonScores, Scorer};
use crate::forecast::recursive::History;
use crate::lake::Lake;
use crate::models::Family;
use crate::train::{self, Split, TrainingSet, score};
use crate::window::Window;

#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub lake: String,
    /// The first day read (training history starts here).
    pub first_day: NaiveDate,
    pub trained_through: NaiveDate,
    pub partition_files: usize,
    pub data_fingerprint: String,
    pub training_rows: usize,
    pub backtest_rows: usize,
    /// Every candidate family, in the configured order.
    pub families: Vec<FamilyResult>,
    /// The family `retrain` would pick (best on the inner validation window).
    pub picked: Family,
    pub baseline: Metrics,
    pub baseline_horizons: HorizonScores,
    /// WAPE per day of the picked family and of the baseline.
    pub days: Vec<DayResult>,
    pub seconds: BacktestTimings,
}

#[derive(Debug, Clone, Serialize)]
pub struct FamilyResult {
    pub family: Family,
    /// The boosted-trees configuration (`training.gbdt_configs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Whether `retrain` would pick this candidate.
    pub picked: bool,
    /// On the inner validation window (what picks the family).
    pub validation: Metrics,
    /// On the backtest days, one day ahead.
    pub backtest: Metrics,
    /// On the backtest days from rolling origins (each day from the one
    /// before `--from` to the one before `--to`), per horizon: what
    /// `retrain` scores on its holdout.
    pub horizons: HorizonScores,
    /// Candidate fit plus the refit on every training row.
    pub fit_seconds: f64,
}

impl FamilyResult {
    /// `gbdt (shallow)`, or the family alone.
    pub fn label(&self) -> String {
        match &self.config {
            Some(config) => format!("{} ({config})", self.family),
            None => self.family.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DayResult {
    pub day: NaiveDate,
    pub rows: usize,
    pub actual: f64,
    pub picked_wape: f64,
    pub baseline_wape: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BacktestTimings {
    pub read: f64,
    pub features: f64,
    pub train: f64,
    pub total: f64,
}

pub fn backtest(
    config: &Config,
    lake: &Lake,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<BacktestReport> {
    if from > to {
        return Err(ConfigError::Argument {
            flag: "--from".into(),
            problem: format!("{from} is after --to {to}"),
        }
        .into());
    }
    let started = Instant::now();
    let mut seconds = BacktestTimings::default();
    let window = Window::holding_out(&config.window, from, to).map_err(|e| ConfigError::Argument {
        flag: "--from".into(),
        problem: e.to_string(),
    })?;
    let first_day = window.first_day;
    let WindowFeatures {
        sales,
        features,
        fingerprint,
        read_seconds,
        feature_seconds,
        ..
    } = read_features(
        config,
        lake,
        window,
        &format!("{first_day} .. {to} for the backtest"),
    )?;
    seconds.read = read_seconds;
    seconds.features = feature_seconds;

    let phase = Instant::now();
    let split = train::split(&features, &config.data, &window).context("splitting the window")?;
    let set =
        TrainingSet::new(&features, config.train_spec(), &split).context("encoding the training rows")?;
    let candidates = set.candidates().context("fitting the candidates")?;
    let best = train::best_candidate(&candidates);
    let (picked, picked_config) = (best.score.family, best.score.config.clone());
    let target = set.target();
    let history = History::new(&features, &config.data).context("indexing the window's series")?;
    let scorer = Scorer {
        features: &features,
        history: &history,
        days: (from, to),
        rows: &split.holdout,
        target,
        horizon: config.forecast.horizon_days,
    };
    let mut families = Vec::with_capacity(candidates.len());
    let mut picked_predictions = Vec::new();
    for candidate in &candidates {
        let refit = Instant::now();
        let family = candidate.score.family;
        let artifact = set
            .fit_final(family, &candidate.tuned)
            .with_context(|| format!("fitting {family} on every training row"))?;
        let (backtest, predicted) = score(&artifact, &features, &split.holdout, target)?;
        let horizons = scorer.scores(&artifact, None)?;
        tracing::info!(%family, wape = backtest.wape, pooled_wape = horizons.pooled().wape, "backtest scored");
        let is_picked = family == picked && candidate.score.config == picked_config;
        if is_picked {
            picked_predictions = predicted;
        }
        families.push(FamilyResult {
            family,
            config: candidate.score.config.clone(),
            picked: is_picked,
            validation: candidate.score.validation.clone(),
            backtest,
            horizons,
            fit_seconds: candidate.seconds + refit.elapsed().as_secs_f64(),
        });
    }
    let baseline_model = set.baseline(&features)?;
    let (baseline, baseline_predictions) = score(&baseline_model, &features, &split.holdout, target)?;
    let baseline_horizons = scorer.scores(&baseline_model, None)?;
    seconds.train = phase.elapsed().as_secs_f64();

    let days = per_day(
        &features,
        config,
        &split,
        target,
        &picked_predictions,
        &baseline_predictions,
    )?;
    seconds.total = started.elapsed().as_secs_f64();
    Ok(BacktestReport {
        from,
        to,
        lake: lake.store().uri_of(""),
        first_day,
        trained_through: window.trained_through(),
        partition_files: sales.files.len(),
        data_fingerprint: fingerprint,
        training_rows: split.train.len(),
        backtest_rows: split.holdout.len(),
        families,
        picked,
        baseline,
        baseline_horizons,
        days,
        seconds,
    })
}

/// Groups the backtest rows by day and scores both forecasts on each day.
fn per_day(
    features: &polars::prelude::DataFrame,
    config: &Config,
    split: &Split,
    target: &[f64],
    picked: &[f64],
    baseline: &[f64],
) -> anyhow::Result<Vec<DayResult>> {
    let dates = features
        .column(&config.data.date_column)?
        .date()?
        .physical()
        .clone();
    let mut by_day: std::collections::BTreeMap<i32, Vec<usize>> = Default::default();
    for (k, &row) in split.holdout.iter().enumerate() {
        if let Some(day) = dates.get(row) {
            by_day.entry(day).or_default().push(k);
        }
    }
    by_day
        .into_iter()
        .map(|(day, ks)| {
            let actual: Vec<f64> = ks.iter().map(|&k| target[split.holdout[k]]).collect();
            let pick = |p: &[f64]| ks.iter().map(|&k| p[k]).collect::<Vec<f64>>();
            Ok(DayResult {
                day: crate::ingest::date_from_days(day)
                    .ok_or_else(|| anyhow::anyhow!("day number {day} is outside the calendar"))?,
                rows: ks.len(),
                actual: actual.iter().sum(),
                picked_wape: metrics(&actual, &pick(picked)).wape,
                baseline_wape: metrics(&actual, &pick(baseline)).wape,
            })
        })
        .collect()
}
