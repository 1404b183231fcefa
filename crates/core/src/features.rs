//! Feature building with polars lazy frames: one function, [`build_features`],
//! used by training, backtests and prediction alike.
//!
//! No leakage: every history feature for day D uses target values of days
//! before D only. Lags and rolling windows count calendar days, not rows, so a
//! gap in a series leaves its features empty rather than shifted. When the
//! mapping names an open flag, sales of closed days are not history (a closed
//! day's zero says nothing about demand). Calendar tables join on the row's
//! own date, which is known in advance (see `calendar`).

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::mapping::DataMapping;
use crate::tables::{Tables, join_calendars};

/// Which history features are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureSettings {
    /// Lags of the target, in calendar days.
    pub lags: Vec<u32>,
    /// Rolling means of the target over this many past calendar days.
    pub rolling_means: Vec<u32>,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            lags: vec![1, 7, 14, 28],
            rolling_means: vec![7, 28],
        }
    }
}

/// The longest lag or rolling mean: a century of days, as the longest
/// history window. (A rolling window of u32::MAX days overflowed polars'
/// duration arithmetic, a panic.)
pub const MAX_FEATURE_DAYS: u32 = 36_525;

impl FeatureSettings {
    pub fn check(&self) -> Result<(), crate::setting::Invalid> {
        for (key, days) in [
            ("features.lags", &self.lags),
            ("features.rolling_means", &self.rolling_means),
        ] {
            if let Some(bad) = days.iter().find(|&&d| d == 0 || d > MAX_FEATURE_DAYS) {
                return Err(crate::setting::invalid(
                    key,
                    format!("{bad} is not a whole number of days between 1 and {MAX_FEATURE_DAYS}"),
                ));
            }
            if let Some(d) = days.iter().enumerate().find_map(|(i, d)| {
                days.get(..i)
                    .is_some_and(|before| before.contains(d))
                    .then_some(d)
            }) {
                return Err(crate::setting::invalid(key, format!("{d} is given twice")));
            }
        }
        Ok(())
    }
}

pub const DAY_OF_WEEK: &str = "day_of_week";
pub const DAY_OF_MONTH: &str = "day_of_month";
pub const MONTH: &str = "month";
pub const WEEK_OF_YEAR: &str = "week_of_year";
pub const SERIES_MEAN: &str = "series_mean";

/// The target as history: null on closed days.
const HISTORY: &str = "__history";
/// The series number of a row (features_lags), while the features are built.
const SERIES_ID: &str = "__series_id";

pub fn lag_name(days: u32) -> String {
    format!("lag_{days}")
}

pub fn rolling_mean_name(days: u32) -> String {
    format!("rolling_mean_{days}")
}

/// The model inputs [`build_features`] produces, in order, and which are categories.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureLayout {
    pub numeric: Vec<String>,
    pub categorical: Vec<String>,
}

impl FeatureLayout {
    pub fn new(mapping: &DataMapping, settings: &FeatureSettings) -> Self {
        let is_categorical = |c: &String| mapping.categorical.contains(c);
        let mut numeric: Vec<String> = [DAY_OF_WEEK, DAY_OF_MONTH, MONTH, WEEK_OF_YEAR]
            .iter()
            .map(|s| s.to_string())
            .collect();
        numeric.extend(settings.lags.iter().map(|&d| lag_name(d)));
        numeric.extend(settings.rolling_means.iter().map(|&d| rolling_mean_name(d)));
        numeric.push(SERIES_MEAN.into());
        let attribute_columns = mapping.attributes.iter().flat_map(|t| t.columns.iter());
        let calendar_columns = mapping.calendars.iter().flat_map(|c| c.features());
        let known: Vec<&String> = mapping
            .covariates
            .iter()
            .chain(attribute_columns)
            .chain(calendar_columns)
            .collect();
        numeric.extend(known.iter().filter(|c| !is_categorical(c)).map(|c| c.to_string()));
        let mut categorical = mapping.series_keys.clone();
        categorical.extend(known.iter().filter(|c| is_categorical(c)).map(|c| c.to_string()));
        Self { numeric, categorical }
    }

    /// Every model input, numeric first: the columns of the design matrix.
    pub fn names(&self) -> Vec<String> {
        self.numeric.iter().chain(&self.categorical).cloned().collect()
    }
}

