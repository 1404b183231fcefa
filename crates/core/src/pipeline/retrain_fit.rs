//! The one fit of a sharded `retrain`: `retrain --date D --fit N` checks
//! that the N shards are prepared from the same window and configuration
//! (`retrain_shards.rs`), stacks their rows in the single run's frame order
//! (date, then series keys), learns the categories of every shard's
//! training rows, measures drift on the stacked picks, plans the search,
//! fits the challenger (and the inner model) once on the seeded sample a
//! single run draws, and stages them for the scoring shards and the fan-in
//! (`retrain_fan_in.rs`).

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, SortMultipleOptions};
use serde::{Deserialize, Serialize};

use super::check::run_window;
use super::retrain_commit::live_accuracy;
use super::retrain_shards::{PrepareMarker, RUN_FORMAT, config_sha256};
use super::search;
use crate::config::Config;
use crate::drift::DriftReport;
use crate::evaluate::Metrics;
use crate::features::FeatureLayout;
use crate::forecast::intervals::Calibration;
use crate::lake::{Lake, decode_parquet};
use crate::models::{Artifact, Encoder};
use crate::progress;
use crate::registry::{Decision, Registry};
use crate::retrain_runs::{
    DECIDING_MARKER, DecidingMarker, FIT_MARKER, RunFolder, StagedFile, prepare_marker,
};
use crate::train::{self, CandidateScore, Recipe, SearchRecord, TrainingSet};

/// `fit.json`: the one fit of a sharded run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitMarker {
    pub format: u32,
    pub model: String,
    pub data_day: NaiveDate,
    pub n: u32,
    /// The SHA-256 of each shard's prepare marker it stacked, by shard.
    pub prepare: Vec<String>,
    pub config_sha256: String,
    pub data_fingerprint: String,
    pub challenger: StagedFile,
    pub inner: Option<StagedFile>,
    pub candidates: Vec<CandidateScore>,
    pub gbdt_config: Option<String>,
    pub validation: Metrics,
    pub recipe: Recipe,
    pub search: SearchRecord,
    pub drift: DriftReport,
    /// A warm day's intervals (the champion's, carried on).
    pub warm_calibration: Option<Calibration>,
    /// The sums of the shards' rows in each role, and the window's figures.
    pub rows: usize,
    pub training_rows: usize,
    pub holdout_rows: usize,
    pub partition_files: usize,
    pub thin_days: crate::thin_days::ThinDays,
    pub seconds_drift: f64,
    pub seconds_train: f64,
    pub salescast: String,
}

/// The decision a fan-in of this fit logged before it was stopped (killed
/// between its commit and its `decided` marker), when the log holds it: a
/// decision after the `deciding` marker's sequence, for this day, of this
/// fit's challenger, judged against the champion the marker names. The fit
/// marker's SHA-256 tells this fit from a later run of the same day (whose
/// fit marker records its own timings, so hashes differently even when its
/// challenger is the same bytes). An unreadable marker is refused for
/// `step`: the decision it would find might be in the log.
///
/// Not covered: two fan-ins of one fit running at once, both before either
/// commits; both log (a second "kept" on a kept champion).
pub(super) fn logged_decision(
    folder: &RunFolder,
    registry: &Registry,
    n: u32,
    fit: &str,
    step: &'static str,
) -> anyhow::Result<Option<Decision>> {
    let deciding = match folder.marker::<DecidingMarker>(DECIDING_MARKER)? {
        Ok((deciding, _)) => deciding,
        Err(problem) if problem == crate::retrain_runs::missing(DECIDING_MARKER) => return Ok(None),
        Err(problem) => {
            let way_out = format!(
                "{problem}: a fan-in of this run may have logged its decision. If `salescast models history` holds \
                 a decision of {} for this run's challenger, the run is decided: do not run it again; if not, \
                 delete {} and run the fan-in again",
                folder.data_day,
                folder.marker_uri(DECIDING_MARKER)
            );
            return Err(folder.refuse(step, vec![way_out]).into());
        }
    };
    if deciding.n != n || deciding.fit != fit {
        return Ok(None);
    }
    let last = registry.last_sequence().context("reading the decision log")?;
    for sequence in deciding.after_sequence + 1..=last {
        let decision = registry
            .decision(sequence)
            .with_context(|| format!("reading decision #{sequence} of the log"))?;
        if decision.what.run_date == Some(folder.data_day)
            && decision.what.challenger.as_deref() == Some(deciding.challenger.as_str())
            && decision.what.champion_before == deciding.champion
        {
            return Ok(Some(decision));
        }
    }
    Ok(None)
}

/// The fit marker, its SHA-256 and its models, read and checked.
pub(super) struct Fit {
    pub marker: FitMarker,
    pub sha256: String,
    pub challenger: Artifact,
    pub inner: Option<Artifact>,
}

