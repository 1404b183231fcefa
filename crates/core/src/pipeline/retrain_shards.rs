//! The shard steps of a sharded `retrain` (the fit and the fan-in are
//! `retrain_fan_in.rs`, the staging `retrain_runs.rs`):
//! - `retrain --date D --shard K/N` reads and validates the window, keeps
//!   the series of shard K, builds their features, and stages its share of
//!   what the one fit needs: the rows the fit could sample (each role's
//!   bottom `training.max_fit_rows` by row hash, and every inner validation
//!   row), the drift check's picks, the categories of its training rows;
//! - `retrain --date D --score K/N` scores the staged challenger, the
//!   champion (the one a logged decision of this fit judged, when a fan-in
//!   logged one and was stopped) and the seasonal-naive baseline on shard
//!   K's holdout (and the inner model on the inner validation window, for
//!   the intervals) and
//!   stages the forecasts by series name, day and horizon.
//!
//! Every row and forecast a shard stages is one a single-machine run uses,
//! and the fan-in pools them in the single run's order, so a sharded run
//! decides exactly what a single-machine run decides on the same data.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::check::{WindowFeatures, read_features_of, run_window};
use super::retrain::score_one_day;
use crate::config::Config;
use crate::features::FeatureLayout;
use crate::forecast::origins::{Scored, Scorer};
use crate::forecast::recursive::History;
use crate::lake::{Lake, encode_parquet};
use crate::models::{Artifact, Encoder};
use crate::progress;
use crate::registry::Registry;
use crate::retrain_runs::{self, RunFolder, StagedFile, prepare_marker, score_marker};
use crate::shard::Shard;
use crate::thin_days::ThinDays;
use crate::train::{self, fit_rows, frame_rows, seasonal_naive, target_values};
use crate::window::Window;

pub const RUN_FORMAT: u32 = 1;

/// `prepare-<k>-of-<n>.json`: one shard's window and staged rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareMarker {
    pub format: u32,
    pub model: String,
    pub data_day: NaiveDate,
    pub shard: Shard,
    /// SHA-256 of the configuration (JSON): every step of a run uses one.
    pub config_sha256: String,
    /// The window's files and tables (every shard reads them all): the same
    /// in every shard.
    pub data_fingerprint: String,
    pub partition_files: usize,
    pub thin_days: ThinDays,
    /// The shard's rows and series, and its rows in each role.
    pub rows: usize,
    pub series: usize,
    pub training_rows: usize,
    pub inner_train_rows: usize,
    pub inner_valid_rows: usize,
    pub holdout_rows: usize,
    /// The sorted distinct values of each category column on its training rows.
    pub vocabularies: BTreeMap<String, Vec<String>>,
    /// The rows the fit may sample, and the drift check's picks (features).
    pub fit_rows: StagedFile,
    pub drift_rows: StagedFile,
    pub salescast: String,
}

/// One staged forecast: the series (an index into the shard's names), the
/// target day (days since 1970-01-01), the horizon, forecast and actual.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub series: u32,
    pub day: i32,
    pub horizon: u32,
    pub forecast: f64,
    pub actual: f64,
}

/// One holdout row's one-day-ahead predictions, with its key values (the
/// fan-in orders them as the single run's frame: by day, then keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutRow {
    pub day: i32,
    pub keys: Vec<String>,
    pub series: u32,
    pub actual: f64,
    pub challenger: f64,
    pub champion: Option<f64>,
}

/// What a scoring shard stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardScores {
    /// The shard's series names (keys joined with "/"), by index.
    pub names: Vec<String>,
    pub challenger: Vec<Forecast>,
    pub champion: Option<Vec<Forecast>>,
    pub baseline: Vec<Forecast>,
    /// The inner model on the inner validation window (none on a warm day).
    pub inner: Option<Vec<Forecast>>,
    pub holdout: Vec<HoldoutRow>,
}

