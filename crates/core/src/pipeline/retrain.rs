//! `salescast retrain`: the daily job. Read and validate the window, build
//! features, train the challenger, score it with the champion and the
//! seasonal-naive baseline on the same holdout rows, store it, and commit the
//! decision through the registry's promotion protocol (decision logged first,
//! then the pointer moved by compare-and-swap).

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;

use super::check::{WindowFeatures, champion_features, read_training_window};
use super::forecaster::ReadWindow;
use super::retrain_commit::{Stored, conclude, live_accuracy, verdict};
use super::search;
use crate::config::Config;
use crate::evaluate::{self, per_series};
use crate::forecast::intervals::Calibration;
use crate::forecast::origins::{Scored, Scorer, one_day_forecasts, summarize};
use crate::forecast::recursive::History;
use crate::lake::{Lake, SalesWindow};
use crate::noise::{self, NoiseEstimate, PairedRow};
use crate::progress::{self, Phase};
use crate::registry::{Champion, LoadedModel, Registry, RegistryState};
use crate::report::{ChallengerSummary, ChampionSummary, RunReport, SeriesRow, Timings, WindowSummary};
use crate::report_charts::{live_days, series_paths};
use crate::train::{self, Recipe, Split, TrainingSet, score};
use crate::window::Window;

/// How many of the worst series the report lists.
pub(super) const WORST_SERIES: usize = 10;

pub struct RetrainOptions {
    pub run_date: NaiveDate,
    pub dry_run: bool,
    /// Search every candidate whatever the schedule (`--full-search`).
    pub full_search: bool,
}

/// The champion loaded and scored on this run's holdout.
struct ScoredChampion {
    pointer: Champion,
    summary: ChampionSummary,
    series: Vec<evaluate::SeriesScore>,
    /// Its forecasts on the holdout's rolling origins, for the noise check.
    scored: Vec<Scored>,
}

pub fn retrain(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    options: &RetrainOptions,
) -> anyhow::Result<RunReport> {
    Ok(retrain_keeping_window(config, lake, registry, options)?.0)
}

