//! Scoring on rolling forecast origins, the way forecasts are served: every
//! day from the one before a scored window to the one before its last day is
//! an origin; each origin's forecasts for the next `horizon` days that fall
//! on scored rows are scored. Metrics per horizon, pooled per week of
//! horizons (1-7, 8-14, ...) and over 1-H.

use chrono::NaiveDate;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::ForecastError;
use super::intervals::Calibration;
use super::recursive::{self, Feed, History, Path};
use crate::evaluate::{Metrics, metrics};
use crate::ingest::days_from_date;
use crate::models::Artifact;

/// Metrics of the forecasts made `horizon` days ahead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonMetrics {
    pub horizon: u32,
    pub metrics: Metrics,
}

/// Metrics pooled over the horizons `first..=last`, and the share of actuals
/// inside the forecast interval when one was calibrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketMetrics {
    pub first: u32,
    pub last: u32,
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
}

impl BucketMetrics {
    pub fn name(&self) -> String {
        format!("{}-{}", self.first, self.last)
    }
}

/// A model's scores on rolling origins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonScores {
    pub horizon_days: u32,
    pub first_origin: NaiveDate,
    pub last_origin: NaiveDate,
    pub per_horizon: Vec<HorizonMetrics>,
    /// 1-7, 8-14, ... and last 1-H (the promotion gate's).
    pub buckets: Vec<BucketMetrics>,
}

impl HorizonScores {
    /// Pooled over every horizon: what the promotion gate compares.
    pub fn pooled(&self) -> &Metrics {
        &self
            .buckets
            .last()
            .expect("scores always have the 1-H bucket")
            .metrics
    }

    /// The one-day-ahead metrics.
    pub fn one_day(&self) -> Option<&Metrics> {
        self.per_horizon.first().map(|h| &h.metrics)
    }
}

/// One scored forecast.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub horizon: u32,
    pub row: usize,
    pub forecast: f64,
    pub actual: f64,
}

/// Sorts scored forecasts by series name, target day and horizon: the one
/// order every metric, interval and noise estimate pools them in, so a
/// sharded retrain (whose shards forecast their own series) sums exactly
/// what a single-machine run sums.
pub fn canonical_order(scored: &mut [Scored], history: &History) {
    let ranks = history.name_ranks();
    scored.sort_unstable_by_key(|s| {
        let (series, day) = history.of_row(s.row);
        (ranks[series as usize], day, s.horizon)
    });
}

/// The horizon-1 forecast of each of `rows` among `scored`, in `rows`'
/// order: each row forecast from the day before with actuals only, i.e. its
/// one-day-ahead prediction as served, without asking the model again.
/// None when a row has none.
pub fn one_day_forecasts(scored: &[Scored], rows: &[usize]) -> Option<Vec<f64>> {
    let by_row: std::collections::HashMap<usize, f64> = scored
        .iter()
        .filter(|s| s.horizon == 1)
        .map(|s| (s.row, s.forecast))
        .collect();
    rows.iter().map(|row| by_row.get(row).copied()).collect()
}

/// The rolling origins of a scored window `first..=last` and horizon: each
/// day from `first - 1` to `last - 1`, for every series.
pub fn rolling_paths(history: &History, first: NaiveDate, last: NaiveDate) -> Vec<Path> {
    let (first, last) = (days_from_date(first), days_from_date(last));
    (first - 1..last)
        .flat_map(|origin| (0..history.series() as u32).map(move |series| Path { series, origin }))
        .collect()
}

/// The buckets of horizons metrics are pooled over: each week of horizons
/// (1-7, 8-14, ..., the last one cut at `horizon`), then 1-`horizon` when
/// there is more than one week (the promotion gate's pool is the last).
pub fn bucket_ranges(horizon: u32) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = (0..horizon.div_ceil(7))
        .map(|w| (7 * w + 1, (7 * w + 7).min(horizon)))
        .collect();
    if ranges.len() > 1 {
        ranges.push((1, horizon));
    }
    ranges
}

