//! `salescast ingest`: files into the lake, all checked before any write:
//! sales into daily partitions (events summed per day first when the mapping
//! says `aggregate = "sum"`), plans into daily plan partitions, attribute
//! tables and calendar tables. Inputs are local files or S3 objects and
//! prefixes (see `input`).

use std::path::PathBuf;

use anyhow::Context as _;
use polars::prelude::*;
use serde::Serialize;

use crate::calendar::{clean_calendar, write_calendar};
use crate::config::{Config, ConfigError};
use crate::events::sum_events;
use crate::ingest::{clean_attributes, clean_sales, read_input, split_days, type_sales};
use crate::input;
use crate::lake::{DayFile, Lake, LakeError, SALES_PREFIX, WriteCounts, WriteOutcome};
use crate::mapping::{Aggregate, DataMapping};
use crate::plans::{PLANS_PREFIX, clean_plan};
use crate::progress::Phase;
use crate::validate::{self, DataError, Source};

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub lake: String,
    pub rows: usize,
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
    pub days: WriteCounts,
    pub attributes: Vec<(String, WriteOutcome)>,
    /// What `--calendar` wrote, by calendar name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<(String, WriteOutcome)>,
    /// The sales files read (each object under an S3 prefix counts).
    pub files: usize,
    /// The input rows before they were summed per day and series
    /// (`data.aggregate = "sum"`); `None` otherwise.
    pub events: Option<usize>,
    /// What `--plan` wrote; `None` when no plan was given.
    pub plans: Option<PlanReport>,
}

/// The plan days an ingest wrote.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub files: usize,
    pub rows: usize,
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
    pub days: WriteCounts,
}

/// What to ingest: sales and plan locations (paths, `file://` or `s3://`
/// URIs; a URI ending in '/' is every object under it), attribute tables
/// (table, local file), calendar tables (name, local file), and whether days
/// the lake holds with other rows are replaced.
#[derive(Debug, Clone, Default)]
pub struct IngestRequest {
    pub inputs: Vec<String>,
    pub plans: Vec<String>,
    pub attributes: Vec<(String, PathBuf)>,
    pub calendars: Vec<(String, PathBuf)>,
    pub replace: bool,
}

/// [`ingest`] of local sales files and attribute tables.
pub fn ingest_files(
    config: &Config,
    lake: &Lake,
    inputs: &[PathBuf],
    attributes: &[(String, PathBuf)],
    replace: bool,
) -> anyhow::Result<IngestReport> {
    let request = IngestRequest {
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        plans: vec![],
        attributes: attributes.to_vec(),
        calendars: vec![],
        replace,
    };
    ingest(config, lake, &request)
}

