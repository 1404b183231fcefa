//! `salescast check`: read and validate the training window ending on a day,
//! and build its features, without training anything.

use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, UniqueKeepStrategy};
use serde::Serialize;

use crate::calendar::read_calendar;
use crate::config::{Config, ConfigError};
use crate::features::{FeatureLayout, build_features};
use crate::lake::{Lake, LakeError, SalesWindow};
use crate::mapping::DataMapping;
use crate::models::Artifact;
use crate::shard::Shard;
use crate::tables::Tables;
use crate::thin_days::ThinDays;
use crate::window::Window;

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
    /// Days before the newest with far fewer series than the window's
    /// median: reported, not refused (`validation.history = "report"`).
    pub thin_days: ThinDays,
}

/// Every attribute and calendar table the mapping names, read and typed.
pub fn read_tables(mapping: &DataMapping, lake: &Lake) -> anyhow::Result<Tables> {
    let mut tables = Tables::default();
    for table in &mapping.attributes {
        let (df, digest) = lake
            .read_attributes(table, mapping)
            .with_context(|| format!("reading attribute table {}", table.table))?;
        tables.attributes.push((table.clone(), df));
        tables.digests.push(digest);
    }
    for calendar in &mapping.calendars {
        let (df, digest) = read_calendar(lake, calendar, mapping)
            .with_context(|| format!("reading calendar table {}", calendar.name))?;
        tables.calendars.push((calendar.clone(), df));
        tables.digests.push(digest);
    }
    Ok(tables)
}

/// A validated window, the attribute and calendar tables and the features, with the
/// seconds reading and building took: what `check`, `retrain` and `backtest`
/// start from.
pub struct WindowFeatures {
    pub window: Window,
    pub sales: SalesWindow,
    pub attributes: Tables,
    pub features: DataFrame,
    /// The data's fingerprint: the sales files and the tables read
    /// ([`SalesWindow::fingerprint`]).
    pub fingerprint: String,
    pub read_seconds: f64,
    pub feature_seconds: f64,
}

/// Reads and validates the sales of the window's days (the partition of its
/// last day must exist) and the attribute and calendar tables, and builds features. `what`
/// names the window in an error.
pub fn read_features(
    config: &Config,
    lake: &Lake,
    window: Window,
    what: &str,
) -> anyhow::Result<WindowFeatures> {
    read_features_of(config, lake, window, what, None)
}

/// [`read_features`] keeping only the series of `shard` (when given): each
/// day's file is validated whole before the other series are dropped, so
/// validation and thin days are the window's, the rows and features the
/// shard's (`Lake::read_days_of_shard`).
pub fn read_features_of(
    config: &Config,
    lake: &Lake,
    window: Window,
    what: &str,
    shard: Option<Shard>,
) -> anyhow::Result<WindowFeatures> {
    let started = Instant::now();
    let sales =
        read_sales(lake, &config.data, config, &window, shard).with_context(|| format!("reading {what}"))?;
    let attributes = read_tables(&config.data, lake)?;
    let fingerprint = sales.fingerprint(&attributes.digests);
    let read_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = sales.frame.height(),
        files = sales.files.len(),
        "read the window in {read_seconds:.2} s"
    );
    let started = Instant::now();
    // A diagnostic (timed with the features): it never stops a run. A shard sees its share of the series.
    let of = if shard.is_some() {
        "this shard's share of "
    } else {
        ""
    };
    match crate::tables::unmatched_attributes(&sales.frame, &attributes) {
        Ok(unmatched) => {
            for (table, count, first) in unmatched {
                tracing::warn!(
                    "attribute table {table:?} has no row for {count} series key(s) of {of}{what} (their \
                     attributes are missing; the first: {first}): ingest the table again with them"
                );
            }
        }
        Err(e) => tracing::warn!("cannot check the attribute tables against {what}: {e}"),
    }
    let features = crate::progress::phase("building features", || {
        build_features(&sales.frame, &attributes, &config.data, &config.features)
    })
    .context("building features")?;
    Ok(WindowFeatures {
        window,
        sales,
        attributes,
        features,
        fingerprint,
        read_seconds,
        feature_seconds: started.elapsed().as_secs_f64(),
    })
}

