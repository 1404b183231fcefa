//! The fan-in of a sharded `retrain` (the shard steps are
//! `retrain_shards.rs`, the one fit `retrain_fit.rs`): `retrain --date D
//! --fan-in N` checks that the N shards scored the fit's challenger against
//! the current champion (or the one a logged decision of this fit judged,
//! below), pools their forecasts in the single run's order, and decides,
//! stores and commits as `retrain` does (`retrain_commit.rs`); then it
//! marks the run decided and deletes the rest of the run's folder.
//! A fan-in retried after that (its build retried after salescast had
//! succeeded) answers with the earlier decision and its stored report, and
//! decides nothing. Just before its commit a fan-in marks the run
//! `deciding`: one retried after a kill between the commit and the
//! `decided` marker finds that decision in the log, reports it (the report
//! rebuilt from the shards' scores) and logs none.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;

use super::check::run_window;
use super::retrain_commit::{Stored, conclude, live_accuracy, verdict};
use super::retrain_fit::{logged_decision, read_fit};
use super::retrain_shards::{ScoreMarker, ShardScores};
use crate::config::Config;
use crate::digest::Sealed;
use crate::evaluate::{metrics, per_series};
use crate::forecast::intervals::Calibration;
use crate::forecast::origins::{Scored, summarize};
use crate::lake::Lake;
use crate::noise::{self, PairedRow};
use crate::registry::Registry;
use crate::report::{ChallengerSummary, ChampionSummary, RunReport, SeriesRow, Timings, WindowSummary};
use crate::report_charts::live_days;
use crate::retrain_runs::{
    self, DECIDED_MARKER, DECIDING_MARKER, DecidedMarker, DecidingMarker, FIT_MARKER, RunFolder, score_marker,
};

/// What `retrain --fan-in N` did.
#[derive(Debug)]
pub enum FanIn {
    /// It decided: the run's report.
    Decided(Box<RunReport>),
    /// An earlier fan-in of the same fit and N had decided (this one is a
    /// retried build): nothing was decided or written now.
    AlreadyDecided(DecidedAlready),
}

/// A retried fan-in's answer: the earlier fan-in's decision and its report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecidedAlready {
    pub model: String,
    pub run_date: NaiveDate,
    pub shards: u32,
    pub decided_already: bool,
    pub decision_sequence: u64,
    /// That fan-in's report, as the registry keeps it (`runs/<date>/report.json`).
    pub report: serde_json::Value,
    /// Its Markdown (`report.md`).
    #[serde(skip)]
    pub markdown: String,
}

/// The earlier decision of this folder's run, when a fan-in of the same N
/// decided it (its `decided` marker), the day's sharded run did not start
/// again since (the fit marker is the decided one, or gone with every
/// other file), and the date's stored report is still that decision's.
fn decided_already(
    folder: &RunFolder,
    registry: &Registry,
    n: u32,
) -> anyhow::Result<Option<DecidedAlready>> {
    let Ok((decided, _)) = folder.marker::<DecidedMarker>(DECIDED_MARKER)? else {
        return Ok(None);
    };
    if decided.n != n {
        return Ok(None);
    }
    match folder.marker::<serde_json::Value>(FIT_MARKER)? {
        // Another fit: fan that one in.
        Ok((_, fit)) if fit != decided.fit => return Ok(None),
        // The decided fit: its fan-in stopped while clearing the folder.
        Ok(_) => {}
        // Files beside the marker and no fit: a run of the day started
        // again (its shards prepared), and refuses until its fit.
        Err(_) if !folder.holds_only(DECIDED_MARKER)? => return Ok(None),
        Err(_) => {}
    }
    let day = folder.data_day;
    let report: Option<serde_json::Value> =
        registry.report(day).context("reading the run's stored report")?;
    let markdown = registry
        .report_markdown(day)
        .context("reading the run's stored report")?;
    let (Some(report), Some(markdown)) = (report, markdown) else {
        return Ok(None);
    };
    if report["decision_sequence"].as_u64() != Some(decided.decision_sequence) {
        return Ok(None);
    }
    Ok(Some(DecidedAlready {
        model: registry.model().to_string(),
        run_date: day,
        shards: n,
        decided_already: true,
        decision_sequence: decided.decision_sequence,
        report,
        markdown,
    }))
}

/// Forecasts pooled from every shard, in the single run's order (series
/// name, day, horizon), each with its series' rank among all names.
struct Pooled {
    /// Every series name, sorted.
    names: Vec<String>,
    scores: Vec<ShardScores>,
}