/// Reads, checks and writes: sales into daily partitions, plans into daily
/// plan partitions, attribute and calendar tables. Nothing is written unless every file
/// passes. S3 inputs are read with the lake's runtime and `config.s3`.
pub fn ingest(config: &Config, lake: &Lake, request: &IngestRequest) -> anyhow::Result<IngestReport> {
    if request.inputs.is_empty()
        && request.plans.is_empty()
        && request.attributes.is_empty()
        && request.calendars.is_empty()
    {
        return Err(ConfigError::Invalid {
            key: "ingest".into(),
            problem:
                "give at least one --input FILE, --plan FILE, --attributes TABLE=FILE or --calendar NAME=FILE"
                    .into(),
        }
        .into());
    }
    // A location ingest cannot read (gs://, s3:// without a bucket) is the
    // command line's fault, found before any file is read.
    for (flag, locations) in [("--input", &request.inputs), ("--plan", &request.plans)] {
        for location in locations {
            input::check_location(location).map_err(|problem| ConfigError::Argument {
                flag: flag.into(),
                problem,
            })?;
        }
    }
    // Every file is read and checked on its own first, and every refused
    // one is named in one error; then the files are checked together.
    let mut files = Files::default();
    let sales_files = files.read(config, lake, &request.inputs)?;
    let file_count = sales_files.len();
    let events = (config.data.aggregate == Aggregate::Sum && file_count > 0)
        .then(|| sales_files.iter().flatten().map(|(df, _)| df.height()).sum());
    let latest = crate::ingest::latest_sales_day(chrono::Utc::now());
    let sales_files = if config.data.aggregate == Aggregate::Sum {
        files.check(sales_files, |df, source| {
            type_sales(df, &config.data, latest, source)
        })
    } else {
        files.check(sales_files, |df, source| {
            clean_sales(df, &config.data, latest, source)
        })
    };
    let plan_files = files.read(config, lake, &request.plans)?;
    let plan_count = plan_files.len();
    let plan_files = files.check(plan_files, |df, source| clean_plan(df, &config.data, source));
    let mut tables = Vec::new();
    for (name, path) in &request.attributes {
        let table = config
            .data
            .attributes
            .iter()
            .find(|t| &t.table == name)
            .ok_or_else(|| ConfigError::Invalid {
                key: "data.attributes".into(),
                problem: format!("no attribute table named {name:?} is configured"),
            })?;
        let cleaned = files.read_table(path, config, |df, source| {
            clean_attributes(df, table, &config.data, source)
        });
        tables.extend(cleaned.map(|df| (name.clone(), df)));
    }
    let mut calendars = Vec::new();
    for (name, path) in &request.calendars {
        let calendar = config
            .data
            .calendars
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| ConfigError::Invalid {
                key: "data.calendars".into(),
                problem: format!("no calendar named {name:?} is configured"),
            })?;
        let cleaned = files.read_table(path, config, |df, source| {
            clean_calendar(df, calendar, &config.data, source)
        });
        calendars.extend(cleaned.map(|df| (name.clone(), df)));
    }
    files.refuse()?;
    let sales = read_sales(&config.data, sales_files)?;
    if let Some(df) = &sales {
        let source = Source::new(request.inputs.join(" + "), false);
        crate::series_names::refuse_shared_names(df, &config.data.series_keys, &source)?;
    }
    let days = encode_days(SALES_PREFIX, sales.as_ref(), &config.data)?;
    let plans = combine(plan_files, &config.data)?;
    let plan_days = encode_days(PLANS_PREFIX, plans.as_ref(), &config.data)?;

    let counts = lake
        .write_days(&days, request.replace)
        .context("writing sales partitions")?;
    let plan_counts = lake
        .write_days_in(PLANS_PREFIX, &plan_days, request.replace)
        .context("writing plan partitions")?;
    let mut outcomes = Vec::new();
    for (name, mut df) in tables {
        let outcome = lake
            .write_attributes(&name, &mut df)
            .with_context(|| format!("writing attribute table {name}"))?;
        outcomes.push((name, outcome));
    }
    let mut calendar_outcomes = Vec::new();
    for (name, mut df) in calendars {
        let outcome =
            write_calendar(lake, &name, &mut df).with_context(|| format!("writing calendar table {name}"))?;
        calendar_outcomes.push((name, outcome));
    }
    tracing::info!(
        written = counts.written,
        unchanged = counts.unchanged,
        replaced = counts.replaced,
        "ingested sales days"
    );
    let plans = (!request.plans.is_empty()).then(|| {
        tracing::info!(
            written = plan_counts.written,
            unchanged = plan_counts.unchanged,
            replaced = plan_counts.replaced,
            "ingested plan days"
        );
        PlanReport {
            files: plan_count,
            rows: plans.as_ref().map_or(0, DataFrame::height),
            first_day: plan_days.first().map(|d| d.day),
            last_day: plan_days.last().map(|d| d.day),
            days: plan_counts,
        }
    });
    Ok(IngestReport {
        lake: lake.store().uri_of(""),
        rows: sales.as_ref().map_or(0, DataFrame::height),
        first_day: days.first().map(|d| d.day),
        last_day: days.last().map(|d| d.day),
        days: counts,
        attributes: outcomes,
        calendars: calendar_outcomes,
        files: file_count,
        events,
        plans,
    })
}

