//! `salescast demo`: the daily job on a generated sample, with no cloud account
//! and no data of your own. Writes the sample as CSV files, ingests them into
//! a local lake, runs `retrain` for several consecutive days against a local
//! registry (the first day with only the simple models, as a team's first
//! model would be), rolls back once, forecasts the next days with the
//! champion, and shows the decision history.

use std::path::Path;

use anyhow::Context as _;
use chrono::NaiveDate;
use serde::Serialize;

use super::models::History;
use super::rollback::RollbackReport;
use super::{IngestReport, RetrainOptions, ingest_files, open_lake, open_registry, retrain, rollback};
use crate::config::{self, Config};
use crate::models::Family;
use crate::registry::DecisionKind;
use crate::sample::{SampleSpec, generate, write_csv};
use crate::storage::Handle;

/// How many consecutive days the demo retrains.
const DEMO_DAYS: u64 = 5;

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub folder: String,
    pub ingest: IngestReport,
    pub runs: Vec<DemoRun>,
    pub rollback: Option<RollbackReport>,
    /// The champion's forecasts after the last day.
    pub forecast: super::PredictReport,
    pub history: History,
}

#[derive(Debug, Serialize)]
pub struct DemoRun {
    pub date: NaiveDate,
    pub decision: DecisionKind,
    pub reason: String,
    pub challenger: String,
    pub family: Family,
    pub seconds: f64,
}

/// The configuration of the demo: the embedded default mapping, with the lake
/// and registry inside `dir`.
pub fn demo_config(dir: &Path) -> anyhow::Result<Config> {
    let config = Config {
        lake: dir.join("lake").display().to_string(),
        registry: dir.join("registry").display().to_string(),
        ..Config::default()
    };
    config::check(&config)?;
    Ok(config)
}

pub fn run(dir: &Path, handle: &Handle) -> anyhow::Result<DemoReport> {
    if let Some(file) = super::file_in_the_way(dir) {
        return Err(crate::config::ConfigError::Argument {
            flag: "--dir".into(),
            problem: format!(
                "{} cannot be a folder: {} is a file",
                dir.display(),
                file.display()
            ),
        }
        .into());
    }
    let config = demo_config(dir)?;
    let spec = SampleSpec::default();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).with_context(|| format!("creating {}", input.display()))?;
    let mut sample = generate(&spec).context("generating the sample")?;
    let sales_csv = input.join("sales.csv");
    let stores_csv = input.join("stores.csv");
    write_csv(&mut sample.sales, &sales_csv).with_context(|| format!("writing {}", sales_csv.display()))?;
    write_csv(&mut sample.stores, &stores_csv)
        .with_context(|| format!("writing {}", stores_csv.display()))?;
    tracing::info!(
        "sample of {} rows written to {}",
        sample.sales.height(),
        input.display()
    );

    let lake = open_lake(&config, handle)?;
    let registry = open_registry(&config, handle)?;
    let ingest = ingest_files(
        &config,
        &lake,
        &[sales_csv],
        &[("stores".into(), stores_csv)],
        false,
    )?;

    // The first day trains only the simple models, as a team's first model would.
    let mut first_model = config.clone();
    first_model.training.candidates = vec![Family::SeasonalNaive, Family::ElasticNet];
    let mut runs = Vec::new();
    for offset in (0..DEMO_DAYS).rev() {
        let date = spec.last_day() - chrono::Days::new(offset);
        let day_config = if runs.is_empty() { &first_model } else { &config };
        let options = RetrainOptions {
            run_date: date,
            dry_run: false,
            full_search: false,
        };
        let report = retrain(day_config, &lake, &registry, &options)
            .with_context(|| format!("retraining for {date}"))?;
        runs.push(DemoRun {
            date,
            decision: report.decision,
            reason: report.reason,
            challenger: report.challenger.version,
            family: report.challenger.family,
            seconds: report.seconds.total,
        });
    }
    let rollback = match registry.champion()? {
        Some((champion, _)) if champion.previous.is_some() => Some(rollback(
            &registry,
            None,
            "demo: a store manager reports odd forecasts, so the previous champion goes back while it is checked",
            &super::actor(),
        )?),
        _ => None,
    };
    let forecast = super::predict(&config, &lake, &registry, spec.last_day())
        .with_context(|| format!("forecasting the days after {}", spec.last_day()))?;
    Ok(DemoReport {
        folder: dir.display().to_string(),
        ingest,
        runs,
        rollback,
        forecast,
        history: super::models::history(&registry)?,
    })
}