/// [`retrain`], handing back the window it read and validated (with the
/// configuration's mapping) for a `predict_from` of the same day.
pub fn retrain_keeping_window(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    options: &RetrainOptions,
) -> anyhow::Result<(RunReport, ReadWindow)> {
    let started = Instant::now();
    let mut seconds = Timings::default();
    let day = options.run_date;
    let WindowFeatures {
        window,
        sales,
        attributes,
        features,
        fingerprint,
        read_seconds,
        feature_seconds,
    } = read_training_window(config, lake, day)?;
    seconds.read = read_seconds;
    seconds.features = feature_seconds;

    let phase = Instant::now();
    let layout = crate::features::FeatureLayout::new(&config.data, &config.features);
    let drift = progress::phase("measuring drift", || {
        crate::drift::measure(&features, &config.data, &layout, &window)
    })
    .context("measuring the drift of the newest data")?;
    seconds.drift = phase.elapsed().as_secs_f64();
    if !drift.alerts.is_empty() {
        tracing::warn!(features = ?drift.alerts, max_drift = drift.max_drift, "the newest data drifted");
    }

    // The state every decision of this run is tied to (a dry run repairs
    // nothing); read before training, as the search plan depends on it.
    let state = if options.dry_run {
        registry.peek_state()
    } else {
        registry.state()
    }
    .context("reading the champion pointer and the decision log")?;
    let live = live_accuracy(config, lake, registry.model(), day);
    let mut search = search::plan_search(
        config,
        registry,
        &state,
        day,
        options.full_search,
        &drift.alerts,
        live.as_ref(),
    )?;

    let phase = Instant::now();
    let cpu = search::process_cpu_seconds();
    let split = train::split(&features, &config.data, &window).context("splitting the window")?;
    let training_set =
        TrainingSet::new(&features, config.train_spec(), &split).context("encoding the training rows")?;
    let challenger = match &search.warm {
        Some(warm) => search::warm_challenger(
            &training_set,
            registry,
            config,
            warm,
            &mut search.record,
            (day, &fingerprint),
        )?,
        None => train::train_challenger(&training_set).context("training the challenger")?,
    };
    seconds.train = phase.elapsed().as_secs_f64();
    seconds.train_cpu = cpu.zip(search::process_cpu_seconds()).map(|(a, b)| b - a);
    let recipe = recipe_of(&search, &challenger, day);

    let phase = Instant::now();
    let target = training_set.target();
    let history = History::new(&features, &config.data).context("indexing the window's series")?;
    let series: Vec<String> = split
        .holdout
        .iter()
        .map(|&row| history.name(history.of_row(row).0).to_string())
        .collect();
    let horizon = config.forecast.horizon_days;
    let holdout = Scorer {
        features: &features,
        history: &history,
        days: (window.holdout_first_day, window.last_day),
        rows: &split.holdout,
        target,
        horizon,
    };
    let calibration = match (&challenger.inner, &search.warm) {
        (Some(inner), _) => progress::phase("calibrating intervals", || {
            calibrate(&holdout, &window, &split, inner, config)
        })?,
        // A warm day fits once: the champion's intervals carry on.
        (None, warm) => warm.as_ref().and_then(|w| w.calibration.clone()),
    };
    let scoring = Phase::start("scoring on the holdout", Some(3));
    let challenger_scored = holdout
        .scored(&challenger.artifact)
        .context("scoring the challenger on rolling origins")?;
    let (one_day, challenger_pred) = score_one_day(
        &challenger.artifact,
        config,
        (&features, &split.holdout, target),
        &challenger_scored,
    )?;
    let horizons = summarize(&challenger_scored, horizon, holdout.days, calibration.as_ref());
    scoring.advance(1, "challenger");
    let challenger_holdout = horizons.pooled().clone();
    let baseline = holdout
        .scores(&training_set.baseline(&features)?, None)
        .context("scoring the seasonal-naive baseline on rolling origins")?
        .pooled()
        .clone();
    scoring.advance(1, "seasonal naive");
    let champion = score_champion(
        (lake, registry),
        &state,
        config,
        (&window, &sales),
        &attributes,
        &holdout,
        &split,
        &series,
        AsChallenger {
            artifact: &challenger.artifact,
            version: challenger.sealed.version(),
            scored: &challenger_scored,
            one_day: &one_day,
            predicted: &challenger_pred,
        },
    )?;
    scoring.advance(1, "champion");
    scoring.finish();
    seconds.evaluate = phase.elapsed().as_secs_f64();

    let same_version = champion
        .as_ref()
        .is_some_and(|c| c.pointer.version == challenger.sealed.version());
    let noise = match &champion {
        Some(c) if !same_version && config.promotion.confidence > 0.0 => {
            // Seeded by the run's inputs: the same data, day and versions
            // give the same interval, so the same decision.
            let seed = noise::seed_from(&[
                &fingerprint,
                &day.to_string(),
                challenger.sealed.version(),
                &c.pointer.version,
            ]);
            noise_estimate(&challenger_scored, &c.scored, &history, &config.promotion, seed)
        }
        _ => None,
    };
    let holdout_actual: Vec<f64> = split.holdout.iter().map(|&i| target[i]).collect();
    let worst = worst_series(&series, &holdout_actual, &challenger_pred, champion.as_ref());
    let challenger_summary = ChallengerSummary {
        version: challenger.sealed.version().to_string(),
        family: challenger.artifact.model.family(),
        gbdt_config: challenger.gbdt_config.clone(),
        size: challenger.sealed.bytes().len(),
        stored: None,
        candidates: challenger.candidates.clone(),
        rounds: challenger.artifact.model.rounds(),
        holdout: challenger_holdout.clone(),
        one_day,
        horizons,
        calibration: calibration.clone(),
    };
    let verdict = verdict(
        config,
        (&challenger_summary, champion.as_ref().map(|c| &c.summary)),
        &baseline,
        &drift,
        noise.as_ref(),
    );
    let report = RunReport {
        model: registry.model().to_string(),
        run_date: day,
        dry_run: options.dry_run,
        decision: verdict.kind,
        reason: verdict.reason.clone(),
        decision_sequence: None,
        champion_after: champion.as_ref().map(|c| c.pointer.version.clone()),
        window: WindowSummary {
            lake: lake.store().uri_of(""),
            first_day: window.first_day,
            last_day: window.last_day,
            trained_through: window.trained_through(),
            holdout_first_day: window.holdout_first_day,
            partition_files: sales.files.len(),
            data_fingerprint: fingerprint.clone(),
            rows: sales.frame.height(),
            training_rows: split.train.len(),
            holdout_rows: split.holdout.len(),
            thin_days: sales.thin_days.clone(),
        },
        challenger: challenger_summary,
        champion: champion.as_ref().map(|c| c.summary.clone()),
        baseline: baseline.clone(),
        worst_series: worst,
        seconds,
        cost: None,
        repairs: state.repairs.clone(),
        live,
        drift: Some(drift),
        noise: noise.clone(),
        series_paths: series_paths(
            &history,
            &split.holdout,
            target,
            &challenger_pred,
            calibration.as_ref(),
        ),
        live_days: live_days(lake, registry.model(), &config.data.series_keys, horizon, day).unwrap_or_else(
            |e| {
                tracing::warn!("the report has no live-accuracy chart: reading the scores table failed: {e}");
                Vec::new()
            },
        ),
        search: Some(search.record.clone()),
    };
    let report = conclude(
        config,
        lake,
        registry,
        started,
        &state,
        report,
        Stored {
            sealed: &challenger.sealed,
            validation: challenger.validation.clone(),
            calibration,
            recipe,
            committed: None,
        },
    )?;
    let read = ReadWindow {
        data_day: day,
        sales: sales.frame,
        tables: attributes,
    };
    Ok((report, read))
}