/// Metrics per horizon and per bucket of `scored`; coverage of the
/// intervals when a calibration is given.
pub fn summarize(
    scored: &[Scored],
    horizon: u32,
    (first, last): (NaiveDate, NaiveDate),
    calibration: Option<&Calibration>,
) -> HorizonScores {
    let pick = |lo: u32, hi: u32| -> (Vec<f64>, Vec<f64>, Option<f64>) {
        let chosen: Vec<&Scored> = scored.iter().filter(|s| (lo..=hi).contains(&s.horizon)).collect();
        let actual = chosen.iter().map(|s| s.actual).collect();
        let predicted = chosen.iter().map(|s| s.forecast).collect();
        let coverage = calibration.map(|c| c.coverage(chosen.iter().copied()));
        (actual, predicted, coverage)
    };
    let per_horizon = (1..=horizon)
        .map(|h| {
            let (actual, predicted, _) = pick(h, h);
            HorizonMetrics {
                horizon: h,
                metrics: metrics(&actual, &predicted),
            }
        })
        .collect();
    let buckets = bucket_ranges(horizon)
        .into_iter()
        .map(|(lo, hi)| {
            let (actual, predicted, coverage) = pick(lo, hi);
            BucketMetrics {
                first: lo,
                last: hi,
                metrics: metrics(&actual, &predicted),
                coverage,
            }
        })
        .collect();
    HorizonScores {
        horizon_days: horizon,
        first_origin: first.pred_opt().unwrap_or(first),
        last_origin: last.pred_opt().unwrap_or(last),
        per_horizon,
        buckets,
    }
}

/// Rolling-origin scoring of one window of a feature frame: its days, the
/// rows scored (open days), the target, the horizon.
#[derive(Clone, Copy)]
pub struct Scorer<'a> {
    pub features: &'a DataFrame,
    pub history: &'a History,
    /// The first and last day scored.
    pub days: (NaiveDate, NaiveDate),
    pub rows: &'a [usize],
    pub target: &'a [f64],
    pub horizon: u32,
}

impl Scorer<'_> {
    /// Every forecast of `artifact` (built for this frame) from the rolling
    /// origins of the scored days that lands on a scored row, in
    /// [`canonical_order`].
    pub fn scored(&self, artifact: &Artifact) -> Result<Vec<Scored>, ForecastError> {
        let (first, last) = self.days;
        let paths = rolling_paths(self.history, first, last);
        let mut wanted = vec![false; self.features.height()];
        for &row in self.rows {
            if let Some(w) = wanted.get_mut(row) {
                *w = true;
            }
        }
        // Forecasts past the scored days are never scored: not made.
        let until = (self.horizon, days_from_date(last));
        let forecasts = recursive::forecast_until(
            artifact,
            self.features,
            self.history,
            &paths,
            until,
            Feed::Forecasts,
        )?;
        let mut scored = forecasts
            .into_iter()
            .filter(|f| wanted[f.row])
            .map(|f| Scored {
                horizon: f.horizon,
                row: f.row,
                forecast: f.value,
                actual: self.target[f.row],
            })
            .collect::<Vec<_>>();
        canonical_order(&mut scored, self.history);
        Ok(scored)
    }

    /// The metrics of `artifact`'s forecasts, with its intervals' coverage.
    pub fn scores(
        &self,
        artifact: &Artifact,
        calibration: Option<&Calibration>,
    ) -> Result<HorizonScores, ForecastError> {
        Ok(summarize(
            &self.scored(artifact)?,
            self.horizon,
            self.days,
            calibration,
        ))
    }
}

/// A scored forecast of row 0, for tests.
#[cfg(test)]
pub(crate) fn scored(horizon: u32, forecast: f64, actual: f64) -> Scored {
    Scored {
        horizon,
        row: 0,
        forecast,
        actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_weeks_of_horizons_and_the_last_pools_all() {
        let day = NaiveDate::from_ymd_opt(2015, 7, 4).unwrap();
        let rows: Vec<Scored> = (1..=10).map(|h| scored(h, 10.0 + h as f64, 10.0)).collect();
        let s = summarize(&rows, 10, (day, day), None);
        let names: Vec<String> = s.buckets.iter().map(BucketMetrics::name).collect();
        assert_eq!(names, ["1-7", "8-10", "1-10"]);
        assert_eq!(s.per_horizon.len(), 10);
        // h=3: |13 - 10| / 10.
        assert!((s.per_horizon[2].metrics.wape - 0.3).abs() < 1e-12);
        // 1-7: (1+...+7) / 70.
        assert!((s.buckets[0].metrics.wape - 28.0 / 70.0).abs() < 1e-12);
        assert_eq!(s.pooled().rows, 10);
        let one = summarize(&rows[..1], 1, (day, day), None);
        assert_eq!(one.buckets.len(), 1, "one horizon: one bucket, the pool");
        let seven = summarize(&rows[..7], 7, (day, day), None);
        assert_eq!(seven.buckets.len(), 1, "one week is the pool");
        assert_eq!(seven.pooled().rows, 7);
    }
}
