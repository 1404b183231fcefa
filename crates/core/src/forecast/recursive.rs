//! The recursive forecaster: the one-day model applied H times, each step's
//! forecasts becoming the next steps' history.
//!
//! A forecast of target day t = o + h made at origin o sees actuals of days
//! up to o only, and its own forecasts for the days o+1 .. t-1; everything
//! else in its row (calendar, covariates, attributes) is known in advance.
//! The history features (lags, rolling means, series mean) of each step are
//! computed here with the same definitions as `features::build_features`,
//! which a test checks: fed the actuals instead of forecasts, this file
//! reproduces `build_features`'s columns.

use std::collections::HashMap;

use polars::prelude::*;

use super::ForecastError;
use crate::features::{FeatureSettings, SERIES_MEAN, lag_name, rolling_mean_name};
use crate::mapping::DataMapping;
use crate::models::Artifact;
use crate::train::frame_rows;

/// No frame row.
const NONE: u32 = u32::MAX;

/// Every series' history, per calendar day, read from a feature frame: the
/// target where it is history (NaN on closed and missing days, as
/// `build_features` treats them), and its prefix sums for the series mean.
pub struct History {
    first_day: i32,
    days: usize,
    /// Series x days, row-major; NaN = no history.
    values: Vec<f64>,
    /// Series x (days + 1): sum and count of the history before each day.
    prefix_sum: Vec<f64>,
    prefix_count: Vec<u32>,
    /// Per frame row: its series and day.
    row_series: Vec<u32>,
    row_day: Vec<i32>,
    /// Series x days, row-major: the frame row of each (series, day), or NONE.
    rows: Vec<u32>,
    series: usize,
    /// Series names (keys joined with "/") by id, and back.
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl History {
    /// Reads the frame's days, series and history (target, nulled on closed
    /// days when the mapping has an open flag).
    pub fn new(features: &DataFrame, mapping: &DataMapping) -> Result<Self, ForecastError> {
        Self::split(features, features, mapping)
    }

    /// The history of `values` (a frame with the date, keys, target and open
    /// flag), indexing the rows of another frame, `rows` (the feature rows
    /// to forecast): prediction builds features for the future days only.
    pub fn split(
        values: &DataFrame,
        rows_of: &DataFrame,
        mapping: &DataMapping,
    ) -> Result<Self, ForecastError> {
        let column = |frame: &DataFrame, name: &str| -> Result<Column, ForecastError> {
            frame
                .column(name)
                .cloned()
                .map_err(|_| ForecastError::Missing(name.to_string()))
        };
        let mut ids: HashMap<String, u32> = HashMap::new();
        let (value_series, value_day) = index(values, mapping, &mut ids)?;
        let (row_series, row_day) = if std::ptr::eq(values, rows_of) {
            (value_series.clone(), value_day.clone())
        } else {
            index(rows_of, mapping, &mut ids)?
        };
        let target = column(values, &mapping.target)?.cast(&DataType::Float64)?;
        let target = target.f64()?;
        let open = match &mapping.open_flag {
            Some(flag) => Some(column(values, flag)?.f64()?.clone()),
            None => None,
        };
        let known = value_day
            .iter()
            .chain(&row_day)
            .copied()
            .filter(|&d| d != i32::MIN);
        let first_day = known.clone().min().unwrap_or(0);
        let last_day = known.max().unwrap_or(-1);
        let days = (last_day - first_day + 1).max(0) as usize;
        let series = ids.len();
        let mut values = vec![f64::NAN; series * days];
        let mut rows = vec![NONE; series * days];
        for (i, (&s, &day)) in value_series.iter().zip(&value_day).enumerate() {
            if day == i32::MIN {
                continue;
            }
            let closed = open.as_ref().is_some_and(|o| o.get(i) == Some(0.0));
            if let (false, Some(v)) = (closed, target.get(i)) {
                values[s as usize * days + (day - first_day) as usize] = v;
            }
        }
        for (i, (&s, &day)) in row_series.iter().zip(&row_day).enumerate() {
            if day != i32::MIN {
                rows[s as usize * days + (day - first_day) as usize] = i as u32;
            }
        }
        let mut names = vec![String::new(); series];
        for (name, &id) in &ids {
            names[id as usize] = name.clone();
        }
        let mut prefix_sum = vec![0.0; series * (days + 1)];
        let mut prefix_count = vec![0u32; series * (days + 1)];
        for s in 0..series {
            let (base, out) = (s * days, s * (days + 1));
            for d in 0..days {
                let v = values[base + d];
                let present = !v.is_nan();
                prefix_sum[out + d + 1] = prefix_sum[out + d] + if present { v } else { 0.0 };
                prefix_count[out + d + 1] = prefix_count[out + d] + u32::from(present);
            }
        }
        Ok(Self {
            first_day,
            days,
            values,
            prefix_sum,
            prefix_count,
            row_series,
            row_day,
            rows,
            series,
            names,
            ids,
        })
    }

    /// The number of series.
    pub fn series(&self) -> usize {
        self.series
    }

    /// A series' name: its keys joined with "/".
    pub fn name(&self, series: u32) -> &str {
        &self.names[series as usize]
    }

    /// Each series' rank among the names sorted as strings, by id: the
    /// order forecasts are pooled in (`origins::canonical_order`), the same
    /// whatever other series a frame holds.
    pub fn name_ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.series as u32).collect();
        order.sort_unstable_by(|&a, &b| self.name(a).cmp(self.name(b)));
        let mut ranks = vec![0u32; self.series];
        for (rank, &id) in order.iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
    }

    /// The id of a series by name.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The frame row of a series on a day, if there is one.
    pub fn row(&self, series: u32, day: i32) -> Option<usize> {
        let offset = day - self.first_day;
        if offset < 0 || offset as usize >= self.days {
            return None;
        }
        let row = self.rows[series as usize * self.days + offset as usize];
        (row != NONE).then_some(row as usize)
    }

    /// The series and day of a frame row.
    pub fn of_row(&self, row: usize) -> (u32, i32) {
        (self.row_series[row], self.row_day[row])
    }

    pub fn actual(&self, series: u32, day: i32) -> f64 {
        let offset = day - self.first_day;
        if offset < 0 || offset as usize >= self.days {
            return f64::NAN;
        }
        self.values[series as usize * self.days + offset as usize]
    }

    /// Sum and count of the history of days before `day` (clamped to the frame).
    fn before(&self, series: u32, day: i32) -> (f64, u32) {
        let i = (day - self.first_day).clamp(0, self.days as i32) as usize;
        let at = series as usize * (self.days + 1) + i;
        (self.prefix_sum[at], self.prefix_count[at])
    }
}