/// Builds the feature frame for every row of `sales` (a validated window):
/// the date, series keys and target, then the columns of [`FeatureLayout`].
/// `tables` are the mapping's attribute and calendar tables, already read.
pub fn build_features(
    sales: &DataFrame,
    tables: &Tables,
    mapping: &DataMapping,
    settings: &FeatureSettings,
) -> PolarsResult<DataFrame> {
    build(sales, tables, mapping, settings, Lags::Walk)
}

/// How the lag columns are found: walking the sorted window (the fast path,
/// `features_lags`) or joining it onto itself per lag (the straightforward
/// one, kept for windows the walk does not cover and for the test that
/// both give the same frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lags {
    Walk,
    #[cfg_attr(not(test), allow(dead_code))]
    Join,
}

fn build(
    sales: &DataFrame,
    tables: &Tables,
    mapping: &DataMapping,
    settings: &FeatureSettings,
    lags: Lags,
) -> PolarsResult<DataFrame> {
    let date = mapping.date_column.as_str();
    let keys: Vec<Expr> = mapping.series_keys.iter().map(|k| col(k.as_str())).collect();
    let mut order: Vec<PlSmallStr> = mapping.series_keys.iter().map(|k| k.as_str().into()).collect();
    order.push(date.into());

    let history = match &mapping.open_flag {
        Some(open) => when(col(open.as_str()).eq(lit(0.0)))
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(col(mapping.target.as_str())),
        None => col(mapping.target.as_str()),
    };
    let with_history = sales.clone().lazy().with_column(history.alias(HISTORY));
    let base = with_history
        .clone()
        .sort(order.clone(), SortMultipleOptions::default());

    // The walk: the window in (series, date) order, its lags and its series
    // numbers; the means are grouped by number and the output sorted by
    // (date, number), the same order as (date, keys) since numbers follow
    // the key order.
    let walked = match lags {
        Lags::Walk => {
            let frame = with_history.collect()?;
            match lags::series_order(&frame, mapping)? {
                Some((order, index)) => {
                    let mut sorted = frame.take(&IdxCa::from_vec("order".into(), order))?;
                    let values: Vec<Option<f64>> = sorted.column(HISTORY)?.f64()?.iter().collect();
                    for &days in &settings.lags {
                        sorted.with_column(Column::new(lag_name(days).into(), index.lag(&values, days)))?;
                    }
                    sorted.with_column(index.id_column(SERIES_ID))?;
                    Some(sorted)
                }
                None => None,
            }
        }
        Lags::Join => None,
    };
    let walking = walked.is_some();
    let groups = if walking {
        vec![col(SERIES_ID)]
    } else {
        keys.clone()
    };
    let mut frame = match walked {
        Some(sorted) => sorted.lazy(),
        None => {
            let mut frame = base.clone();
            for &days in &settings.lags {
                frame = join_lag(frame, base.clone(), mapping, days);
            }
            frame.sort(order, SortMultipleOptions::default())
        }
    };
    let mut history_features = Vec::with_capacity(settings.rolling_means.len() + 1);
    for &days in &settings.rolling_means {
        history_features.push(
            rolling_mean(date, days)
                .over(groups.clone())?
                .alias(rolling_mean_name(days)),
        );
    }
    history_features.push(expanding_mean().over(groups)?.alias(SERIES_MEAN));
    frame = frame.with_columns(history_features);

    frame = frame.with_columns([
        col(date)
            .dt()
            .weekday()
            .cast(DataType::Float64)
            .alias(DAY_OF_WEEK),
        col(date).dt().day().cast(DataType::Float64).alias(DAY_OF_MONTH),
        col(date).dt().month().cast(DataType::Float64).alias(MONTH),
        col(date).dt().week().cast(DataType::Float64).alias(WEEK_OF_YEAR),
    ]);
    for (table, df) in &tables.attributes {
        let mut wanted: Vec<Expr> = table.join_keys.iter().map(|k| col(k.as_str())).collect();
        wanted.extend(table.columns.iter().map(|c| col(c.as_str())));
        let on: Vec<Expr> = table.join_keys.iter().map(|k| col(k.as_str())).collect();
        frame = frame.join(
            df.clone().lazy().select(wanted),
            on.clone(),
            on,
            JoinArgs::new(JoinType::Left),
        );
    }
    frame = join_calendars(frame, &tables.calendars, mapping)?;

    let layout = FeatureLayout::new(mapping, settings);
    let mut out: Vec<Expr> = vec![col(date)];
    out.extend(keys.iter().cloned());
    out.push(col(mapping.target.as_str()));
    out.extend(
        layout
            .numeric
            .iter()
            .chain(&layout.categorical)
            .filter(|c| !mapping.series_keys.contains(c))
            .map(|c| col(c.as_str())),
    );
    if walking {
        out.push(col(SERIES_ID));
        // (date, number) by counting sorts: polars' sort of the two columns
        // was about half a second of the generated lake's features.
        let mut frame = frame.select(out).collect()?;
        let days: Vec<i32> = frame
            .column(date)?
            .date()?
            .physical()
            .into_no_null_iter()
            .collect();
        let ids: Vec<u32> = frame.column(SERIES_ID)?.u32()?.into_no_null_iter().collect();
        let order = lags::two_key_order(&days, &ids);
        frame.drop_in_place(SERIES_ID)?;
        return frame.take(&IdxCa::from_vec("order".into(), order));
    }
    let mut sort_out: Vec<PlSmallStr> = vec![date.into()];
    sort_out.extend(mapping.series_keys.iter().map(|k| k.as_str().into()));
    frame
        .select(out)
        .sort(sort_out, SortMultipleOptions::default())
        .collect()
}

