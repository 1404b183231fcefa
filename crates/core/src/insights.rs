//! Sales insights for the dashboard, from the data the served champion
//! forecasts from: each store's daily sales over the window (a [`Board`]),
//! period totals against the period before and the same weeks a year
//! earlier, each store's forecast (its series summed by day), and each
//! store's error on the newest earlier forecasts the lake holds.
//!
//! A store is a value of the store key (`serve.store_key`, the first series
//! key by default); a store with several series (store and item) is their
//! sum. Summed interval bounds are wider than the interval of the sum (they
//! assume the series' errors move together): conservative, and exact for one
//! series per store.

pub mod history;

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};
use polars::prelude::*;
use serde::Serialize;

use crate::ingest::days_from_date;
use crate::mapping::DataMapping;
use crate::predictions::ForecastRow;

/// Days between a period and the same weekdays a year earlier.
pub const YEAR_DAYS: u64 = 364;

/// Each store's daily sales over the window, and which series it has.
#[derive(Debug, Clone, Default)]
pub struct Board {
    pub store_key: String,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    /// Daily totals by store, one slot per day from `first_day`; NaN where
    /// the store has no row that day.
    totals: BTreeMap<String, Vec<f64>>,
    /// The active series of each store.
    series_of: BTreeMap<String, Vec<String>>,
    /// Each store's error on earlier forecasts, when the lake has some.
    pub accuracy: Option<Accuracy>,
}

/// A period's total against the period before it and a year before it.
/// Each comparison is like for like: the stores counted are those whose
/// earlier period has rows on at least [`COVERAGE`] of the days their
/// current period has (a store that opened, closed for a refit or joined the
/// data meanwhile is left out of that comparison, not counted as growth).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Period {
    pub days: u32,
    pub total: Option<f64>,
    /// (the compared stores' total now, their total then).
    pub previous: Option<(f64, f64)>,
    pub last_year: Option<(f64, f64)>,
}

/// The share of a period's days with rows an earlier period must have.
pub const COVERAGE: f64 = 0.8;

impl Period {
    /// Change against the period before, as a fraction (0.05 = +5%).
    pub fn growth(&self) -> Option<f64> {
        self.previous.and_then(|(now, then)| ratio(now, then))
    }

    /// Change against the same weekdays a year before.
    pub fn year_on_year(&self) -> Option<f64> {
        self.last_year.and_then(|(now, then)| ratio(now, then))
    }
}

fn ratio(now: f64, before: f64) -> Option<f64> {
    (before > 0.0).then(|| now / before - 1.0)
}

/// Adds a store's (now, then) to a comparison when its earlier period is
/// covered well enough.
fn compare(into: &mut Option<(f64, f64)>, now: Option<(f64, usize)>, then: Option<(f64, usize)>) {
    if let (Some((now, now_days)), Some((then, then_days))) = (now, then)
        && then_days as f64 >= COVERAGE * now_days as f64
    {
        let sum = into.get_or_insert((0.0, 0.0));
        sum.0 += now;
        sum.1 += then;
    }
}

/// One day of a store's forecast: its series summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreForecast {
    pub target_date: NaiveDate,
    pub forecast: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Every series of the day had a plan.
    pub planned: bool,
}

/// How far each store's forecasts made on `data_day` were from the sales
/// of the days since (`through`, at most the horizon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    pub data_day: NaiveDate,
    pub through: NaiveDate,
    pub model_sha256: String,
    /// WAPE of each store's daily totals over those days.
    pub by_store: BTreeMap<String, f64>,
    /// WAPE of the chain's stores pooled.
    pub chain: Option<f64>,
}