/// Reads the fit of `n` shards for `step`, refusing a missing or damaged one.
pub(super) fn read_fit(folder: &RunFolder, n: u32, step: &'static str) -> anyhow::Result<Fit> {
    let (marker, sha256) = match folder.marker::<FitMarker>(FIT_MARKER)? {
        Ok(found) => found,
        Err(problem) => {
            return Err(folder
                .refuse(step, vec![format!("{problem} (run the fit first)")])
                .into());
        }
    };
    if marker.n != n {
        return Err(folder
            .refuse(
                step,
                vec![format!("the fit stacked {} shards, not {n}", marker.n)],
            )
            .into());
    }
    let load = |file: &StagedFile| -> anyhow::Result<Artifact> {
        let bytes = folder.read(file)?.map_err(|p| folder.refuse(step, vec![p]))?;
        Artifact::from_bytes(&bytes).with_context(|| format!("reading the staged model {}", file.key))
    };
    Ok(Fit {
        challenger: load(&marker.challenger)?,
        inner: marker.inner.as_ref().map(load).transpose()?,
        marker,
        sha256,
    })
}

/// What the fit reports.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub model: String,
    pub data_day: NaiveDate,
    pub n: u32,
    pub challenger: String,
    pub family: crate::models::Family,
    pub rounds: Option<usize>,
    pub search: SearchRecord,
    /// The stacked rows the fit sampled from, and the rows it fitted on.
    pub stacked_rows: usize,
    pub fit_rows: usize,
    pub drift_alerts: Vec<String>,
    pub marker: String,
    pub seconds: f64,
}