/// Left-joins the history value of `days` calendar days earlier onto each row.
fn join_lag(frame: LazyFrame, base: LazyFrame, mapping: &DataMapping, days: u32) -> LazyFrame {
    let date = mapping.date_column.as_str();
    let shifted_day = (col(date).cast(DataType::Int32) + lit(days as i32))
        .cast(DataType::Date)
        .alias(date);
    let mut lagged: Vec<Expr> = mapping.series_keys.iter().map(|k| col(k.as_str())).collect();
    lagged.push(shifted_day);
    lagged.push(col(HISTORY).alias(lag_name(days)));
    let mut on: Vec<Expr> = mapping.series_keys.iter().map(|k| col(k.as_str())).collect();
    on.push(col(date));
    frame.join(base.select(lagged), on.clone(), on, JoinArgs::new(JoinType::Left))
}

/// Mean of the history over the `days` calendar days before each row's day
/// (the row's own day excluded).
fn rolling_mean(date: &str, days: u32) -> Expr {
    let options = RollingOptionsDynamicWindow {
        window_size: Duration::parse(&format!("{days}d")),
        min_periods: 1,
        closed_window: ClosedWindow::Left,
        fn_params: None,
    };
    col(HISTORY).rolling_mean_by(col(date), options)
}

/// Mean of all earlier history values of the series in the window.
fn expanding_mean() -> Expr {
    let value = col(HISTORY).fill_null(lit(0.0));
    let present = col(HISTORY).is_not_null().cast(DataType::Float64);
    let earlier_sum = value.clone().cum_sum(false) - value;
    let earlier_count = present.clone().cum_sum(false) - present;
    when(earlier_count.clone().gt(lit(0.0)))
        .then(earlier_sum / earlier_count)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i32) -> i32 {
        crate::ingest::days_from_date(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()) + d
    }

    fn mapping() -> DataMapping {
        DataMapping {
            series_keys: vec!["store".into()],
            covariates: vec!["open".into()],
            categorical: vec![],
            open_flag: Some("open".into()),
            attributes: vec![],
            ..DataMapping::default()
        }
    }

    fn frame(days: &[i32], sales: &[f64], open: &[f64]) -> DataFrame {
        let dates = Column::new("date".into(), days.iter().map(|&d| day(d)).collect::<Vec<_>>())
            .cast(&DataType::Date)
            .unwrap();
        let n = days.len();
        DataFrame::new(
            n,
            vec![
                dates,
                Column::new("store".into(), vec!["s"; n]),
                Column::new("sales".into(), sales.to_vec()),
                Column::new("open".into(), open.to_vec()),
            ],
        )
        .unwrap()
    }

    fn values(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
        df.column(name).unwrap().f64().unwrap().iter().collect()
    }

    #[test]
    fn lags_and_windows_count_calendar_days_across_gaps() {
        // Days 0,1,2 then a gap, then days 9,10.
        let df = frame(&[0, 1, 2, 9, 10], &[10.0, 20.0, 30.0, 40.0, 50.0], &[1.0; 5]);
        let settings = FeatureSettings {
            lags: vec![1, 7],
            rolling_means: vec![7],
        };
        let out = build_features(&df, &Tables::default(), &mapping(), &settings).unwrap();
        assert_eq!(
            values(&out, "lag_1"),
            [None, Some(10.0), Some(20.0), None, Some(40.0)]
        );
        assert_eq!(values(&out, "lag_7"), [None, None, None, Some(30.0), None]);
        // Day 9 looks at days 2..8: only day 2 (30). Day 10 at 3..9: only day 9.
        assert_eq!(
            values(&out, "rolling_mean_7"),
            [None, Some(10.0), Some(15.0), Some(30.0), Some(40.0)]
        );
        assert_eq!(
            values(&out, "series_mean"),
            [None, Some(10.0), Some(15.0), Some(20.0), Some(25.0)]
        );
    }

    /// Two frames with the same columns and, in float columns, the same bits.
    pub(super) fn assert_same_bits(a: &DataFrame, b: &DataFrame) {
        assert_eq!(a.get_column_names(), b.get_column_names());
        assert_eq!(a.height(), b.height());
        for (x, y) in a.columns().iter().zip(b.columns()) {
            assert_eq!(x.dtype(), y.dtype(), "{}", x.name());
            if x.dtype() == &DataType::Float64 {
                let bits = |c: &Column| -> Vec<Option<u64>> {
                    c.f64().unwrap().iter().map(|v| v.map(f64::to_bits)).collect()
                };
                assert_eq!(bits(x), bits(y), "{}", x.name());
            } else {
                assert!(x.equals_missing(y), "{}", x.name());
            }
        }
    }

    /// The walk over the sorted window gives the join's frame bit for bit:
    /// two series keys, rows out of order, gaps, closed days, a missing
    /// target, series starting late, lags longer than some series.
    #[test]
    fn walked_lags_equal_joined_lags() {
        let (mut dates, mut stores, mut items, mut sales, mut open) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (s, store) in ["b", "a", "c"].iter().enumerate() {
            for (t, item) in ["y", "x"].iter().enumerate() {
                for d in (3 * s as i32 + t as i32..70).rev() {
                    if (d + s as i32) % 11 == 5 {
                        continue; // a gap
                    }
                    dates.push(day(d));
                    stores.push(*store);
                    items.push(*item);
                    let closed = (d + t as i32) % 7 == 6;
                    sales.push(if d == 40 && s == 1 {
                        None
                    } else {
                        Some(if closed {
                            0.0
                        } else {
                            (d * 13 % 29) as f64 + 0.1 * s as f64
                        })
                    });
                    open.push(if closed { 0.0 } else { 1.0 });
                }
            }
        }
        let n = dates.len();
        let df = DataFrame::new(
            n,
            vec![
                Column::new("date".into(), dates).cast(&DataType::Date).unwrap(),
                Column::new("store".into(), stores),
                Column::new("item".into(), items),
                Column::new("sales".into(), sales),
                Column::new("open".into(), open),
            ],
        )
        .unwrap();
        let mapping = DataMapping {
            series_keys: vec!["store".into(), "item".into()],
            ..mapping()
        };
        let settings = FeatureSettings {
            lags: vec![1, 7, 14, 28, 60],
            rolling_means: vec![3, 7, 28],
        };
        let walked = build(&df, &Tables::default(), &mapping, &settings, Lags::Walk).unwrap();
        let joined = build(&df, &Tables::default(), &mapping, &settings, Lags::Join).unwrap();
        assert_eq!(walked.height(), n);
        assert!(walked.column("lag_7").unwrap().f64().unwrap().null_count() < n / 2);
        assert_same_bits(&walked, &joined);
        // A series twice on one day: the walk steps aside for the join.
        let doubled = df.vstack(&df.slice(0, 1)).unwrap();
        assert!(lags::series_order(&doubled, &mapping).unwrap().is_none());
        assert_same_bits(
            &build(&doubled, &Tables::default(), &mapping, &settings, Lags::Walk).unwrap(),
            &build(&doubled, &Tables::default(), &mapping, &settings, Lags::Join).unwrap(),
        );
    }

    #[test]
    fn closed_days_are_not_history() {
        let df = frame(&[0, 1, 2], &[10.0, 0.0, 30.0], &[1.0, 0.0, 1.0]);
        let settings = FeatureSettings {
            lags: vec![1],
            rolling_means: vec![7],
        };
        let out = build_features(&df, &Tables::default(), &mapping(), &settings).unwrap();
        assert_eq!(values(&out, "lag_1"), [None, Some(10.0), None]);
        assert_eq!(values(&out, "rolling_mean_7"), [None, Some(10.0), Some(10.0)]);
    }
}

#[path = "features_lags.rs"]
mod lags;

#[cfg(test)]
#[path = "features_props.rs"]
mod props;
