//! `salescast demo`: the daily job on a generated sample, with no cloud account
//! and no data of your own. Writes the sample as CSV files, ingests them into
//! a local lake and checks the newest training window.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::{CheckReport, IngestReport, Report, check_window, ingest_files, open_lake};
use crate::cli::DemoArgs;
use crate::config::{self, Config};
use crate::sample::{SampleSpec, generate, write_csv};

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub folder: String,
    pub ingest: IngestReport,
    pub check: CheckReport,
}

impl Report for DemoReport {
    fn human(&self) -> String {
        format!(
            "sample data written to {}\n\n== ingest\n{}\n\n== check\n{}",
            self.folder,
            self.ingest.human(),
            self.check.human()
        )
    }
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

pub fn run(args: &DemoArgs) -> anyhow::Result<DemoReport> {
    let config = demo_config(&args.dir)?;
    let spec = SampleSpec::default();
    let input = args.dir.join("input");
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

    let lake = open_lake(&config)?;
    let ingest = ingest_files(
        &config,
        &lake,
        &[sales_csv],
        &[("stores".into(), stores_csv)],
        false,
    )?;
    let check = check_window(&config, &lake, spec.last_day())?;
    Ok(DemoReport {
        folder: args.dir.display().to_string(),
        ingest,
        check,
    })
}
