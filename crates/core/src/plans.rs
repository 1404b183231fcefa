//! Plans: covariates known in advance for future days (promotions, opening
//! days, holidays), given by the user with `salescast ingest --plan`, and
//! read back for `predict`.
//!
//! In the lake as `plans/dt=YYYY-MM-DD/part-<hash16>.parquet`, one file per
//! day like the sales partitions (same idempotence and `--replace`): the
//! date, the series keys and every mapping covariate, typed as the sales
//! partitions type them, and no target column.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::ingest;
use crate::lake::{self, Lake, LakeError};
use crate::mapping::DataMapping;
use crate::storage::ObjectMeta;
use crate::thin_days::{self, ThinDays};
use crate::validate::{self, DataError, Source, ValidationSettings};

/// Where plan partitions live in the lake.
pub const PLANS_PREFIX: &str = "plans/dt=";

/// The columns of a plan, in order: the date, the series keys, the covariates.
pub fn plan_columns(mapping: &DataMapping) -> Vec<String> {
    let mut columns = mapping.day_and_series();
    columns.extend(mapping.covariates.iter().cloned());
    columns
}

/// Types and checks a plan file as sales files are checked, with no target:
/// a target column is refused (a plan is not sales). Keeps the plan's
/// columns only ([`plan_columns`]), sorted by day and series; two rows of one
/// day and series are refused, naming both.
pub fn clean_plan(df: DataFrame, mapping: &DataMapping, source: &Source) -> Result<DataFrame, DataError> {
    if df.column(&mapping.target).is_ok() {
        return Err(DataError::column(
            source.name.clone(),
            &mapping.target,
            "a plan must not hold the target column: it gives the covariates of future days, \
             whose sales are not known yet (remove the column, or ingest the file with --input)",
        ));
    }
    let columns = plan_columns(mapping);
    validate::require_columns(&df, &columns, source)?;
    let df = df
        .select(columns.iter().map(String::as_str))
        .map_err(|e| source.error(e.to_string()))?;
    let df = ingest::type_columns(df, mapping, source)?;
    ingest::unique_and_sorted(df, mapping, source)
}

/// The plans of a range of days, as [`read_plans`] returns them.
#[derive(Debug, Clone)]
pub struct PlanWindow {
    /// The date (Date), the series keys (String) and every covariate (as
    /// [`Lake::read_days`] types them), one row per day and series, sorted
    /// by day and series. No target column: see [`PlanWindow::with_target`].
    pub frame: DataFrame,
    /// The days that have a plan partition (others are simply absent).
    pub days: BTreeSet<NaiveDate>,
    /// The partition files read, with their versions.
    pub files: Vec<ObjectMeta>,
}

impl PlanWindow {
    /// The frame in the columns and order of a sales window (date, series
    /// keys, target, covariates) with a null Float64 target, ready to stack
    /// under the sales rows.
    pub fn with_target(&self, mapping: &DataMapping) -> PolarsResult<DataFrame> {
        with_target(&self.frame, mapping)
    }
}

/// A plan frame (as [`PlanWindow::frame`]) in the columns and order of a
/// sales window, with a null Float64 target.
pub fn with_target(plan: &DataFrame, mapping: &DataMapping) -> PolarsResult<DataFrame> {
    let mut frame = plan.clone();
    let target = Column::full_null(mapping.target.as_str().into(), frame.height(), &DataType::Float64);
    frame.with_column(target)?;
    let mut order = mapping.day_and_series();
    order.push(mapping.target.clone());
    order.extend(mapping.covariates.iter().cloned());
    frame.select(order)
}