impl Board {
    /// Sums `sales` (validated window rows: key columns text, the date a
    /// date, the target a number) by store and day; `series` are the active
    /// series with one of their rows each.
    pub fn build(
        sales: &DataFrame,
        mapping: &DataMapping,
        store_key: &str,
        series: &[(String, usize)],
        first_day: NaiveDate,
        last_day: NaiveDate,
    ) -> PolarsResult<Self> {
        let stores = sales.column(store_key)?.str()?;
        let dates = sales.column(&mapping.date_column)?.date()?.physical().clone();
        let target = sales.column(&mapping.target)?.cast(&DataType::Float64)?;
        let target = target.f64()?;
        let start = days_from_date(first_day);
        let len = usize::try_from(days_from_date(last_day) - start + 1).unwrap_or(0);
        let mut totals: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for i in 0..sales.height() {
            let (Some(store), Some(day), Some(value)) = (stores.get(i), dates.get(i), target.get(i)) else {
                continue;
            };
            let Ok(offset) = usize::try_from(day - start) else {
                continue;
            };
            if offset >= len {
                continue;
            }
            let slot = *slot_of.entry(store).or_insert_with(|| {
                columns.push(vec![f64::NAN; len]);
                columns.len() - 1
            });
            let cell = &mut columns[slot][offset];
            *cell = if cell.is_nan() { value } else { *cell + value };
        }
        let mut names: Vec<(&str, usize)> = slot_of.into_iter().collect();
        names.sort_unstable();
        for (store, slot) in names {
            totals.insert(store.to_string(), std::mem::take(&mut columns[slot]));
        }
        let mut series_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, row) in series {
            if let Some(store) = stores.get(*row) {
                series_of.entry(store.to_string()).or_default().push(name.clone());
            }
        }
        Ok(Self {
            store_key: store_key.to_string(),
            first_day: Some(first_day),
            last_day: Some(last_day),
            totals,
            series_of,
            accuracy: None,
        })
    }

    /// Stores with sales in the window, sorted.
    pub fn stores(&self) -> impl Iterator<Item = &str> {
        self.totals.keys().map(String::as_str)
    }

    pub fn has_store(&self, store: &str) -> bool {
        self.totals.contains_key(store) || self.series_of.contains_key(store)
    }

    /// The series of a store that have forecasts (active ones).
    pub fn series_of(&self, store: &str) -> &[String] {
        self.series_of.get(store).map_or(&[], Vec::as_slice)
    }

    /// The store's (or with `None` the chain's) sales of each of the `days`
    /// days up to the last day; `None` for a day without rows.
    pub fn daily(&self, store: Option<&str>, days: u32) -> Vec<(NaiveDate, Option<f64>)> {
        let Some(last) = self.last_day else {
            return Vec::new();
        };
        (0..days)
            .rev()
            .filter_map(|back| {
                let day = last.checked_sub_days(Days::new(u64::from(back)))?;
                Some((day, self.total(store, day, day)))
            })
            .collect()
    }

    /// The total from `from` to `to` (inclusive); `None` when no day of it
    /// has a row or it is outside the window.
    pub fn total(&self, store: Option<&str>, from: NaiveDate, to: NaiveDate) -> Option<f64> {
        let columns: Vec<&Vec<f64>> = match store {
            Some(s) => self.totals.get(s).into_iter().collect(),
            None => self.totals.values().collect(),
        };
        let mut sum = None;
        for column in columns {
            if let Some((part, _)) = self.span(column, from, to) {
                *sum.get_or_insert(0.0) += part;
            }
        }
        sum
    }

    /// One store's sum and days with rows from `from` to `to` (inclusive).
    fn span(&self, column: &[f64], from: NaiveDate, to: NaiveDate) -> Option<(f64, usize)> {
        let (first, last) = (self.first_day?, self.last_day?);
        if to < first || from > last || from > to {
            return None;
        }
        let from = usize::try_from((from.max(first) - first).num_days()).ok()?;
        let to = usize::try_from((to.min(last) - first).num_days()).ok()?;
        let values = column.get(from..=to)?.iter().filter(|v| !v.is_nan());
        let (sum, days) = values.fold((0.0, 0), |(s, d), v| (s + v, d + 1));
        (days > 0).then_some((sum, days))
    }

    /// The last `days` days up to the last day, against the `days` before
    /// and the same days [`YEAR_DAYS`] earlier, like for like (see
    /// [`Period`]). A comparison is `None` when the window does not reach
    /// back that far or no store is covered.
    pub fn period(&self, store: Option<&str>, days: u32) -> Period {
        let mut period = Period {
            days,
            total: None,
            previous: None,
            last_year: None,
        };
        let (Some(first), Some(last)) = (self.first_day, self.last_day) else {
            return period;
        };
        let span = u64::from(days.max(1));
        let back = |to: NaiveDate| -> Option<(NaiveDate, NaiveDate)> {
            let from = to.checked_sub_days(Days::new(span - 1))?;
            (from >= first).then_some((from, to))
        };
        let now = back(last);
        let previous = now.and_then(|(f, _)| back(f.pred_opt()?));
        let last_year = last.checked_sub_days(Days::new(YEAR_DAYS)).and_then(back);
        let columns: Vec<&Vec<f64>> = match store {
            Some(s) => self.totals.get(s).into_iter().collect(),
            None => self.totals.values().collect(),
        };
        let within = |column: &[f64], range: Option<(NaiveDate, NaiveDate)>| {
            range.and_then(|(f, t)| self.span(column, f, t))
        };
        for column in columns {
            let current = within(column, now);
            if let Some((sum, _)) = current {
                *period.total.get_or_insert(0.0) += sum;
            }
            compare(&mut period.previous, current, within(column, previous));
            compare(&mut period.last_year, current, within(column, last_year));
        }
        period
    }

    /// A store's forecast: its series' rows summed by target day.
    pub fn store_forecast(
        &self,
        store: &str,
        forecasts: &HashMap<String, Vec<ForecastRow>>,
    ) -> Vec<StoreForecast> {
        by_day(
            self.series_of(store)
                .iter()
                .filter_map(|s| forecasts.get(s))
                .flatten(),
        )
    }

    /// The chain's forecast: every store's series summed by target day.
    pub fn chain_forecast(&self, forecasts: &HashMap<String, Vec<ForecastRow>>) -> Vec<StoreForecast> {
        by_day(
            self.series_of
                .values()
                .flatten()
                .filter_map(|s| forecasts.get(s))
                .flatten(),
        )
    }

    /// The total forecast of a store (or the chain) over the first `days`
    /// target days.
    pub fn forecast_total(
        &self,
        store: Option<&str>,
        forecasts: &HashMap<String, Vec<ForecastRow>>,
        days: u32,
    ) -> Option<f64> {
        let last = self.last_day?.checked_add_days(Days::new(u64::from(days)))?;
        let stores: Vec<&str> = match store {
            Some(s) => vec![s],
            None => self.series_of.keys().map(String::as_str).collect(),
        };
        let mut sum = None;
        for s in stores {
            for day in self.store_forecast(s, forecasts) {
                if day.target_date <= last {
                    *sum.get_or_insert(0.0) += day.forecast;
                }
            }
        }
        sum
    }

    /// Scores the forecasts of an earlier data day (`frame`: a predictions
    /// partition with `series`, `target_date` and `forecast`) against the
    /// sales of the days since, store by store.
    pub fn score(
        &self,
        frame: &DataFrame,
        data_day: NaiveDate,
        model: &str,
    ) -> PolarsResult<Option<Accuracy>> {
        let Some(last) = self.last_day else {
            return Ok(None);
        };
        let store_of: HashMap<&str, &str> = self
            .series_of
            .iter()
            .flat_map(|(store, series)| series.iter().map(move |s| (s.as_str(), store.as_str())))
            .collect();
        let series = frame.column("series")?.str()?;
        let dates = frame.column("target_date")?.date()?.physical().clone();
        let forecast = frame.column("forecast")?.f64()?;
        let mut sums: BTreeMap<(&str, i32), f64> = BTreeMap::new();
        let mut forecast_series: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        let mut through = None;
        for i in 0..frame.height() {
            let (Some(name), Some(day), Some(value)) = (series.get(i), dates.get(i), forecast.get(i)) else {
                continue;
            };
            let Some(store) = store_of.get(name) else { continue };
            forecast_series.entry(store).or_default().insert(name);
            if day > days_from_date(last) {
                continue;
            }
            through = through.max(Some(day));
            *sums.entry((store, day)).or_insert(0.0) += value;
        }
        // The sales are a store's total over its series now: a store whose
        // series changed since (one added or gone) is not scored.
        sums.retain(|(store, _), _| {
            forecast_series
                .get(store)
                .is_some_and(|then| then.len() == self.series_of(store).len())
        });
        let Some(through) = through.and_then(crate::ingest::date_from_days) else {
            return Ok(None);
        };
        let mut by_store: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for ((store, day), predicted) in sums {
            let Some(date) = crate::ingest::date_from_days(day) else {
                continue;
            };
            let Some(actual) = self.total(Some(store), date, date) else {
                continue;
            };
            let e = by_store.entry(store.to_string()).or_insert((0.0, 0.0));
            e.0 += (predicted - actual).abs();
            e.1 += actual.abs();
        }
        let (errors, actuals) = by_store
            .values()
            .fold((0.0, 0.0), |(e, a), (x, y)| (e + x, a + y));
        Ok(Some(Accuracy {
            data_day,
            through,
            model_sha256: model.to_string(),
            by_store: by_store
                .into_iter()
                .filter(|(_, (_, a))| *a > 0.0)
                .map(|(s, (e, a))| (s, e / a))
                .collect(),
            chain: (actuals > 0.0).then(|| errors / actuals),
        }))
    }
}

/// Forecast rows summed by target day; a day's bounds only where every
/// row has them.
fn by_day<'a>(rows: impl Iterator<Item = &'a ForecastRow>) -> Vec<StoreForecast> {
    let mut days: BTreeMap<NaiveDate, StoreForecast> = BTreeMap::new();
    for row in rows {
        let day = days.entry(row.target_date).or_insert(StoreForecast {
            target_date: row.target_date,
            forecast: 0.0,
            lower: Some(0.0),
            upper: Some(0.0),
            planned: true,
        });
        day.forecast += row.forecast;
        day.lower = day.lower.zip(row.lower).map(|(a, b)| a + b);
        day.upper = day.upper.zip(row.upper).map(|(a, b)| a + b);
        day.planned &= row.planned;
    }
    days.into_values().collect()
}

#[cfg(test)]
mod tests;
