//! The end of a retrain, single-machine or sharded (`retrain_fan_in.rs`):
//! the gate's verdict from the scores, then (unless a dry run) the
//! challenger stored with its manifest, the decision committed through the
//! registry's protocol, and the run report and its charts written.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;

use crate::config::Config;
use crate::cost::CostEstimate;
use crate::digest::Sealed;
use crate::drift::DriftReport;
use crate::evaluate::{self, Metrics, Verdict};
use crate::forecast::intervals::Calibration;
use crate::lake::Lake;
use crate::live::{LiveSummary, live_summary};
use crate::noise::NoiseEstimate;
use crate::progress::Phase;
use crate::registry::pause::{self, Step};
use crate::registry::{BuildInfo, Decision, Lineage, Manifest, NewDecision, Registry, RegistryState};
use crate::report::{ChallengerSummary, ChampionSummary, RunReport};
use crate::train::Recipe;

/// What is stored with the challenger besides the report's figures.
pub(super) struct Stored<'a> {
    pub sealed: &'a Sealed,
    pub validation: Metrics,
    pub calibration: Option<Calibration>,
    pub recipe: Recipe,
    /// The decision the log already holds for this challenger (a fan-in
    /// retried after a kill between its commit and its `decided` marker):
    /// reported as it was logged, not committed a second time.
    pub committed: Option<Decision>,
}

/// The gate's verdict on a run's scores (the challenger's, the champion's
/// if there is one, the baseline's), drift and noise, logged.
pub(super) fn verdict(
    config: &Config,
    (challenger, champion): (&ChallengerSummary, Option<&ChampionSummary>),
    baseline: &Metrics,
    drift: &DriftReport,
    noise: Option<&NoiseEstimate>,
) -> Verdict {
    let same_version = champion.is_some_and(|c| c.version == challenger.version);
    let verdict = evaluate::decide(
        &challenger.holdout,
        champion.map(|c| &c.holdout),
        baseline,
        same_version,
        drift.alert_summary().as_deref(),
        noise,
        &config.promotion,
    );
    tracing::info!(decision = ?verdict.kind, "{}", verdict.reason);
    verdict
}

/// Stores the challenger and commits the report's decision (nothing in a
/// dry run), then writes the report; returns it with the decision's
/// number, the champion after it, the time and the cost.
pub(super) fn conclude(
    config: &Config,
    lake: &Lake,
    registry: &Registry,
    started: Instant,
    state: &RegistryState,
    mut report: RunReport,
    stored: Stored,
) -> anyhow::Result<RunReport> {
    if report.dry_run {
        if let Some(logged) = &stored.committed {
            take_logged(&mut report, logged);
        }
        finish(&mut report, config, lake, registry, started);
        return Ok(report);
    }
    let day = report.run_date;
    let version = stored.sealed.version().to_string();
    let window = &report.window;
    let manifest = Manifest {
        version: version.clone(),
        model: registry.model().to_string(),
        family: report.challenger.family,
        size: stored.sealed.bytes().len() as u64,
        created_at: chrono::Utc::now(),
        lineage: Lineage {
            lake: window.lake.clone(),
            window_first_day: window.first_day,
            window_last_day: window.last_day,
            trained_through: window.trained_through,
            holdout_first_day: window.holdout_first_day,
            partition_files: window.partition_files,
            data_fingerprint: window.data_fingerprint.clone(),
            training_rows: window.training_rows,
            thin_days: window.thin_days.days.iter().map(|d| d.day).collect(),
        },
        config: serde_json::to_value(config)?,
        holdout_metrics: report.challenger.holdout.clone(),
        validation_metrics: stored.validation,
        build: BuildInfo::current(),
        calibration: stored.calibration,
        drift: report.drift.clone(),
        gbdt_config: report.challenger.gbdt_config.clone(),
        recipe: Some(stored.recipe),
    };
    let writing = Phase::start("writing the model and report", None);
    report.challenger.stored = Some(
        registry
            .put_version(stored.sealed, &manifest)
            .context("storing the challenger")?,
    );

    pause::at(Step::VersionStored)?;

    let decision = match stored.committed {
        Some(logged) => {
            take_logged(&mut report, &logged);
            logged
        }
        None => registry
            .commit(
                state,
                NewDecision {
                    kind: report.decision,
                    actor: super::actor(),
                    reason: report.reason.clone(),
                    run_date: Some(day),
                    champion_before: None,
                    champion_after: Some(version.clone()),
                    challenger: Some(version.clone()),
                    challenger_metrics: Some(report.challenger.holdout.clone()),
                    champion_metrics: report.champion.as_ref().map(|c| c.holdout.clone()),
                    baseline_metrics: Some(report.baseline.clone()),
                    recovered: false,
                    noise: report.noise.clone(),
                    search: report.search.clone(),
                },
            )
            .with_context(|| {
                format!(
                    "committing the {} decision (the challenger {version} stays stored)",
                    report.decision.as_str(),
                )
            })?,
    };
    report.champion_after = decision.what.champion_after.clone();
    report.decision_sequence = Some(decision.sequence);
    finish(&mut report, config, lake, registry, started);
    let json = serde_json::to_vec_pretty(&report)?;
    // The charts first: report.md never links a file that is not there.
    let charts: Vec<(String, Vec<u8>)> = report
        .charts()
        .into_iter()
        .map(|c| (c.name, c.svg.into_bytes()))
        .collect();
    registry
        .put_report_files(day, &charts)
        .context("writing the run report's charts")?;
    registry
        .put_report(day, &json, &report.markdown())
        .context("writing the run report")?;
    writing.finish();
    Ok(report)
}

/// A decision the log holds already, as the report's: what the log says
/// was decided is what was decided.
fn take_logged(report: &mut RunReport, logged: &Decision) {
    report.decision = logged.what.kind;
    report.reason = logged.what.reason.clone();
    report.champion_after = logged.what.champion_after.clone();
    report.decision_sequence = Some(logged.sequence);
}

/// The live section of the report, from the scores table `monitor` fills;
/// a scores table that cannot be read is warned about, not a failed run.
pub(super) fn live_accuracy(
    config: &Config,
    lake: &Lake,
    model: &str,
    day: NaiveDate,
) -> Option<LiveSummary> {
    live_summary(
        lake,
        model,
        &config.data.series_keys,
        config.forecast.horizon_days,
        day,
    )
    .unwrap_or_else(|e| {
        tracing::warn!("the report has no live accuracy: reading the scores table failed: {e}");
        None
    })
}

/// Stamps the total time and the cost estimate on the report.
fn finish(report: &mut RunReport, config: &Config, lake: &Lake, registry: &Registry, started: Instant) {
    report.seconds.total = started.elapsed().as_secs_f64();
    let requests = [("lake", lake.store()), ("registry", registry.store())]
        .into_iter()
        .map(|(name, store)| (name.to_string(), store.requests()))
        .collect();
    report.cost = Some(CostEstimate::new(&config.cost, report.seconds.total, requests));
}