impl Pooled {
    fn rank(&self, name: &str) -> u32 {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).unwrap_or(0) as u32
    }

    /// One model's forecasts from every shard, as (rank, day, horizon,
    /// forecast, actual), in the canonical order.
    fn forecasts(
        &self,
        pick: fn(&ShardScores) -> Option<&Vec<super::retrain_shards::Forecast>>,
    ) -> Vec<(u32, i32, Scored)> {
        let mut out: Vec<(u32, i32, Scored)> = self
            .scores
            .iter()
            .flat_map(|s| {
                pick(s).into_iter().flatten().map(move |f| {
                    (
                        self.rank(&s.names[f.series as usize]),
                        f.day,
                        Scored {
                            horizon: f.horizon,
                            row: 0,
                            forecast: f.forecast,
                            actual: f.actual,
                        },
                    )
                })
            })
            .collect();
        out.sort_unstable_by_key(|(rank, day, s)| (*rank, *day, s.horizon));
        out
    }
}

fn scored_only(pooled: &[(u32, i32, Scored)]) -> Vec<Scored> {
    pooled.iter().map(|(_, _, s)| *s).collect()
}

/// `retrain --date D --fan-in N`.
pub fn fan_in_shards(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    day: NaiveDate,
    n: u32,
    dry_run: bool,
) -> anyhow::Result<FanIn> {
    let folder = RunFolder::new(registry, day);
    if let Some(done) = decided_already(&folder, registry, n)? {
        tracing::info!(
            "the sharded retrain of {day} was decided already (decision #{}): nothing to do",
            done.decision_sequence
        );
        if !dry_run {
            // What the deciding fan-in may not have finished.
            clear_run(registry, &folder);
        }
        return Ok(FanIn::AlreadyDecided(done));
    }
    decide(config, lake, registry, &folder, n, dry_run).map(|report| FanIn::Decided(Box::new(report)))
}

/// After a decision: every file of the run's folder but its `decided`
/// marker removed, and older days' abandoned runs expired. A failure is
/// only a warning: the decision stands, and a retried fan-in clears again.
fn clear_run(registry: &Registry, folder: &RunFolder) {
    match folder.clear_but(DECIDED_MARKER) {
        Ok(0) => {}
        Ok(removed) => tracing::info!("removed the run's {removed} staged files"),
        Err(e) => tracing::warn!("could not remove the run's staged files: {e}"),
    }
    expire_abandoned(registry, folder);
}

/// Older days' abandoned runs expired (more than `staging::KEEP_DAYS`
/// before this one).
fn expire_abandoned(registry: &Registry, folder: &RunFolder) {
    let root = retrain_runs::runs_root(registry);
    crate::staging::expire_after_commit(registry.store(), &root, folder.data_day);
}