/// The series id (by name, added to `ids` when new) and day number of every
/// row of `frame` (i32::MIN for a missing date).
pub(crate) fn index(
    frame: &DataFrame,
    mapping: &DataMapping,
    ids: &mut HashMap<String, u32>,
) -> Result<(Vec<u32>, Vec<i32>), ForecastError> {
    let column = |name: &str| {
        frame
            .column(name)
            .map_err(|_| ForecastError::Missing(name.to_string()))
    };
    let dates = column(&mapping.date_column)?.date()?.physical().clone();
    let keys: Vec<StringChunked> = mapping
        .series_keys
        .iter()
        .map(|k| Ok(column(k)?.str()?.clone()))
        .collect::<Result<_, ForecastError>>()?;
    let mut series = Vec::with_capacity(frame.height());
    let mut name = String::new();
    for i in 0..frame.height() {
        // One allocation per series, not per row.
        name.clear();
        push_series_name(&mut name, &keys, i);
        let id = match ids.get(name.as_str()) {
            Some(&id) => id,
            None => {
                let id = ids.len() as u32;
                ids.insert(name.clone(), id);
                id
            }
        };
        series.push(id);
    }
    let days = dates.iter().map(|d| d.unwrap_or(i32::MIN)).collect();
    Ok((series, days))
}