/// `score-<k>-of-<n>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreMarker {
    pub format: u32,
    pub model: String,
    pub data_day: NaiveDate,
    pub shard: Shard,
    /// The SHA-256 of the fit marker it scored the challenger of.
    pub fit: String,
    pub challenger: String,
    /// The champion it scored (none without one).
    pub champion: Option<String>,
    pub file: StagedFile,
    pub salescast: String,
}

/// What a shard step reports.
#[derive(Debug, Clone, Serialize)]
pub struct ShardStepReport {
    pub model: String,
    pub data_day: NaiveDate,
    pub step: &'static str,
    pub shard: Shard,
    pub rows: usize,
    pub series: usize,
    /// The marker written, and the files it names.
    pub marker: String,
    pub files: Vec<StagedFile>,
    pub seconds: f64,
}

pub(super) fn config_sha256(config: &Config) -> anyhow::Result<String> {
    Ok(crate::digest::sha256_hex(&serde_json::to_vec(config)?))
}

fn read_shard(config: &Config, lake: &Lake, day: NaiveDate, shard: Shard) -> anyhow::Result<WindowFeatures> {
    let window = run_window(config, day)?;
    progress::phase("reading the window and building the shard's features", || {
        read_features_of(
            config,
            lake,
            window,
            &format!("the training window ending {day}"),
            Some(shard),
        )
    })
}