/// The recipe a new version records: the champion's on a warm day, else
/// what today's search found.
pub(super) fn recipe_of(
    search: &search::SearchPlan,
    challenger: &train::Challenger,
    day: NaiveDate,
) -> Recipe {
    match &search.warm {
        Some(warm) => warm.recipe.clone(),
        None => Recipe {
            family: challenger.artifact.model.family(),
            gbdt_config: challenger.gbdt_config.clone(),
            params: challenger.tuned.clone(),
            rounds: challenger.artifact.model.rounds(),
            fingerprint: search.fingerprint.clone(),
            searched_on: day,
        },
    }
}

/// Refuses to score a champion trained with another date column, series
/// keys or target: it cannot be scored on the same rows.
pub(super) fn check_same_rows(
    artifact: &crate::models::Artifact,
    config: &Config,
    version: &str,
) -> anyhow::Result<()> {
    let same_rows = artifact.mapping.date_column == config.data.date_column
        && artifact.mapping.series_keys == config.data.series_keys
        && artifact.mapping.target == config.data.target;
    if !same_rows {
        anyhow::bail!(
            "the champion {version} was trained with another date column, series keys or target; it cannot be scored on the same rows. \
             Roll back to a compatible version or start a new model (training.model_name)"
        );
    }
    Ok(())
}

/// Whether `artifact` was built with this configuration's mapping and
/// features, so it scores on this run's feature frame (else on its own).
pub(super) fn built_for(artifact: &crate::models::Artifact, config: &Config) -> bool {
    artifact.mapping.same_for_models(&config.data) && artifact.features == config.features
}

/// The challenger as scored on this run's holdout: when it is the
/// champion itself (a rerun that fitted the same bytes), its scores are
/// the champion's.
struct AsChallenger<'a> {
    artifact: &'a crate::models::Artifact,
    version: &'a str,
    scored: &'a [Scored],
    one_day: &'a evaluate::Metrics,
    predicted: &'a [f64],
}