fn decide(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    folder: &RunFolder,
    n: u32,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let day = folder.data_day;
    let fit = read_fit(folder, n, "fan in")?;
    let committed = logged_decision(folder, registry, n, &fit.sha256, "fan in")?;
    if let Some(logged) = &committed {
        tracing::warn!(
            "decision #{} ({}) on this fit is in the log already, made by a fan-in that has not marked the run \
             decided (it was stopped, or is still running). Reporting that decision, deciding nothing",
            logged.sequence,
            logged.what.kind.as_str()
        );
    }
    let state = if dry_run {
        registry.peek_state()
    } else {
        registry.state()
    }
    .context("reading the champion pointer and the decision log")?;
    // The champion this run is judged against (the shards must have scored
    // it): the current one, or the one a logged decision of this fit judged.
    let judged = match &committed {
        Some(logged) => logged.what.champion_before.clone(),
        None => state.champion.as_ref().map(|c| c.version.clone()),
    };
    let mut problems = Vec::new();
    let mut scores = Vec::new();
    for k in 0..n {
        let name = score_marker(k, n);
        let marker = match folder.marker::<ScoreMarker>(&name)? {
            Ok((m, _)) => m,
            Err(problem) => {
                problems.push(format!("shard {k}/{n}: {problem}"));
                continue;
            }
        };
        if marker.fit != fit.sha256 {
            problems.push(format!("shard {k}/{n} scored another fit: score it again"));
            continue;
        }
        if marker.champion != judged {
            let now = match &committed {
                Some(logged) => format!("decision #{} of this fit judged", logged.sequence),
                None => "the champion is now".to_string(),
            };
            problems.push(format!(
                "shard {k}/{n} scored the champion {} but {now} {}: score it again",
                marker.champion.as_deref().map_or("(none)", crate::digest::short),
                judged.as_deref().map_or("(none)", crate::digest::short)
            ));
            continue;
        }
        match folder.read(&marker.file)? {
            Ok(bytes) => match retrain_runs::decode::<ShardScores>(&bytes) {
                Ok(s) => scores.push(s),
                Err(e) => problems.push(format!("shard {k}/{n}: {} is unreadable ({e})", marker.file.key)),
            },
            Err(problem) => problems.push(format!("shard {k}/{n}: {problem}")),
        }
    }
    if !problems.is_empty() {
        return Err(folder.refuse("fan in", problems).into());
    }
    let mut names: Vec<String> = scores.iter().flat_map(|s| s.names.iter().cloned()).collect();
    names.sort_unstable();
    names.dedup();
    let pooled = Pooled { names, scores };

    let phase = Instant::now();
    let window = run_window(config, day)?;
    let horizon = config.forecast.horizon_days;
    let days = (window.holdout_first_day, window.last_day);
    let challenger_fc = pooled.forecasts(|s| Some(&s.challenger));
    let calibration = match &fit.inner {
        Some(_) => {
            let inner = scored_only(&pooled.forecasts(|s| s.inner.as_ref()));
            let calibration = Calibration::fit(&inner, horizon, config.forecast.interval);
            if calibration.is_none() {
                tracing::warn!(
                    forecasts = inner.len(),
                    "too few forecasts on the inner validation window to calibrate intervals: this version's forecasts will have none"
                );
            }
            calibration
        }
        None => fit.marker.warm_calibration.clone(),
    };
    let horizons = summarize(&scored_only(&challenger_fc), horizon, days, calibration.as_ref());
    let baseline = summarize(
        &scored_only(&pooled.forecasts(|s| Some(&s.baseline))),
        horizon,
        days,
        None,
    )
    .pooled()
    .clone();
    // The holdout rows in the single run's frame order: day, then keys.
    let mut holdout: Vec<(&super::retrain_shards::HoldoutRow, &str)> = pooled
        .scores
        .iter()
        .flat_map(|s| {
            s.holdout
                .iter()
                .map(move |r| (r, s.names[r.series as usize].as_str()))
        })
        .collect();
    holdout.sort_by(|(a, _), (b, _)| (a.day, &a.keys).cmp(&(b.day, &b.keys)));
    let actual: Vec<f64> = holdout.iter().map(|(r, _)| r.actual).collect();
    let challenger_pred: Vec<f64> = holdout.iter().map(|(r, _)| r.challenger).collect();
    let series: Vec<String> = holdout.iter().map(|(_, name)| name.to_string()).collect();
    let one_day = metrics(&actual, &challenger_pred);

    let champion = match &judged {
        Some(version) => {
            let manifest = registry
                .manifest(version)
                .with_context(|| format!("reading the champion {version}'s manifest"))?;
            let champion_fc = pooled.forecasts(|s| s.champion.as_ref());
            let predicted: Vec<f64> = holdout
                .iter()
                .map(|(r, _)| r.champion.unwrap_or(f64::NAN))
                .collect();
            let horizons = summarize(
                &scored_only(&champion_fc),
                horizon,
                days,
                manifest.calibration.as_ref(),
            );
            Some((
                ChampionSummary {
                    version: version.clone(),
                    family: manifest.family,
                    holdout: horizons.pooled().clone(),
                    one_day: metrics(&actual, &predicted),
                    horizons,
                    trained_through: manifest.lineage.trained_through,
                    saw_holdout: manifest.lineage.trained_through >= window.holdout_first_day,
                },
                champion_fc,
                per_series(&series, &actual, &predicted),
            ))
        }
        None => None,
    };
    let sealed = Sealed::new(
        folder
            .read(&fit.marker.challenger)?
            .map_err(|p| folder.refuse("fan in", vec![p]))?,
    );
    let noise = match &champion {
        Some((summary, champion_fc, _))
            if summary.version != sealed.version() && config.promotion.confidence > 0.0 =>
        {
            let seed = noise::seed_from(&[
                &fit.marker.data_fingerprint,
                &day.to_string(),
                sealed.version(),
                &summary.version,
            ]);
            paired_noise(&challenger_fc, champion_fc, &config.promotion, seed)
        }
        _ => None,
    };
    let evaluate_seconds = phase.elapsed().as_secs_f64();

    let challenger = ChallengerSummary {
        version: sealed.version().to_string(),
        family: fit.challenger.model.family(),
        gbdt_config: fit.marker.gbdt_config.clone(),
        size: sealed.bytes().len(),
        stored: None,
        candidates: fit.marker.candidates.clone(),
        rounds: fit.challenger.model.rounds(),
        holdout: horizons.pooled().clone(),
        one_day,
        horizons,
        calibration: calibration.clone(),
    };
    let verdict = verdict(
        config,
        (&challenger, champion.as_ref().map(|c| &c.0)),
        &baseline,
        &fit.marker.drift,
        noise.as_ref(),
    );
    let worst = per_series(&series, &actual, &challenger_pred)
        .into_iter()
        .take(super::retrain::WORST_SERIES)
        .map(|s| SeriesRow {
            champion_wape: champion
                .as_ref()
                .and_then(|c| c.2.iter().find(|x| x.series == s.series).map(|x| x.wape)),
            series: s.series,
            actual: s.actual,
            challenger_wape: s.wape,
        })
        .collect();
    let m = &fit.marker;
    let report = RunReport {
        model: registry.model().to_string(),
        run_date: day,
        dry_run,
        decision: verdict.kind,
        reason: verdict.reason.clone(),
        decision_sequence: None,
        champion_after: judged,
        window: WindowSummary {
            lake: lake.store().uri_of(""),
            first_day: window.first_day,
            last_day: window.last_day,
            trained_through: window.trained_through(),
            holdout_first_day: window.holdout_first_day,
            partition_files: m.partition_files,
            data_fingerprint: m.data_fingerprint.clone(),
            rows: m.rows,
            training_rows: m.training_rows,
            holdout_rows: m.holdout_rows,
            thin_days: m.thin_days.clone(),
        },
        challenger,
        champion: champion.map(|c| c.0),
        baseline,
        worst_series: worst,
        seconds: Timings {
            drift: m.seconds_drift,
            train: m.seconds_train,
            evaluate: evaluate_seconds,
            ..Timings::default()
        },
        cost: None,
        repairs: state.repairs.clone(),
        live: live_accuracy(config, lake, registry.model(), day),
        drift: Some(m.drift.clone()),
        noise,
        // The forecast charts need every series' path: a sharded run's
        // report has the tables and the live chart, not those charts.
        series_paths: Vec::new(),
        live_days: live_days(lake, registry.model(), &config.data.series_keys, horizon, day).unwrap_or_else(
            |e| {
                tracing::warn!("the report has no live-accuracy chart: reading the scores table failed: {e}");
                Vec::new()
            },
        ),
        search: Some(m.search.clone()),
    };
    if !dry_run && committed.is_none() {
        let deciding = DecidingMarker {
            n,
            fit: fit.sha256.clone(),
            challenger: sealed.version().to_string(),
            champion: report.champion.as_ref().map(|c| c.version.clone()),
            after_sequence: state.last_sequence,
        };
        folder
            .put_marker(DECIDING_MARKER, &deciding)
            .context("marking the run as deciding (nothing is decided yet)")?;
    }
    let report = conclude(
        config,
        lake,
        registry,
        started,
        &state,
        report,
        Stored {
            sealed: &sealed,
            validation: m.validation.clone(),
            calibration,
            recipe: m.recipe.clone(),
            committed,
        },
    )?;
    if !dry_run {
        if let Some(decision_sequence) = report.decision_sequence {
            let decided = DecidedMarker {
                n,
                fit: fit.sha256.clone(),
                decision_sequence,
            };
            if let Err(e) = folder.put_marker(DECIDED_MARKER, &decided) {
                // The run's files stay: a fan-in run again finds this
                // decision in the log through them.
                tracing::warn!(
                    "could not mark the run decided ({e}): its files stay, and a fan-in run again reports decision #{decision_sequence}"
                );
                expire_abandoned(registry, folder);
                return Ok(report);
            }
        }
        clear_run(registry, folder);
    }
    Ok(report)
}

/// The noise check on forecasts pooled from the shards, paired by series,
/// day and horizon, one block per series (as `retrain`'s).
fn paired_noise(
    challenger: &[(u32, i32, Scored)],
    champion: &[(u32, i32, Scored)],
    gate: &crate::evaluate::PromotionSettings,
    seed: u64,
) -> Option<noise::NoiseEstimate> {
    let by_key: std::collections::HashMap<(u32, i32, u32), f64> = champion
        .iter()
        .map(|(rank, day, s)| ((*rank, *day, s.horizon), s.forecast))
        .collect();
    let paired: Vec<PairedRow> = challenger
        .iter()
        .filter_map(|(rank, day, s)| {
            by_key.get(&(*rank, *day, s.horizon)).map(|&champion| PairedRow {
                block: *rank,
                actual: s.actual,
                champion,
                challenger: s.forecast,
            })
        })
        .collect();
    noise::bootstrap(&noise::blocks(paired), gate.confidence, gate.resamples, seed)
}
