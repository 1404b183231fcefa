//! `salescast check`: read and validate the training window ending on a day,
//! and build its features, without training anything.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, UniqueKeepStrategy};
use serde::Serialize;

use super::Report;
use crate::config::{AttributeTable, Config};
use crate::features::{FeatureLayout, build_features};
use crate::lake::Lake;

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub lake: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub partition_files: usize,
    pub fingerprint: String,
    pub rows: usize,
    pub series: usize,
    pub features: FeatureLayout,
    /// Rows whose every lag and rolling mean has a value.
    pub rows_with_full_history: usize,
    pub read_seconds: f64,
    pub feature_seconds: f64,
}

impl Report for CheckReport {
    fn human(&self) -> String {
        format!(
            "lake {}\nwindow {} .. {}: {} partition files, {} rows, {} series (fingerprint {})\n\
             features: {} numeric, {} categorical; {} rows with full history\n\
             read and validated in {:.2} s, features built in {:.2} s",
            self.lake,
            self.first_day,
            self.last_day,
            self.partition_files,
            self.rows,
            self.series,
            &self.fingerprint[..12],
            self.features.numeric.len(),
            self.features.categorical.len(),
            self.rows_with_full_history,
            self.read_seconds,
            self.feature_seconds,
        )
    }
}

/// Every attribute table the mapping names, read and typed.
pub fn read_attributes(config: &Config, lake: &Lake) -> anyhow::Result<Vec<(AttributeTable, DataFrame)>> {
    let mut attributes = Vec::new();
    for table in &config.data.attributes {
        let df = lake
            .read_attributes(table, &config.data)
            .with_context(|| format!("reading attribute table {}", table.table))?;
        attributes.push((table.clone(), df));
    }
    Ok(attributes)
}

/// Reads the window ending on `last_day`, validates it, and builds features.
pub fn check_window(config: &Config, lake: &Lake, last_day: NaiveDate) -> anyhow::Result<CheckReport> {
    let started = Instant::now();
    let window = lake
        .read_window(config, last_day)
        .with_context(|| format!("reading the training window ending {last_day}"))?;
    let attributes = read_attributes(config, lake)?;
    let read_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = window.frame.height(),
        files = window.files.len(),
        "read the window in {read_seconds:.2} s"
    );

    let started = Instant::now();
    let features = build_features(&window.frame, &attributes, &config.data, &config.features)
        .context("building features")?;
    let feature_seconds = started.elapsed().as_secs_f64();

    let history: Vec<String> = config
        .features
        .lags
        .iter()
        .map(|&d| crate::features::lag_name(d))
        .chain(
            config
                .features
                .rolling_means
                .iter()
                .map(|&d| crate::features::rolling_mean_name(d)),
        )
        .collect();
    let complete = features
        .select(history.iter().map(String::as_str))?
        .drop_nulls::<String>(None)?
        .height();
    let series = window
        .frame
        .select(config.data.series_keys.iter().map(String::as_str))?
        .unique_stable(None, UniqueKeepStrategy::First, None)?
        .height();
    Ok(CheckReport {
        lake: lake.store().uri_of(""),
        first_day: window.first_day,
        last_day: window.last_day,
        partition_files: window.files.len(),
        fingerprint: window.fingerprint(),
        rows: window.frame.height(),
        series,
        features: FeatureLayout::new(&config.data, &config.features),
        rows_with_full_history: complete,
        read_seconds,
        feature_seconds,
    })
}