/// The series keys of row `i` joined with "/" (as reports name series).
pub fn series_name(keys: &[StringChunked], i: usize) -> String {
    let mut name = String::new();
    push_series_name(&mut name, keys, i);
    name
}

fn push_series_name(name: &mut String, keys: &[StringChunked], i: usize) {
    for (j, k) in keys.iter().enumerate() {
        if j > 0 {
            name.push('/');
        }
        name.push_str(k.get(i).unwrap_or_default());
    }
}

/// One forecast path: a series forecast from one origin.
#[derive(Debug, Clone, Copy)]
pub struct Path {
    pub series: u32,
    /// The origin: the newest day whose actuals the path sees.
    pub origin: i32,
}

/// One forecast: the path, how far ahead, the feature-frame row of the
/// target day, and the value (0 on closed days).
#[derive(Debug, Clone, Copy)]
pub struct Forecast {
    pub path: usize,
    pub horizon: u32,
    pub row: usize,
    pub value: f64,
}

/// How a path's earlier steps feed later ones: forecasts (the real thing)
/// or the actuals (teacher forcing, for the test that these features equal
/// `build_features`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Forecasts,
    Actuals,
}

/// Forecasts every path for horizons 1..=`horizon`, on each target day that
/// has a row in the feature frame (`features`, built with the artifact's
/// mapping and feature settings; `history` read from it).
pub fn forecast(
    artifact: &Artifact,
    features: &DataFrame,
    history: &History,
    paths: &[Path],
    horizon: u32,
    feed: Feed,
) -> Result<Vec<Forecast>, ForecastError> {
    forecast_until(artifact, features, history, paths, (horizon, i32::MAX), feed)
}

/// [`forecast`], for target days up to `last_day` (a day number) only.
/// Closed days (open flag 0) are forecast 0 without asking the model.
pub fn forecast_until(
    artifact: &Artifact,
    features: &DataFrame,
    history: &History,
    paths: &[Path],
    (horizon, last_day): (u32, i32),
    feed: Feed,
) -> Result<Vec<Forecast>, ForecastError> {
    let h_max = horizon as usize;
    // Each path's values for days origin+1 .. origin+horizon (NaN = no history).
    let mut fed = vec![f64::NAN; paths.len() * h_max];
    let mut out = Vec::new();
    let open = match &artifact.mapping.open_flag {
        Some(flag) => Some(features.column(flag)?.f64()?.clone()),
        None => None,
    };
    let closed = |row: usize| open.as_ref().is_some_and(|o| o.get(row) == Some(0.0));
    for h in 1..=horizon {
        let (mut step, mut shut) = (Vec::new(), Vec::new());
        for (p, path) in paths.iter().enumerate() {
            let day = path.origin + h as i32;
            if day > last_day {
                continue;
            }
            if let Some(row) = history.row(path.series, day) {
                if closed(row) {
                    shut.push((p, row))
                } else {
                    step.push((p, row))
                }
            }
        }
        // A closed day is 0 and no history (its feed stays NaN).
        out.extend(shut.iter().map(|&(path, row)| Forecast {
            path,
            horizon: h,
            row,
            value: 0.0,
        }));
        if step.is_empty() {
            continue;
        }
        let rows: Vec<usize> = step.iter().map(|&(_, row)| row).collect();
        let frame = with_history_features(
            &artifact.features,
            features,
            history,
            paths,
            &fed,
            h_max,
            &step,
            &rows,
        )?;
        let predicted = artifact.predict(&frame)?;
        for (&(p, row), &value) in step.iter().zip(&predicted) {
            let (series, day) = history.of_row(row);
            fed[p * h_max + h as usize - 1] = match feed {
                Feed::Forecasts => value,
                Feed::Actuals => history.actual(series, day),
            };
            out.push(Forecast {
                path: p,
                horizon: h,
                row,
                value,
            });
        }
    }
    Ok(out)
}

