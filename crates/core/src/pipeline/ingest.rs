//! `salescast ingest`: flat files into the lake, all checked before any write.

use std::path::PathBuf;

use anyhow::Context as _;
use polars::prelude::*;
use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::ingest::{clean_attributes, clean_sales, read_input, split_days};
use crate::lake::{DayFile, Lake, WriteCounts, WriteOutcome};
use crate::validate::{self, DataError, Source};

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub lake: String,
    pub rows: usize,
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
    pub days: WriteCounts,
    pub attributes: Vec<(String, WriteOutcome)>,
}

/// Reads, checks and writes: sales `inputs` into daily partitions and
/// `attributes` (table, file) into attribute tables. Nothing is written unless
/// every file passes.
pub fn ingest_files(
    config: &Config,
    lake: &Lake,
    inputs: &[PathBuf],
    attributes: &[(String, PathBuf)],
    replace: bool,
) -> anyhow::Result<IngestReport> {
    if inputs.is_empty() && attributes.is_empty() {
        return Err(ConfigError::Invalid {
            key: "ingest".into(),
            problem: "give at least one --input FILE or --attributes TABLE=FILE".into(),
        }
        .into());
    }
    let sales = read_sales(config, inputs)?;
    let mut days = Vec::new();
    if let Some(df) = &sales {
        for (day, mut frame) in split_days(df, &config.data.date_column)? {
            days.push(DayFile::encode(day, &mut frame)?);
        }
    }
    let mut tables = Vec::new();
    for (name, path) in attributes {
        let table = config
            .data
            .attributes
            .iter()
            .find(|t| &t.table == name)
            .ok_or_else(|| ConfigError::Invalid {
                key: "data.attributes".into(),
                problem: format!("no attribute table named {name:?} is configured"),
            })?;
        let (df, source) = read_input(path)?;
        tables.push((name.clone(), clean_attributes(df, table, &config.data, &source)?));
    }

    let counts = lake
        .write_days(&days, replace)
        .context("writing sales partitions")?;
    let mut outcomes = Vec::new();
    for (name, mut df) in tables {
        let outcome = lake
            .write_attributes(&name, &mut df)
            .with_context(|| format!("writing attribute table {name}"))?;
        outcomes.push((name, outcome));
    }
    tracing::info!(
        written = counts.written,
        unchanged = counts.unchanged,
        replaced = counts.replaced,
        "ingested sales days"
    );
    Ok(IngestReport {
        lake: lake.store().uri_of(""),
        rows: sales.as_ref().map_or(0, DataFrame::height),
        first_day: days.first().map(|d| d.day),
        last_day: days.last().map(|d| d.day),
        days: counts,
        attributes: outcomes,
    })
}

/// Reads and cleans every sales file, then checks them together (one day and
/// series must not appear in two files).
fn read_sales(config: &Config, inputs: &[PathBuf]) -> anyhow::Result<Option<DataFrame>> {
    let mut all: Option<DataFrame> = None;
    for path in inputs {
        let (df, source) = read_input(path)?;
        let clean = clean_sales(df, &config.data, &source)?;
        all = Some(match all {
            None => clean,
            Some(mut acc) => {
                if acc.schema() != clean.schema() {
                    return Err(DataError::file(
                        source.name,
                        "its columns differ from the first input file's",
                    )
                    .into());
                }
                acc.vstack_mut_owned(clean)?;
                acc
            }
        });
    }
    if inputs.len() > 1
        && let Some(df) = &all
    {
        let day_and_series = config.data.day_and_series();
        let names: Vec<_> = inputs.iter().map(|p| p.display().to_string()).collect();
        validate::check_unique(
            df,
            &day_and_series,
            "day and series",
            &Source::new(names.join(" + "), false),
        )?;
        let sorted = df.sort(day_and_series, SortMultipleOptions::default())?;
        return Ok(Some(sorted));
    }
    Ok(all)
}