/// The N prepare markers and their SHA-256, checked to be one run's.
fn read_prepared(
    folder: &RunFolder,
    n: u32,
    config: &Config,
) -> anyhow::Result<Vec<(PrepareMarker, String)>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for k in 0..n {
        match folder.marker::<PrepareMarker>(&prepare_marker(k, n))? {
            Ok(m) => found.push(m),
            Err(problem) => problems.push(format!("shard {k}/{n}: {problem}")),
        }
    }
    let config_sha = config_sha256(config)?;
    if let Some((first, _)) = found.first() {
        for (m, _) in &found {
            if m.config_sha256 != config_sha {
                problems.push(format!(
                    "shard {} was prepared with another configuration",
                    m.shard
                ));
            }
            if m.data_fingerprint != first.data_fingerprint {
                problems.push(format!(
                    "shard {} read other files than shard {} (the window changed between them): prepare every shard again",
                    m.shard, first.shard
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(folder.refuse("fit", problems).into())
    }
}

/// Sorts stacked shard rows in the single run's frame order (date, then keys).
fn sort_like_single_run(stacked: DataFrame, config: &Config) -> anyhow::Result<DataFrame> {
    let mut order = vec![config.data.date_column.clone()];
    order.extend(config.data.series_keys.iter().cloned());
    Ok(stacked.sort(order, SortMultipleOptions::default())?)
}

/// `retrain --date D --fit N`.
pub fn fit_shards(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    day: NaiveDate,
    n: u32,
    full_search: bool,
) -> anyhow::Result<FitReport> {
    let started = Instant::now();
    let folder = RunFolder::new(registry, day);
    let prepared = read_prepared(&folder, n, config)?;
    let window = run_window(config, day)?;
    let sum = |f: fn(&PrepareMarker) -> usize| prepared.iter().map(|(m, _)| f(m)).sum::<usize>();
    train::check_roles(
        &window,
        [
            sum(|m| m.holdout_rows),
            sum(|m| m.inner_train_rows),
            sum(|m| m.inner_valid_rows),
        ],
    )?;
    // One shard's frame at a time, keeping after each only the rows a fit
    // (or the drift check) of the rows so far would use: the bottom-k of a
    // union is the bottom-k of the parts' bottom-k, so the stacked rows stay
    // near `training.max_fit_rows` whatever N, and end as the single run's.
    let read = |pick: fn(&PrepareMarker) -> &StagedFile,
                keep: &dyn Fn(&DataFrame) -> anyhow::Result<Vec<usize>>|
     -> anyhow::Result<DataFrame> {
        let mut stacked: Option<DataFrame> = None;
        for (m, _) in &prepared {
            let bytes = folder.read(pick(m))?.map_err(|p| folder.refuse("fit", vec![p]))?;
            let frame = decode_parquet(bytes)?;
            let both = match stacked.take() {
                Some(mut so_far) => {
                    so_far.vstack_mut(&frame)?;
                    so_far
                }
                None => frame,
            };
            let rows = keep(&both)?;
            stacked = Some(if rows.len() == both.height() {
                both
            } else {
                train::frame_rows(&both, &rows)?
            });
        }
        sort_like_single_run(stacked.context("no shard frames")?, config)
    };
    let fit_keep = |frame: &DataFrame| -> anyhow::Result<Vec<usize>> {
        let split = train::split_rows(frame, &config.data, &window)?;
        let hashes = crate::sampling::row_hashes(frame, &config.data, config.training.seed)?;
        let mut rows: Vec<usize> = train::fit_rows(&split.inner_train, &hashes, &config.training)
            .into_iter()
            .chain(split.inner_valid.iter().copied())
            .chain(train::fit_rows(&split.train, &hashes, &config.training))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        Ok(rows)
    };
    let drift_keep = |frame: &DataFrame| -> anyhow::Result<Vec<usize>> {
        Ok(crate::drift::picked_rows(frame, &config.data, &window)?)
    };
    let fit_frame = progress::phase("reading the shards' rows", || read(|m| &m.fit_rows, &fit_keep))?;
    let drift_frame = read(|m| &m.drift_rows, &drift_keep)?;

    let phase = Instant::now();
    let layout = FeatureLayout::new(&config.data, &config.features);
    let drift = progress::phase("measuring drift", || {
        crate::drift::measure(&drift_frame, &config.data, &layout, &window)
    })
    .context("measuring the drift of the newest data")?;
    let seconds_drift = phase.elapsed().as_secs_f64();
    let state = registry
        .state()
        .context("reading the champion pointer and the decision log")?;
    let live = live_accuracy(config, lake, registry.model(), day);
    let mut plan = search::plan_search(
        config,
        registry,
        &state,
        day,
        full_search,
        &drift.alerts,
        live.as_ref(),
    )?;

    let phase = Instant::now();
    let mut vocabularies = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (m, _) in &prepared {
        for (column, values) in &m.vocabularies {
            vocabularies
                .entry(column.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
    }
    for values in vocabularies.values_mut() {
        values.sort_unstable();
        values.dedup();
    }
    let encoder = Encoder { layout, vocabularies };
    let split = train::split_rows(&fit_frame, &config.data, &window)?;
    let training_set = TrainingSet::with_encoder(&fit_frame, config.train_spec(), &split, encoder)
        .context("encoding the training rows")?;
    let challenger = match &plan.warm {
        Some(warm) => search::warm_challenger(
            &training_set,
            registry,
            config,
            warm,
            &mut plan.record,
            (day, &prepared[0].0.data_fingerprint),
        )?,
        None => train::train_challenger(&training_set).context("training the challenger")?,
    };
    let seconds_train = phase.elapsed().as_secs_f64();
    let recipe = super::retrain::recipe_of(&plan, &challenger, day);
    let stage = |what: &str, bytes: &[u8]| folder.stage(&format!("fit-{what}"), "bin", bytes);
    let challenger_file = stage("challenger", challenger.sealed.bytes())?;
    let inner_file = match &challenger.inner {
        Some(inner) => Some(stage("inner", &inner.to_bytes())?),
        None => None,
    };
    let first = &prepared[0].0;
    let marker = FitMarker {
        format: RUN_FORMAT,
        model: registry.model().to_string(),
        data_day: day,
        n,
        prepare: prepared.iter().map(|(_, sha)| sha.clone()).collect(),
        config_sha256: first.config_sha256.clone(),
        data_fingerprint: first.data_fingerprint.clone(),
        challenger: challenger_file,
        inner: inner_file,
        candidates: challenger.candidates.clone(),
        gbdt_config: challenger.gbdt_config.clone(),
        validation: challenger.validation.clone(),
        recipe,
        search: plan.record.clone(),
        drift,
        warm_calibration: plan.warm.as_ref().and_then(|w| w.calibration.clone()),
        rows: sum(|m| m.rows),
        training_rows: sum(|m| m.training_rows),
        holdout_rows: sum(|m| m.holdout_rows),
        partition_files: first.partition_files,
        thin_days: first.thin_days.clone(),
        seconds_drift,
        seconds_train,
        salescast: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::registry::pause::at(crate::registry::pause::Step::RunStaged)?;
    folder
        .put_marker(FIT_MARKER, &marker)
        .context("writing the fit's marker")?;
    Ok(FitReport {
        model: registry.model().to_string(),
        data_day: day,
        n,
        challenger: challenger.sealed.version().to_string(),
        family: challenger.artifact.model.family(),
        rounds: challenger.artifact.model.rounds(),
        search: plan.record,
        stacked_rows: fit_frame.height(),
        fit_rows: training_set.fit_row_count(),
        drift_alerts: marker.drift.alerts.clone(),
        marker: format!("{}{FIT_MARKER}.json", folder.prefix()),
        seconds: started.elapsed().as_secs_f64(),
    })
}