/// `retrain --date D --shard K/N`: stages shard K's share of the fit.
pub fn prepare_shard(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    day: NaiveDate,
    shard: Shard,
) -> anyhow::Result<ShardStepReport> {
    let started = Instant::now();
    let WindowFeatures {
        window,
        sales,
        features,
        fingerprint,
        ..
    } = read_shard(config, lake, day, shard)?;
    let mapping = &config.data;
    let split = train::split_rows(&features, mapping, &window).context("splitting the window")?;
    let hashes = crate::sampling::row_hashes(&features, mapping, config.training.seed)?;
    let mut rows: Vec<usize> = fit_rows(&split.inner_train, &hashes, &config.training)
        .into_iter()
        .chain(split.inner_valid.iter().copied())
        .chain(fit_rows(&split.train, &hashes, &config.training))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let layout = FeatureLayout::new(mapping, &config.features);
    let categories = features.select(layout.categorical.iter().map(String::as_str))?;
    let encoder = Encoder::fit(&frame_rows(&categories, &split.train)?, &layout)?;
    let drift_rows = crate::drift::picked_rows(&features, mapping, &window)?;
    let folder = RunFolder::new(registry, day);
    let stem = prepare_marker(shard.k, shard.n);
    let stage = |what: &str, rows: &[usize]| -> anyhow::Result<StagedFile> {
        let mut frame = frame_rows(&features, rows)?;
        let bytes = encode_parquet(&mut frame)?;
        Ok(folder.stage(&format!("{stem}-{what}"), "parquet", &bytes)?)
    };
    let fit_file = stage("fit", &rows).context("staging the shard's fit rows")?;
    let drift_file = stage("drift", &drift_rows).context("staging the shard's drift rows")?;
    let series = History::new(&features, mapping)?.series();
    let marker = PrepareMarker {
        format: RUN_FORMAT,
        model: registry.model().to_string(),
        data_day: day,
        shard,
        config_sha256: config_sha256(config)?,
        data_fingerprint: fingerprint,
        partition_files: sales.files.len(),
        thin_days: sales.thin_days.clone(),
        rows: features.height(),
        series,
        training_rows: split.train.len(),
        inner_train_rows: split.inner_train.len(),
        inner_valid_rows: split.inner_valid.len(),
        holdout_rows: split.holdout.len(),
        vocabularies: encoder.vocabularies,
        fit_rows: fit_file.clone(),
        drift_rows: drift_file.clone(),
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::registry::pause::at(crate::registry::pause::Step::RunStaged)?;
    folder
        .put_marker(&stem, &marker)
        .context("writing the shard's marker")?;
    Ok(ShardStepReport {
        model: registry.model().to_string(),
        data_day: day,
        step: "prepare",
        shard,
        rows: features.height(),
        series,
        marker: format!("{}{stem}.json", folder.prefix()),
        files: vec![fit_file, drift_file],
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn forecasts(scored: &[Scored], history: &History) -> Vec<Forecast> {
    scored
        .iter()
        .map(|s| {
            let (series, day) = history.of_row(s.row);
            Forecast {
                series,
                day,
                horizon: s.horizon,
                forecast: s.forecast,
                actual: s.actual,
            }
        })
        .collect()
}

/// `retrain --date D --score K/N`: scores the fit's challenger, the
/// champion and the baseline on shard K's series and stages the forecasts.
pub fn score_shard(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    day: NaiveDate,
    shard: Shard,
) -> anyhow::Result<ShardStepReport> {
    let started = Instant::now();
    let folder = RunFolder::new(registry, day);
    let fit = super::retrain_fit::read_fit(&folder, shard.n, "score")?;
    let logged = super::retrain_fit::logged_decision(&folder, registry, shard.n, &fit.sha256, "score")?;
    let stem = prepare_marker(shard.k, shard.n);
    let prepared = fit.marker.prepare.get(shard.k as usize);
    match folder.marker::<PrepareMarker>(&stem)? {
        Ok((_, sha)) if Some(&sha) == prepared => {}
        Ok(_) => {
            return Err(folder
                .refuse(
                    "score",
                    vec![format!(
                        "{stem} changed after the fit (the shard was prepared again): run the fit again"
                    )],
                )
                .into());
        }
        Err(problem) => return Err(folder.refuse("score", vec![problem]).into()),
    }
    let WindowFeatures {
        window,
        sales,
        attributes,
        features,
        fingerprint,
        ..
    } = read_shard(config, lake, day, shard)?;
    if fingerprint != fit.marker.data_fingerprint {
        return Err(folder
            .refuse(
                "score",
                vec![format!(
                    "the window's files or tables changed since the shards were prepared (fingerprint {} then, {} now): \
                     run the run again from its shards",
                    crate::digest::short(&fit.marker.data_fingerprint),
                    crate::digest::short(&fingerprint)
                )],
            )
            .into());
    }
    let mapping = &config.data;
    let split = train::split_rows(&features, mapping, &window).context("splitting the window")?;
    let history = History::new(&features, mapping)?;
    let target = target_values(&features, mapping)?;
    let horizon = config.forecast.horizon_days;
    let holdout = Scorer {
        features: &features,
        history: &history,
        days: (window.holdout_first_day, window.last_day),
        rows: &split.holdout,
        target: &target,
        horizon,
    };
    let challenger = &fit.challenger;
    let scored = |artifact: &Artifact, scorer: &Scorer| -> anyhow::Result<Vec<Forecast>> {
        Ok(forecasts(&scorer.scored(artifact)?, &history))
    };
    let challenger_raw = progress::phase("scoring the challenger", || holdout.scored(challenger))?;
    let (_, challenger_pred) = score_one_day(
        challenger,
        config,
        (&features, &split.holdout, &target),
        &challenger_raw,
    )?;
    let challenger_scored = forecasts(&challenger_raw, &history);
    drop(challenger_raw);
    let baseline = seasonal_naive(
        config.train_spec(),
        &challenger.encoder,
        &features,
        &split.holdout,
    )?;
    let baseline_scored = scored(&baseline, &holdout)?;
    let inner_scored = match &fit.inner {
        Some(inner) => {
            let last_inner_day = window
                .holdout_first_day
                .pred_opt()
                .unwrap_or(window.holdout_first_day);
            let scorer = Scorer {
                days: (window.inner_first_day, last_inner_day),
                rows: &split.inner_valid,
                ..holdout
            };
            Some(progress::phase("scoring the inner model", || {
                scored(inner, &scorer)
            })?)
        }
        None => None,
    };
    // The champion to score: the current one, or, when a fan-in of this fit
    // logged its decision and was stopped before marking the run decided,
    // the one that decision judged (what the retried fan-in reports).
    let judged = match logged {
        Some(logged) => logged.what.champion_before,
        None => (registry
            .peek_state()
            .context("reading the champion pointer")?
            .champion)
            .map(|c| c.version),
    };
    let champion = match &judged {
        Some(version) => {
            let scored = progress::phase("scoring the champion", || {
                score_champion(
                    (lake, registry),
                    version,
                    config,
                    (&window, shard),
                    &sales.frame,
                    &attributes,
                    &holdout,
                    &split,
                )
            })?;
            Some((version.clone(), scored))
        }
        None => None,
    };
    let keys: Vec<_> = mapping
        .series_keys
        .iter()
        .map(|k| Ok(features.column(k)?.str()?.clone()))
        .collect::<anyhow::Result<_>>()?;
    let holdout_rows = split
        .holdout
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let (series, day) = history.of_row(row);
            HoldoutRow {
                day,
                keys: keys
                    .iter()
                    .map(|k| k.get(row).unwrap_or_default().to_string())
                    .collect(),
                series,
                actual: target[row],
                challenger: challenger_pred[i],
                champion: champion.as_ref().map(|(_, c)| c.1[i]),
            }
        })
        .collect();
    let scores = ShardScores {
        names: (0..history.series() as u32)
            .map(|s| history.name(s).to_string())
            .collect(),
        challenger: challenger_scored,
        champion: champion.as_ref().map(|(_, c)| c.0.clone()),
        baseline: baseline_scored,
        inner: inner_scored,
        holdout: holdout_rows,
    };
    let stem = score_marker(shard.k, shard.n);
    let file = folder
        .stage(&stem, "bin", &retrain_runs::encode(&scores))
        .context("staging the shard's scores")?;
    let marker = ScoreMarker {
        format: RUN_FORMAT,
        model: registry.model().to_string(),
        data_day: day,
        shard,
        fit: fit.sha256.clone(),
        challenger: fit.marker.challenger.sha256.clone(),
        champion: champion.map(|(v, _)| v),
        file: file.clone(),
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::registry::pause::at(crate::registry::pause::Step::RunStaged)?;
    folder
        .put_marker(&stem, &marker)
        .context("writing the shard's marker")?;
    Ok(ShardStepReport {
        model: registry.model().to_string(),
        data_day: day,
        step: "score",
        shard,
        rows: features.height(),
        series: history.series(),
        marker: format!("{}{stem}.json", folder.prefix()),
        files: vec![file],
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The champion's rolling-origin forecasts on the shard's holdout and its
/// one-day predictions of the holdout rows, built with its own feature
/// settings when they differ (as the single run's `score_champion`).
#[allow(clippy::too_many_arguments)]
fn score_champion(
    (lake, registry): (&Lake, &Registry),
    version: &str,
    config: &Config,
    (window, shard): (&Window, Shard),
    sales: &polars::prelude::DataFrame,
    attributes: &crate::tables::Tables,
    holdout: &Scorer,
    split: &train::Split,
) -> anyhow::Result<(Vec<Forecast>, Vec<f64>)> {
    let artifact = registry
        .load_model(version)
        .with_context(|| format!("loading the champion {version}"))?
        .artifact;
    super::retrain::check_same_rows(&artifact, config, version)?;
    let own_features;
    let own_history;
    let mut scorer = *holdout;
    if !super::retrain::built_for(&artifact, config) {
        own_features = super::check::champion_features(
            (version, &artifact),
            config,
            lake,
            (window, Some(shard)),
            (sales, attributes),
        )?;
        own_history = History::new(&own_features, &artifact.mapping)?;
        scorer.features = &own_features;
        scorer.history = &own_history;
    }
    let raw = scorer.scored(&artifact)?;
    let (_, predicted) = score_one_day(
        &artifact,
        config,
        (scorer.features, &split.holdout, holdout.target),
        &raw,
    )?;
    let mut scored = forecasts(&raw, scorer.history);
    drop(raw);
    if !std::ptr::eq(scorer.history, holdout.history) {
        // Its own frame numbers the same series in the same order; by name all the same.
        for f in &mut scored {
            let name = scorer.history.name(f.series);
            f.series = holdout.history.id(name).with_context(|| {
                format!("the champion forecast a series the window does not have: {name}")
            })?;
        }
    }
    Ok((scored, predicted))
}