/// The frame rows of one step with their history features recomputed from
/// each path's view: actuals up to its origin, its own feed after it.
#[allow(clippy::too_many_arguments)]
fn with_history_features(
    settings: &FeatureSettings,
    features: &DataFrame,
    history: &History,
    paths: &[Path],
    fed: &[f64],
    h_max: usize,
    step: &[(usize, usize)],
    rows: &[usize],
) -> Result<DataFrame, ForecastError> {
    let seen = |p: usize, day: i32| -> f64 {
        let Path { series, origin } = paths[p];
        if day <= origin {
            history.actual(series, day)
        } else {
            fed[p * h_max + (day - origin - 1) as usize]
        }
    };
    let mut frame = frame_rows(features, rows)?;
    let target_day = |row: usize| history.of_row(row).1;
    let some = |v: f64| (!v.is_nan()).then_some(v);
    // Sum and count of the values a path sees on `days`, added to `start`.
    let add_seen = |p: usize, days: std::ops::Range<i32>, start: (f64, u32)| {
        days.map(|day| seen(p, day))
            .filter(|v| !v.is_nan())
            .fold(start, |(sum, count), v| (sum + v, count + 1))
    };
    let mean = |(sum, count): (f64, u32)| (count > 0).then(|| sum / count as f64);
    for &k in &settings.lags {
        let values: Vec<Option<f64>> = step
            .iter()
            .map(|&(p, row)| some(seen(p, target_day(row) - k as i32)))
            .collect();
        frame.with_column(Column::new(lag_name(k).into(), values))?;
    }
    for &k in &settings.rolling_means {
        let values: Vec<Option<f64>> = step
            .iter()
            .map(|&(p, row)| {
                let t = target_day(row);
                mean(add_seen(p, t - k as i32..t, (0.0, 0)))
            })
            .collect();
        frame.with_column(Column::new(rolling_mean_name(k).into(), values))?;
    }
    let means: Vec<Option<f64>> = step
        .iter()
        .map(|&(p, row)| {
            let Path { series, origin } = paths[p];
            let t = target_day(row);
            mean(add_seen(
                p,
                origin + 1..t,
                history.before(series, t.min(origin + 1)),
            ))
        })
        .collect();
    frame.with_column(Column::new(SERIES_MEAN.into(), means))?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::build_features;

    /// Two series over 60 days, with closed days, a gap and a late start.
    fn sales() -> DataFrame {
        let start = crate::ingest::days_from_date(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let (mut dates, mut stores, mut values, mut open) = (vec![], vec![], vec![], vec![]);
        for (store, from) in [("a", 0), ("b", 9)] {
            for d in from..60 {
                if store == "a" && (30..33).contains(&d) {
                    continue; // a gap: no rows
                }
                dates.push(start + d);
                stores.push(store);
                let closed = d % 7 == 6;
                values.push(if closed {
                    0.0
                } else {
                    100.0 + ((d * 37 + store.len() as i32 * 11) % 50) as f64
                });
                open.push(if closed { 0.0 } else { 1.0 });
            }
        }
        let n = dates.len();
        DataFrame::new(
            n,
            vec![
                Column::new("date".into(), dates).cast(&DataType::Date).unwrap(),
                Column::new("store".into(), stores),
                Column::new("sales".into(), values),
                Column::new("open".into(), open),
            ],
        )
        .unwrap()
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

    /// Fed the actuals, the recursive features of every (origin, horizon)
    /// equal `build_features`'s: one definition of the features.
    #[test]
    fn teacher_forced_features_equal_build_features() {
        let settings = FeatureSettings::default();
        let features = build_features(&sales(), &Default::default(), &mapping(), &settings).unwrap();
        let history = History::new(&features, &mapping()).unwrap();
        let h_max = 14usize;
        let start = crate::ingest::days_from_date(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let paths: Vec<Path> = (20..45)
            .flat_map(|o| {
                (0..history.series() as u32).map(move |series| Path {
                    series,
                    origin: start + o,
                })
            })
            .collect();
        let mut fed = vec![f64::NAN; paths.len() * h_max];
        for (p, path) in paths.iter().enumerate() {
            for h in 1..=h_max {
                fed[p * h_max + h - 1] = history.actual(path.series, path.origin + h as i32);
            }
        }
        let mut checked = 0;
        for h in 1..=h_max as i32 {
            let step: Vec<(usize, usize)> = paths
                .iter()
                .enumerate()
                .filter_map(|(p, path)| history.row(path.series, path.origin + h).map(|row| (p, row)))
                .collect();
            let rows: Vec<usize> = step.iter().map(|&(_, r)| r).collect();
            let ours =
                with_history_features(&settings, &features, &history, &paths, &fed, h_max, &step, &rows)
                    .unwrap();
            let theirs = frame_rows(&features, &rows).unwrap();
            let mut names: Vec<String> = settings.lags.iter().map(|&k| lag_name(k)).collect();
            names.extend(settings.rolling_means.iter().map(|&k| rolling_mean_name(k)));
            names.push(SERIES_MEAN.into());
            for name in &names {
                let a = ours.column(name).unwrap().f64().unwrap().clone();
                let b = theirs.column(name).unwrap().f64().unwrap().clone();
                for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                    match (x, y) {
                        (Some(x), Some(y)) => assert!(
                            (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                            "{name} h={h} row {i}: {x} vs {y}"
                        ),
                        (None, None) => {}
                        _ => panic!("{name} h={h} row {i}: {x:?} vs {y:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 4000, "{checked}");
    }

    /// Fed forecasts, a path sees no actual after its origin: changing
    /// actuals after the origin changes none of its features.
    #[test]
    fn forecast_paths_see_no_actual_after_their_origin() {
        let settings = FeatureSettings::default();
        let base = sales();
        let mut changed = base.clone();
        let start = crate::ingest::days_from_date(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let origin = start + 40;
        let dates = changed.column("date").unwrap().date().unwrap().physical().clone();
        let bumped: Vec<f64> = changed
            .column("sales")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .zip(dates.iter())
            .map(|(v, d)| {
                if d.unwrap() > origin {
                    v.unwrap() * 3.0 + 7.0
                } else {
                    v.unwrap()
                }
            })
            .collect();
        changed.with_column(Column::new("sales".into(), bumped)).unwrap();
        let run = |df: &DataFrame| {
            let features = build_features(df, &Default::default(), &mapping(), &settings).unwrap();
            let history = History::new(&features, &mapping()).unwrap();
            let paths: Vec<Path> = (0..2).map(|series| Path { series, origin }).collect();
            // Feed a fixed value as "forecast" so only the actuals can differ.
            let fed = vec![123.0; paths.len() * 14];
            let mut out = vec![];
            for h in 1..=14 {
                let step: Vec<(usize, usize)> = paths
                    .iter()
                    .enumerate()
                    .filter_map(|(p, path)| history.row(path.series, path.origin + h).map(|row| (p, row)))
                    .collect();
                let rows: Vec<usize> = step.iter().map(|&(_, r)| r).collect();
                let f = with_history_features(&settings, &features, &history, &paths, &fed, 14, &step, &rows)
                    .unwrap();
                out.push(
                    f.select([
                        "lag_1",
                        "lag_7",
                        "lag_14",
                        "lag_28",
                        "rolling_mean_7",
                        "rolling_mean_28",
                        SERIES_MEAN,
                    ])
                    .unwrap(),
                );
            }
            out
        };
        let (a, b) = (run(&base), run(&changed));
        assert_eq!(a.len(), 14);
        for (x, y) in a.iter().zip(&b) {
            assert!(x.height() > 0);
            assert!(x.equals_missing(y), "{x}\n{y}");
        }
    }
}