/// Loads the champion (re-hashed), builds its own features if it was
/// trained with other data or feature settings (`champion_features`: from
/// the same window, read again with its mapping when that reads other
/// columns), and scores it on exactly
/// the challenger's rolling origins and holdout rows. A champion that is
/// the challenger (the same version, so the same artifact, built with this
/// configuration's mapping and features) is re-hashed but not scored again:
/// the challenger's forecasts are its own.
#[allow(clippy::too_many_arguments)]
fn score_champion(
    (lake, registry): (&Lake, &Registry),
    state: &RegistryState,
    config: &Config,
    (window, sales): (&Window, &SalesWindow),
    attributes: &crate::tables::Tables,
    holdout: &Scorer,
    split: &Split,
    series: &[String],
    challenger: AsChallenger,
) -> anyhow::Result<Option<ScoredChampion>> {
    let Some(pointer) = state.champion.clone() else {
        return Ok(None);
    };
    let loading = || format!("loading the champion {}", pointer.version);
    let same = pointer.version == challenger.version && built_for(challenger.artifact, config);
    if same {
        registry.load_artifact(&pointer.version).with_context(loading)?;
        let manifest = registry.manifest(&pointer.version).with_context(loading)?;
        tracing::info!("the challenger is the champion: its scores on the holdout are the champion's");
        return Ok(Some(scored_champion(
            pointer,
            (challenger.artifact, &manifest),
            (window, holdout, split, series),
            (
                challenger.scored.to_vec(),
                challenger.one_day.clone(),
                challenger.predicted,
            ),
        )));
    }
    let LoadedModel { artifact, manifest } = registry.load_model(&pointer.version).with_context(loading)?;
    check_same_rows(&artifact, config, &pointer.version)?;
    let own_features;
    let own_history;
    let mut scorer = *holdout;
    if !built_for(&artifact, config) {
        own_features = champion_features(
            (&pointer.version, &artifact),
            config,
            lake,
            (window, None),
            (&sales.frame, attributes),
        )?;
        own_history = History::new(&own_features, &artifact.mapping)?;
        scorer.features = &own_features;
        scorer.history = &own_history;
    }
    let scored = scorer
        .scored(&artifact)
        .context("scoring the champion on rolling origins")?;
    let (one_day, predicted) = score_one_day(
        &artifact,
        config,
        (scorer.features, &split.holdout, holdout.target),
        &scored,
    )?;
    Ok(Some(scored_champion(
        pointer,
        (&artifact, &manifest),
        (window, holdout, split, series),
        (scored, one_day, &predicted),
    )))
}

/// `artifact`'s one-day-ahead predictions of `rows` and their metrics
/// ([`score`]), taken from its rolling-origin forecasts of the same frame
/// (`scored`), which hold every scored row's forecast from the day before:
/// the forecasts as `predict` makes them. Their history features are the
/// recursion's own sums, equal to the frame's up to rounding in the last
/// bits (exact on whole-number sales). The model is asked instead when one
/// is missing, or when `artifact` takes closed days by another open flag
/// than `config` (it forecasts its own closed days 0, where the rows are
/// this run's open days).
pub(super) fn score_one_day(
    artifact: &crate::models::Artifact,
    config: &Config,
    (features, rows, target): (&polars::prelude::DataFrame, &[usize], &[f64]),
    scored: &[Scored],
) -> anyhow::Result<(evaluate::Metrics, Vec<f64>)> {
    if artifact.mapping.open_flag == config.data.open_flag {
        match one_day_forecasts(scored, rows) {
            Some(predicted) => {
                let metrics = evaluate::metrics(&crate::train::take(target, rows), &predicted);
                return Ok((metrics, predicted));
            }
            // Not expected: every scored row is forecast from the day before.
            None => tracing::warn!(
                "some holdout rows have no forecast from the day before: their one-day predictions are asked of the model"
            ),
        }
    }
    Ok(score(artifact, features, rows, target)?)
}