/// Reads the plan partitions of `first_day ..= last_day`. Each file is read
/// back with the checks of ingest (columns, types, the day of its folder, no
/// duplicate day and series: errors name the file and row), and the window
/// with the checks of a sales window: no day and series twice, and no day
/// with far fewer series than the window's others
/// (`validation.min_series_ratio`; every such day named in one error, since
/// each plan day is a day forecast, where a sales window refuses only its
/// newest). Days without a plan are not an error.
pub fn read_plans(
    lake: &Lake,
    mapping: &DataMapping,
    validation: &ValidationSettings,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<PlanWindow, LakeError> {
    let partitions = if first_day <= last_day {
        lake.partitions_in(PLANS_PREFIX)?
    } else {
        Default::default()
    };
    let in_range = || partitions.range(first_day..=last_day);
    lake.one_file_per_day(PLANS_PREFIX, in_range())?;
    let days: BTreeSet<NaiveDate> = in_range().map(|(day, _)| *day).collect();
    let files: Vec<ObjectMeta> = in_range().flat_map(|(_, files)| files.iter().cloned()).collect();
    let frames: Vec<DataFrame> = lake::parallel_map(&files, lake::IO_CONCURRENCY, |file| {
        read_plan_file(lake, file, mapping)
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    let window_name = format!(
        "{} ({first_day} .. {last_day})",
        lake.store().uri_of(PLANS_PREFIX.trim_end_matches("/dt="))
    );
    let polars = |source: PolarsError| LakeError::Polars {
        key: window_name.clone(),
        source,
    };
    let frame = if frames.is_empty() {
        empty_plan(mapping)
    } else {
        lake::concat_frames(frames).map_err(polars)?
    };
    let source = Source::new(window_name.clone(), false);
    let frame = ingest::unique_and_sorted(frame, mapping, &source)?;
    // Every plan day is a day forecast from, none is history: a thin one is
    // refused as a run's newest sales day is, all of them named at once.
    let counts = thin_days::series_per_day(&frame, &mapping.date_column, &source)?;
    let thin = ThinDays::find(&counts, validation.min_series_ratio);
    if !thin.is_empty() {
        return Err(thin_days::refuse_all(
            &thin,
            &window_name,
            "every plan day is a forecast day: a thin one is refused whatever validation.history says",
        )
        .into());
    }
    Ok(PlanWindow { frame, days, files })
}

/// One plan partition file, conformed to the plan's typed columns.
fn read_plan_file(lake: &Lake, file: &ObjectMeta, mapping: &DataMapping) -> Result<DataFrame, LakeError> {
    let source = Source::new(lake.store().uri_of(&file.key), false);
    let bytes = lake.get_day_file(&file.key)?;
    let df = lake::decode_parquet(bytes).map_err(|e| source.error(format!("not readable Parquet: {e}")))?;
    validate::require_rows(&df, &source).map_err(|mut e| {
        e.problem = "empty partition: the file has no rows".into();
        e
    })?;
    let columns = plan_columns(mapping);
    validate::require_columns(&df, &columns, &source)?;
    let df = df
        .select(columns.iter().map(String::as_str))
        .map_err(|e| source.error(e.to_string()))?;
    let df = ingest::type_columns(df, mapping, &source)?;
    let df = ingest::unique_and_sorted(df, mapping, &source)?;
    lake::check_partition_day(
        &df,
        &mapping.date_column,
        lake::day_of_key_in(PLANS_PREFIX, &file.key),
        &source,
    )?;
    Ok(df)
}

/// A plan frame with no rows, typed as a read one would be.
fn empty_plan(mapping: &DataMapping) -> DataFrame {
    let mut columns = vec![Column::new_empty(
        mapping.date_column.as_str().into(),
        &DataType::Date,
    )];
    for key in &mapping.series_keys {
        columns.push(Column::new_empty(key.as_str().into(), &DataType::String));
    }
    for covariate in &mapping.covariates {
        let dtype = if mapping.categorical.contains(covariate) {
            DataType::String
        } else {
            DataType::Float64
        };
        columns.push(Column::new_empty(covariate.as_str().into(), &dtype));
    }
    DataFrame::new_infer_height(columns).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Aggregate;

    fn plan(rows: &[(&str, &str, &str)]) -> DataFrame {
        df!(
            "date" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "store" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "item" => vec!["a"; rows.len()],
            "promo" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "holiday" => vec!["0"; rows.len()],
            "open" => vec!["1"; rows.len()],
            "note" => vec!["x"; rows.len()],
        )
        .unwrap()
    }

    #[test]
    fn a_plan_is_typed_like_sales_and_keeps_its_columns_only() {
        let source = Source::new("plan.csv", true);
        let clean = clean_plan(
            plan(&[("2020-01-02", "1", "1"), ("2020-01-01", "1", "0")]),
            &DataMapping::default(),
            &source,
        )
        .unwrap();
        assert_eq!(
            clean
                .get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["date", "store", "item", "promo", "holiday", "open"]
        );
        assert_eq!(clean.column("date").unwrap().dtype(), &DataType::Date);
        assert_eq!(clean.column("promo").unwrap().dtype(), &DataType::Float64);
        assert_eq!(clean.column("holiday").unwrap().dtype(), &DataType::String);
        let promo: Vec<_> = clean
            .column("promo")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(promo, [0.0, 1.0], "sorted by day");
    }

    #[test]
    fn a_plan_with_the_target_or_a_duplicate_is_refused() {
        let source = Source::new("plan.csv", true);
        let mut with_target = plan(&[("2020-01-01", "1", "0")]);
        with_target
            .with_column(Column::new("sales".into(), ["3"]))
            .unwrap();
        let err = clean_plan(with_target, &DataMapping::default(), &source).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plan.csv, column \"sales\": a plan must not hold the target"),
            "{err}"
        );
        let twice = plan(&[("2020-01-01", "1", "0"), ("2020-01-01", "1", "1")]);
        let err = clean_plan(twice, &DataMapping::default(), &source).unwrap_err();
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("duplicate"),
            "{err}"
        );
        let bad = plan(&[("2020-01-01", "1", "yes")]);
        let err = clean_plan(bad, &DataMapping::default(), &source).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan.csv, line 2, column \"promo\": \"yes\" is not a number"
        );
    }

    #[test]
    fn events_mode_takes_timestamps_in_plans_too() {
        let mapping = DataMapping {
            aggregate: Aggregate::Sum,
            ..DataMapping::default()
        };
        let clean = clean_plan(
            plan(&[("2020-01-01T10:00:00Z", "1", "0")]),
            &mapping,
            &Source::new("p", true),
        )
        .unwrap();
        assert_eq!(clean.column("date").unwrap().dtype(), &DataType::Date);
    }

    #[test]
    fn an_empty_plan_window_has_the_typed_columns() {
        let mapping = DataMapping::default();
        let window = PlanWindow {
            frame: empty_plan(&mapping),
            days: BTreeSet::new(),
            files: vec![],
        };
        let with_target = window.with_target(&mapping).unwrap();
        assert_eq!(
            with_target
                .get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["date", "store", "item", "sales", "promo", "holiday", "open"]
        );
        assert_eq!(with_target.column("sales").unwrap().dtype(), &DataType::Float64);
        assert_eq!(with_target.column("holiday").unwrap().dtype(), &DataType::String);
    }
}