/// One partition file per day of a cleaned, day-sorted frame, under `root`.
fn encode_days(root: &str, frame: Option<&DataFrame>, mapping: &DataMapping) -> anyhow::Result<Vec<DayFile>> {
    let mut days = Vec::new();
    if let Some(df) = frame {
        for (day, mut frame) in split_days(df, &mapping.date_column)? {
            days.push(DayFile::encode_in(root, day, &mut frame)?);
        }
    }
    Ok(days)
}

/// The input files of one ingest as they are read and checked one by one:
/// how many were tried, and the first problem of each refused one.
#[derive(Default)]
struct Files {
    tried: usize,
    refused: Vec<DataError>,
}

impl Files {
    /// Every file the locations name, read, or why not (an empty prefix is
    /// one refused "file"); a storage failure stops.
    fn read(
        &mut self,
        config: &Config,
        lake: &Lake,
        locations: &[String],
    ) -> anyhow::Result<Vec<input::FileRead>> {
        let mut read = Vec::new();
        if locations.is_empty() {
            return Ok(read);
        }
        let progress = Phase::start("reading input files", Some(locations.len() as u64));
        for location in locations {
            let max_line = config.validation.max_line_bytes;
            match input::read_all(location, &config.s3, max_line, lake.store().handle()) {
                Ok(files) => read.extend(files),
                Err(LakeError::Data(e)) => read.push(Err(e)),
                Err(e) => return Err(e.into()),
            }
            progress.advance(1, location);
        }
        progress.finish();
        self.tried += read.len();
        Ok(read)
    }

    /// One table file (attributes, a calendar) read and cleaned, or, when
    /// refused, its problem kept with the others.
    fn read_table(
        &mut self,
        path: &std::path::Path,
        config: &Config,
        clean: impl Fn(DataFrame, &Source) -> Result<DataFrame, DataError>,
    ) -> Option<DataFrame> {
        self.tried += 1;
        let read = read_input(path, config.validation.max_line_bytes);
        let cleaned = self.check(vec![read], clean);
        cleaned.into_iter().next().map(|(df, _)| df)
    }

    /// `clean` of every file that was read; the refused ones are kept.
    fn check(
        &mut self,
        files: Vec<input::FileRead>,
        clean: impl Fn(DataFrame, &Source) -> Result<DataFrame, DataError>,
    ) -> Vec<(DataFrame, Source)> {
        let mut kept = Vec::new();
        for file in files {
            match file.and_then(|(df, source)| Ok((clean(df, &source)?, source))) {
                Ok(file) => kept.push(file),
                Err(e) => self.refused.push(e),
            }
        }
        kept
    }

    /// One error naming every refused file, if any.
    fn refuse(self) -> Result<(), DataError> {
        let tried = self.tried;
        DataError::all(self.refused, &format!("of {tried} input files"))
    }
}

/// Stacks the cleaned sales files and checks them together (one day and
/// series must not appear in two files); events (`aggregate = "sum"`,
/// typed file by file) are summed over all files together.
fn read_sales(mapping: &DataMapping, files: Vec<(DataFrame, Source)>) -> anyhow::Result<Option<DataFrame>> {
    if files.is_empty() {
        return Ok(None);
    }
    if mapping.aggregate == Aggregate::Sum {
        return Ok(Some(sum_events(files, mapping)?));
    }
    combine(files, mapping)
}

/// Stacks cleaned files (the same columns), refuses a day and series given
/// by two of them, and sorts by day and series.
fn combine(files: Vec<(DataFrame, Source)>, mapping: &DataMapping) -> anyhow::Result<Option<DataFrame>> {
    let several = files.len() > 1;
    let mut names = Vec::with_capacity(files.len());
    let mut all: Option<DataFrame> = None;
    for (clean, source) in files {
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
        names.push(source.name);
    }
    if several && let Some(df) = &all {
        let day_and_series = mapping.day_and_series();
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