/// The champion's summary and per-series scores from its forecasts on the
/// rolling origins (`scored`) and one day ahead (`one_day`, `predicted`).
fn scored_champion(
    pointer: Champion,
    (artifact, manifest): (&crate::models::Artifact, &crate::registry::Manifest),
    (window, holdout, split, series): (&Window, &Scorer, &Split, &[String]),
    (scored, one_day, predicted): (Vec<Scored>, evaluate::Metrics, &[f64]),
) -> ScoredChampion {
    let horizons = summarize(
        &scored,
        holdout.horizon,
        holdout.days,
        manifest.calibration.as_ref(),
    );
    let actual: Vec<f64> = split.holdout.iter().map(|&i| holdout.target[i]).collect();
    ScoredChampion {
        summary: ChampionSummary {
            version: pointer.version.clone(),
            family: artifact.model.family(),
            holdout: horizons.pooled().clone(),
            one_day,
            horizons,
            trained_through: manifest.lineage.trained_through,
            saw_holdout: manifest.lineage.trained_through >= window.holdout_first_day,
        },
        series: per_series(series, &actual, predicted),
        pointer,
        scored,
    }
}

/// The noise check's estimate: the challenger's and the champion's
/// forecasts paired by (row, horizon), i.e. by (origin, series, target day),
/// summed per series and bootstrapped (`noise`). Rows only one of them
/// scored (none are expected: both forecast the same paths) are left out
/// with a warning.
fn noise_estimate(
    challenger: &[Scored],
    champion: &[Scored],
    history: &History,
    gate: &evaluate::PromotionSettings,
    seed: u64,
) -> Option<NoiseEstimate> {
    let by_key: std::collections::HashMap<(usize, u32), f64> = champion
        .iter()
        .map(|s| ((s.row, s.horizon), s.forecast))
        .collect();
    // Blocks by the series' name order, as a sharded fan-in numbers them.
    let ranks = history.name_ranks();
    let paired: Vec<PairedRow> = challenger
        .iter()
        .filter_map(|s| {
            by_key.get(&(s.row, s.horizon)).map(|&champion| PairedRow {
                block: ranks[history.of_row(s.row).0 as usize],
                actual: s.actual,
                champion,
                challenger: s.forecast,
            })
        })
        .collect();
    if paired.len() != challenger.len() || paired.len() != champion.len() {
        tracing::warn!(
            paired = paired.len(),
            challenger = challenger.len(),
            champion = champion.len(),
            "the champion and the challenger forecast different holdout rows: the noise check uses the rows both forecast"
        );
    }
    let estimate = noise::bootstrap(&noise::blocks(paired), gate.confidence, gate.resamples, seed);
    if let Some(e) = &estimate {
        tracing::info!(
            improvement = e.improvement,
            lower = e.lower,
            upper = e.upper,
            series = e.blocks,
            "the improvement's {:.0}% interval",
            100.0 * e.confidence
        );
    }
    estimate
}

/// Calibrates the challenger's intervals on the inner validation window,
/// with its family fitted on the inner training rows only (out of sample),
/// forecast from rolling origins as on the holdout.
fn calibrate(
    holdout: &Scorer,
    window: &Window,
    split: &Split,
    inner: &crate::models::Artifact,
    config: &Config,
) -> anyhow::Result<Option<Calibration>> {
    let last_inner_day = window
        .holdout_first_day
        .pred_opt()
        .unwrap_or(window.holdout_first_day);
    let scorer = Scorer {
        days: (window.inner_first_day, last_inner_day),
        rows: &split.inner_valid,
        ..*holdout
    };
    let scored = scorer
        .scored(inner)
        .context("forecasting the inner validation window to calibrate the intervals")?;
    let calibration = Calibration::fit(&scored, holdout.horizon, config.forecast.interval);
    if calibration.is_none() {
        tracing::warn!(
            forecasts = scored.len(),
            "too few forecasts on the inner validation window to calibrate intervals: this version's forecasts will have none"
        );
    }
    Ok(calibration)
}

fn worst_series(
    series: &[String],
    actual: &[f64],
    predicted: &[f64],
    champion: Option<&ScoredChampion>,
) -> Vec<SeriesRow> {
    per_series(series, actual, predicted)
        .into_iter()
        .take(WORST_SERIES)
        .map(|s| SeriesRow {
            champion_wape: champion
                .and_then(|c| c.series.iter().find(|x| x.series == s.series).map(|x| x.wape)),
            series: s.series,
            actual: s.actual,
            challenger_wape: s.wape,
        })
        .collect()
}