/// A champion's own feature frame, for a champion built with other data or
/// feature settings than `config`: from the window's `sales` and tables
/// when its mapping reads the same columns; otherwise (say a covariate the
/// configuration no longer reads) from the window read again with its
/// mapping, and its tables, as `predict` reads them. `shard` keeps the
/// shard's series, as the run's own read did.
pub fn champion_features(
    (version, artifact): (&str, &Artifact),
    config: &Config,
    lake: &Lake,
    (window, shard): (&Window, Option<Shard>),
    (sales, tables): (&DataFrame, &Tables),
) -> anyhow::Result<DataFrame> {
    let mapping = &artifact.mapping;
    let (own_sales, own_tables);
    let (sales, tables) = if mapping.same_for_models(&config.data) {
        (sales, tables)
    } else {
        own_sales = read_sales(lake, mapping, config, window, shard)
            .with_context(|| champion_read(version, mapping, &config.data))?
            .frame;
        // The champion is scored by the run's row numbers: the same rows, in the same order.
        let rows = config.data.day_and_series();
        let same = own_sales.height() == sales.height()
            && own_sales
                .select(rows.iter().map(String::as_str))?
                .equals_missing(&sales.select(rows.iter().map(String::as_str))?);
        if !same {
            anyhow::bail!(
                "the window read again with the champion's data mapping holds other rows than this run's \
                 ({} against {}): was the lake changed during the run? Run it again",
                own_sales.height(),
                sales.height()
            );
        }
        own_tables = read_tables(mapping, lake)?;
        (&own_sales, &own_tables)
    };
    build_features(sales, tables, mapping, &artifact.features).context("building the champion's features")
}

/// What reading the window with a champion's `mapping` is, for an error's
/// context. When the champion reads columns `config` no longer reads (a
/// covariate dropped since it was trained), it says so and what to do if
/// the data no longer holds them: such a champion can neither be scored nor
/// forecast, and only a version without them or a new model can follow it.
pub fn champion_read(version: &str, mapping: &DataMapping, config: &DataMapping) -> String {
    let short = crate::digest::short(version);
    // The open flag is one of the covariates (the mapping's check).
    let gone: Vec<&str> = mapping
        .covariates
        .iter()
        .filter(|c| !config.covariates.contains(c))
        .map(String::as_str)
        .collect();
    if gone.is_empty() {
        return format!("reading the window with the champion {short}'s data mapping");
    }
    let (columns, it) = (gone.join(", "), if gone.len() == 1 { "it" } else { "them" });
    format!(
        "reading the window with the champion {short}'s data mapping, which reads {columns} that this \
         configuration no longer reads: if the window's files do not hold {it}, the champion can be neither \
         scored nor forecast; roll back to a version trained without {it} (salescast rollback --to VERSION \
         --reason TEXT) or start a new model (training.model_name)"
    )
}

/// The window's sales, read and validated with `mapping` (only the series
/// of `shard` when given, each day's file validated whole).
pub fn read_sales(
    lake: &Lake,
    mapping: &DataMapping,
    config: &Config,
    window: &Window,
    shard: Option<Shard>,
) -> Result<SalesWindow, LakeError> {
    match shard {
        Some(shard) => lake.read_days_of_shard(mapping, &config.validation, window, shard),
        None => lake.read_days(mapping, &config.validation, window),
    }
}

/// The window of a run whose data day is `last_day`, from the settings.
pub fn run_window(config: &Config, last_day: NaiveDate) -> anyhow::Result<Window> {
    Window::ending(&config.window, last_day).map_err(|e| {
        anyhow::Error::new(ConfigError::Invalid {
            key: "window.history_days".into(),
            problem: e.to_string(),
        })
    })
}

/// The training window ending on `last_day` (`window.history_days` long) and its features.
pub fn read_training_window(
    config: &Config,
    lake: &Lake,
    last_day: NaiveDate,
) -> anyhow::Result<WindowFeatures> {
    read_features(
        config,
        lake,
        run_window(config, last_day)?,
        &format!("the training window ending {last_day}"),
    )
}

/// Reads the window ending on `last_day`, validates it, and builds features.
pub fn check_window(config: &Config, lake: &Lake, last_day: NaiveDate) -> anyhow::Result<CheckReport> {
    let WindowFeatures {
        sales: window,
        features,
        fingerprint,
        read_seconds,
        feature_seconds,
        ..
    } = read_training_window(config, lake, last_day)?;

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
        fingerprint,
        rows: window.frame.height(),
        series,
        features: FeatureLayout::new(&config.data, &config.features),
        rows_with_full_history: complete,
        read_seconds,
        feature_seconds,
        thin_days: window.thin_days,
    })
}
