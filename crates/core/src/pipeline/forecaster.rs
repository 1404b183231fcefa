//! The champion's forecaster for one data day D: the sales window up to D,
//! the attribute and calendar tables and the stored plans of D+1 .. D+H, loaded once, and
//! forecasts of any set of active series from them, optionally under a
//! caller's plan. `predict` forecasts every active series with it and writes
//! the result; `serve` keeps one per champion and answers on-demand requests.
//!
//! A series is active when it has a row in the last seven days up to D.
//! Each target day's covariates come from the plan of that day (the caller's
//! first, then the lake's `ingest --plan`); without one, from the same series
//! on the same weekday of the newest week at or before D (a store's usual
//! opening days and promotions repeat weekly), and the row is marked
//! `planned = false`.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use chrono::{Days, NaiveDate};
use polars::prelude::*;

use crate::config::Config;
use crate::features::build_features;
use crate::forecast::intervals::Calibration;
use crate::forecast::recursive::{self, Feed, History, Path};
use crate::ingest::{date_from_days, days_from_date};
use crate::lake::Lake;
use crate::mapping::DataMapping;
use crate::models::Artifact;
use crate::plans::{PlanWindow, plan_columns, with_target};
use crate::registry::LoadedModel;
use crate::shard::Shard;
use crate::tables::Tables;
use crate::train::frame_rows;
use crate::validate::{DataError, Source};
use crate::window::Window;

/// Days before D (and D) in which a series must have a row to be forecast.
const ACTIVE_DAYS: i32 = 7;

/// The sales window up to a data day and the attribute and calendar
/// tables, as read and validated for one data mapping: what a forecaster
/// starts from. A retrain hands its own to the predict that follows it in
/// the same process, so the window is not read twice.
pub struct ReadWindow {
    pub data_day: NaiveDate,
    /// The validated rows of `Window::ending(window, data_day)`.
    pub sales: DataFrame,
    pub tables: Tables,
}

/// One champion, ready to forecast from data day D.
pub struct Forecaster {
    artifact: Artifact,
    calibration: Option<Calibration>,
    version: String,
    data_day: NaiveDate,
    horizon: u32,
    sales: DataFrame,
    tables: Tables,
    plans: PlanWindow,
    /// Active series, sorted by name, and the sales rows of each.
    active: Vec<String>,
    rows_of: RowsOf,
}

/// What [`Forecaster::forecast`] made: the predictions frame (schema of
/// `predictions`: series, keys, target_date, horizon, forecast, lower,
/// upper, model_sha256, data_day, planned), sorted by series and day.
pub struct Forecasts {
    pub frame: DataFrame,
    pub series: usize,
    /// Rows whose covariates came from the defaults, not a plan.
    pub unplanned_rows: usize,
}

impl Forecaster {
    /// Reads what forecasting from `data_day` needs: the window of sales up
    /// to it (validated as retrain validates it), the attribute and calendar
    /// tables, and the lake's plans of the target days. A calendar that ends
    /// before the last target day is warned about once (its later days get
    /// the calendar's default, 0).
    pub fn load(
        config: &Config,
        lake: &Lake,
        model: LoadedModel,
        version: &str,
        data_day: NaiveDate,
    ) -> anyhow::Result<Self> {
        Self::load_shard(config, lake, model, version, data_day, None)
    }

    /// [`Forecaster::load`] keeping only the series of `shard` (all when
    /// `None`): the window is read and validated whole (as an unsharded run
    /// does, so both refuse the same data), then cut to the shard's rows
    /// before anything else. A series' forecasts depend only on its own
    /// rows, the attribute and calendar tables and its plans (features
    /// group by series and join the tables on the row's own keys and date;
    /// the recursion keeps one history per series), so each shard forecasts
    /// its series exactly as an unsharded run does.
    pub fn load_shard(
        config: &Config,
        lake: &Lake,
        model: LoadedModel,
        version: &str,
        data_day: NaiveDate,
        shard: Option<Shard>,
    ) -> anyhow::Result<Self> {
        let mapping = &model.artifact.mapping;
        let window =
            Window::ending(&config.window, data_day).map_err(|e| crate::config::ConfigError::Argument {
                flag: "--date".into(),
                problem: e.to_string(),
            })?;
        // A shard keeps only its series' rows, each day's file validated whole.
        let sales = super::check::read_sales(lake, mapping, config, &window, shard)
            .with_context(|| format!("reading {} .. {data_day}", window.first_day))
            .map_err(|e| {
                if mapping.same_for_models(&config.data) {
                    e
                } else {
                    e.context(super::check::champion_read(version, mapping, &config.data))
                }
            })?
            .frame;
        let tables = super::check::read_tables(mapping, lake)?;
        Self::from_window(
            config,
            lake,
            model,
            version,
            ReadWindow {
                data_day,
                sales,
                tables,
            },
        )
    }

    /// The forecaster of a window already read and validated with the
    /// champion's mapping and `config`'s validation (by a retrain of the
    /// same day): reads only the plans of the target days.
    pub fn from_window(
        config: &Config,
        lake: &Lake,
        model: LoadedModel,
        version: &str,
        read: ReadWindow,
    ) -> anyhow::Result<Self> {
        let LoadedModel { artifact, manifest } = model;
        let ReadWindow {
            data_day,
            sales,
            tables,
        } = read;
        let mapping = &artifact.mapping;
        let horizon = config.forecast.horizon_days;
        let (first_target, last_target) = target_days(data_day, horizon)?;
        for (calendar, df) in &tables.calendars {
            let until = crate::calendar::covers_until(df);
            if until.is_none_or(|until| until < last_target) {
                tracing::warn!(
                    calendar = %calendar.name,
                    covers_until = ?until,
                    "calendar {} ends before the last forecast day {last_target}: days after it get 0 (no event); \
                     ingest a longer calendar with --calendar {}=FILE",
                    calendar.name,
                    calendar.name
                );
            }
        }
        let plans = crate::plans::read_plans(lake, mapping, &config.validation, first_target, last_target)
            .with_context(|| format!("reading the plans of {first_target} .. {last_target}"))?;
        let (active, rows_of) = active_series(&sales, mapping, data_day)?;
        Ok(Self {
            calibration: manifest.calibration,
            artifact,
            version: version.to_string(),
            data_day,
            horizon,
            sales,
            tables,
            plans,
            active,
            rows_of,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn data_day(&self) -> NaiveDate {
        self.data_day
    }

    pub fn horizon(&self) -> u32 {
        self.horizon
    }

    pub fn mapping(&self) -> &DataMapping {
        &self.artifact.mapping
    }

    /// The calibrated interval's central probability, if the champion has one.
    pub fn interval(&self) -> Option<f64> {
        self.calibration.as_ref().map(|c| c.interval)
    }

    /// The active series' names (keys joined with "/"), sorted.
    pub fn active(&self) -> &[String] {
        &self.active
    }

    pub fn is_active(&self, series: &str) -> bool {
        self.rows_of.contains_key(series)
    }

    /// The sales window the forecasts start from (validated rows).
    pub fn sales(&self) -> &DataFrame {
        &self.sales
    }

    /// Each active series with the index of one of its rows in [`Self::sales`].
    pub fn active_rows(&self) -> Vec<(String, usize)> {
        self.active
            .iter()
            .filter_map(|name| Some((name.clone(), *self.rows_of.get(name)?.first()? as usize)))
            .collect()
    }

    /// Forecasts D+1 .. D+H of `only` (every active series when `None`;
    /// names not active are skipped), with the caller's `plan` (typed by
    /// [`Forecaster::caller_plan`]) over the lake's.
    pub fn forecast(&self, only: Option<&[String]>, plan: Option<&DataFrame>) -> anyhow::Result<Forecasts> {
        let mapping = &self.artifact.mapping;
        let sales = self.sales_of(only.unwrap_or(&self.active))?;
        let plans = match plan {
            Some(caller) if caller.height() > 0 => {
                let mut stacked = self.plans.frame.clone();
                anyhow::Context::context(stacked.vstack_mut(caller), "stacking the caller's plan")?;
                stacked
            }
            _ => self.plans.frame.clone(),
        };
        let future = future_rows(&sales, &plans, mapping, self.data_day, self.horizon)?;
        // Features of the future rows only: the recursion recomputes their
        // history features (lags, rolling means, series mean) from the actuals
        // of the whole window and its own forecasts; calendar, covariates and
        // attributes come from here.
        let features = build_features(&future.frame, &self.tables, mapping, &self.artifact.features)
            .map_err(anyhow::Error::from)
            .context("building features")?;
        let history = History::split(&sales, &features, mapping)?;
        let origin = days_from_date(self.data_day);
        let paths: Vec<Path> = future
            .series
            .iter()
            .filter_map(|name| history.id(name))
            .map(|series| Path { series, origin })
            .collect();
        let forecasts = recursive::forecast(
            &self.artifact,
            &features,
            &history,
            &paths,
            self.horizon,
            Feed::Forecasts,
        )?;
        let frame = output_frame(self, &features, &history, &forecasts, &future.unplanned_rows)?;
        Ok(Forecasts {
            frame,
            series: paths.len(),
            unplanned_rows: future.unplanned_rows.len(),
        })
    }

    /// A caller's plan rows, typed and checked as `ingest --plan` checks a
    /// file (errors name `source` and the row). Each row is text per column
    /// (date, series keys, any covariates); a covariate a row leaves out
    /// takes the value the forecast would use without it (the lake's plan
    /// of that day, or the same-weekday default). Rows must fall on D+1 ..
    /// D+H and name an active series.
    pub fn caller_plan(
        &self,
        rows: &[HashMap<String, String>],
        source: &str,
    ) -> Result<DataFrame, DataError> {
        let mapping = &self.artifact.mapping;
        let src = Source::new(source, false);
        let columns = plan_columns(mapping);
        let mut parsed = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if let Some(unknown) = row.keys().find(|k| !columns.contains(k)) {
                return Err(src.error_at(
                    i,
                    unknown,
                    format!("not a plan column (expected: {})", columns.join(", ")),
                ));
            }
            let name = mapping
                .series_keys
                .iter()
                .map(|k| {
                    row.get(k)
                        .cloned()
                        .ok_or_else(|| src.error_at(i, k, "missing series key"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join("/");
            if !self.is_active(&name) {
                return Err(src.error_at(i, &mapping.series_keys[0], format!("unknown series {name:?}")));
            }
            let date = row
                .get(&mapping.date_column)
                .ok_or_else(|| src.error_at(i, &mapping.date_column, "missing date"))?;
            let day = NaiveDate::parse_from_str(date, &mapping.date_format).map_err(|e| {
                src.error_at(
                    i,
                    &mapping.date_column,
                    format!("{date:?} is not a {} date: {e}", mapping.date_format),
                )
            })?;
            let (first, last) =
                target_days(self.data_day, self.horizon).map_err(|e| src.error(e.to_string()))?;
            if day < first || day > last {
                return Err(src.error_at(
                    i,
                    &mapping.date_column,
                    format!("{day} is outside the forecast days {first} .. {last}"),
                ));
            }
            parsed.push((name, days_from_date(day)));
        }
        // The defaults of the rows' days, for the covariates the rows leave out.
        let names: Vec<String> = parsed.iter().map(|(n, _)| n.clone()).collect();
        let (defaults, index) = self.default_rows(&names)?;
        let text: Vec<Column> = columns
            .iter()
            .map(|column| {
                let values: Vec<Option<String>> = rows
                    .iter()
                    .zip(&parsed)
                    .map(|(row, key)| {
                        row.get(column)
                            .cloned()
                            .or_else(|| index.get(key).and_then(|&r| cell_text(&defaults, column, r)))
                    })
                    .collect();
                Column::new(column.as_str().into(), values)
            })
            .collect();
        let df = DataFrame::new(rows.len(), text).map_err(|e| src.error(e.to_string()))?;
        crate::plans::clean_plan(df, mapping, &src)
    }

    /// The sales rows of the active series among `names`, in window order.
    fn sales_of(&self, names: &[String]) -> PolarsResult<DataFrame> {
        let mut rows: Vec<IdxSize> = names
            .iter()
            .filter_map(|n| self.rows_of.get(n))
            .flatten()
            .copied()
            .collect();
        rows.sort_unstable();
        rows.dedup();
        self.sales.take(&IdxCa::from_vec("rows".into(), rows))
    }

    /// The default future rows of some series (no caller plan), indexed by
    /// (series, day number).
    fn default_rows(&self, names: &[String]) -> Result<(DataFrame, RowIndex), DataError> {
        let internal = |e: anyhow::Error| DataError::file("the forecast's default rows", format!("{e:#}"));
        let sales = self.sales_of(names).map_err(|e| internal(e.into()))?;
        let future = future_rows(
            &sales,
            &self.plans.frame,
            self.mapping(),
            self.data_day,
            self.horizon,
        )
        .map_err(internal)?;
        let index = row_index(&future.frame, self.mapping()).map_err(internal)?;
        Ok((future.frame, index))
    }
}

/// (series name, day number) -> frame row.
type RowIndex = HashMap<(String, i32), usize>;

/// A cell as the text a plan file would hold (None for null).
fn cell_text(frame: &DataFrame, column: &str, row: usize) -> Option<String> {
    match frame.column(column).ok()?.get(row).ok()? {
        AnyValue::Null => None,
        AnyValue::String(s) => Some(s.to_string()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        AnyValue::Date(d) => date_from_days(d).map(|d| d.to_string()),
        other => Some(other.to_string()),
    }
}

/// D+1 and D+H.
fn target_days(data_day: NaiveDate, horizon: u32) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let last = data_day
        .checked_add_days(Days::new(horizon.into()))
        .ok_or_else(|| anyhow::anyhow!("{data_day} + {horizon} days is outside the calendar"))?;
    Ok((data_day.succ_opt().unwrap_or(last), last))
}

/// Each series' rows in the sales window, by name.
type RowsOf = HashMap<String, Vec<IdxSize>>;

/// The series with a row in the last [`ACTIVE_DAYS`] up to D, sorted, and
/// every row of each in the window.
fn active_series(
    sales: &DataFrame,
    mapping: &DataMapping,
    data_day: NaiveDate,
) -> anyhow::Result<(Vec<String>, RowsOf)> {
    let since = days_from_date(data_day) - ACTIVE_DAYS + 1;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let (series, days) = recursive::index(sales, mapping, &mut ids)?;
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); ids.len()];
    let mut active = vec![false; ids.len()];
    for (i, (&s, &day)) in series.iter().zip(&days).enumerate() {
        rows[s as usize].push(i as IdxSize);
        // A row without a date is i32::MIN: never recent.
        active[s as usize] |= day >= since;
    }
    let mut rows_of = RowsOf::new();
    for (name, id) in ids {
        if active[id as usize] {
            rows_of.insert(name, std::mem::take(&mut rows[id as usize]));
        }
    }
    let mut names: Vec<String> = rows_of.keys().cloned().collect();
    names.sort();
    Ok((names, rows_of))
}

/// The rows of the days to forecast, shaped like the sales rows (target null).
struct Future {
    frame: DataFrame,
    /// The series forecast, by name.
    series: Vec<String>,
    /// (series, day number) of rows without a plan.
    unplanned_rows: HashSet<(String, i32)>,
}

/// Every series of `sales` is forecast (the caller passes the active ones).
fn future_rows(
    sales: &DataFrame,
    plans: &DataFrame,
    mapping: &DataMapping,
    data_day: NaiveDate,
    horizon: u32,
) -> anyhow::Result<Future> {
    let history = History::new(sales, mapping)?;
    let origin = days_from_date(data_day);
    // Later plan rows win: the caller's rows are stacked after the lake's.
    let plan_index = row_index(plans, mapping)?;
    let mut from_plan = Vec::new();
    let (mut from_sales, mut sales_days) = (Vec::new(), Vec::new());
    let mut unplanned_rows = HashSet::new();
    let series: Vec<u32> = (0..history.series() as u32).collect();
    for &s in &series {
        let name = history.name(s);
        let newest = (origin - 366..=origin).rev().find_map(|d| history.row(s, d));
        for h in 1..=horizon as i32 {
            let day = origin + h;
            if let Some(&row) = plan_index.get(&(name.to_string(), day)) {
                from_plan.push(row as IdxSize);
                continue;
            }
            let weeks_back = 7 * ((h + 6) / 7);
            let source = history.row(s, day - weeks_back).or(newest);
            if let Some(row) = source {
                from_sales.push(row as IdxSize);
                sales_days.push(day);
                unplanned_rows.insert((name.to_string(), day));
            }
        }
    }
    // Default rows: a sales row moved to the target day, its target emptied.
    let mut frame = sales.take(&IdxCa::from_vec("rows".into(), from_sales))?;
    let n = frame.height();
    frame.with_column(Column::new(mapping.date_column.as_str().into(), sales_days).cast(&DataType::Date)?)?;
    frame.with_column(Column::full_null(
        mapping.target.as_str().into(),
        n,
        &DataType::Float64,
    ))?;
    if !from_plan.is_empty() {
        let planned = with_target(plans, mapping)?.take(&IdxCa::from_vec("rows".into(), from_plan))?;
        frame.vstack_mut(&planned)?;
    }
    Ok(Future {
        frame,
        series: series.iter().map(|&s| history.name(s).to_string()).collect(),
        unplanned_rows,
    })
}

/// (series name, day number) -> row, the last row winning.
fn row_index(frame: &DataFrame, mapping: &DataMapping) -> anyhow::Result<RowIndex> {
    if frame.height() == 0 {
        return Ok(Default::default());
    }
    let dates = frame.column(&mapping.date_column)?.date()?.physical().clone();
    let keys: Vec<StringChunked> = mapping
        .series_keys
        .iter()
        .map(|k| Ok(frame.column(k)?.str()?.clone()))
        .collect::<anyhow::Result<_>>()?;
    Ok((0..frame.height())
        .filter_map(|i| Some(((recursive::series_name(&keys, i), dates.get(i)?), i)))
        .collect())
}

/// The predictions frame (schema of `predictions`), sorted by series and day.
fn output_frame(
    forecaster: &Forecaster,
    features: &DataFrame,
    history: &History,
    forecasts: &[recursive::Forecast],
    unplanned: &HashSet<(String, i32)>,
) -> anyhow::Result<DataFrame> {
    let mapping = &forecaster.artifact.mapping;
    let mut order: Vec<usize> = (0..forecasts.len()).collect();
    let key = |f: &recursive::Forecast| history.of_row(f.row);
    order.sort_by(|&a, &b| {
        let (sa, da) = key(&forecasts[a]);
        let (sb, db) = key(&forecasts[b]);
        history.name(sa).cmp(history.name(sb)).then(da.cmp(&db))
    });
    let sorted: Vec<&recursive::Forecast> = order.iter().map(|&i| &forecasts[i]).collect();
    let rows: Vec<usize> = sorted.iter().map(|f| f.row).collect();
    let keys = frame_rows(features, &rows)?.select(mapping.series_keys.iter().map(String::as_str))?;
    let names: Vec<String> = sorted
        .iter()
        .map(|f| history.name(key(f).0).to_string())
        .collect();
    let days: Vec<i32> = sorted.iter().map(|f| key(f).1).collect();
    let bounds: Vec<Option<(f64, f64)>> = sorted
        .iter()
        .map(|f| {
            forecaster
                .calibration
                .as_ref()
                .map(|c| c.bounds(f.horizon, f.value))
        })
        .collect();
    let planned: Vec<bool> = names
        .iter()
        .zip(&days)
        .map(|(n, &d)| !unplanned.contains(&(n.clone(), d)))
        .collect();
    let n = sorted.len();
    let mut columns = vec![Column::new("series".into(), names)];
    columns.extend(keys.columns().iter().cloned());
    columns.extend([
        Column::new("target_date".into(), days).cast(&DataType::Date)?,
        Column::new(
            "horizon".into(),
            sorted.iter().map(|f| f.horizon as i32).collect::<Vec<_>>(),
        ),
        Column::new(
            "forecast".into(),
            sorted.iter().map(|f| f.value).collect::<Vec<_>>(),
        ),
        Column::new(
            "lower".into(),
            bounds.iter().map(|b| b.map(|b| b.0)).collect::<Vec<_>>(),
        ),
        Column::new(
            "upper".into(),
            bounds.iter().map(|b| b.map(|b| b.1)).collect::<Vec<_>>(),
        ),
        Column::new("model_sha256".into(), vec![forecaster.version.as_str(); n]),
        Column::new("data_day".into(), vec![days_from_date(forecaster.data_day); n]).cast(&DataType::Date)?,
        Column::new("planned".into(), planned),
    ]);
    Ok(DataFrame::new(n, columns)?)
}
