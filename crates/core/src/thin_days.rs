//! Thin days: days of a window with far fewer series than its median day
//! (`validation.min_series_ratio`), as on a holiday when few stores report
//! or a late, partial day. Found once per window read; the newest day (the
//! one a run adds) is refused, older ones are reported, or refused with it
//! when `validation.history = "refuse"`. A refusal names every thin day at
//! once (up to [`LISTED`](crate::validate::LISTED)).

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ingest::date_from_days;
use crate::validate::{DataError, HistoryPolicy, Source, listed};

/// One thin day and its number of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinDay {
    pub day: NaiveDate,
    pub series: usize,
}

/// The thin days of one window and what they were measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinDays {
    /// The window's median number of series per day.
    pub median: usize,
    /// `validation.min_series_ratio`: a day with fewer series than this
    /// share of the median is thin.
    pub min_series_ratio: f64,
    /// Every thin day, oldest first.
    pub days: Vec<ThinDay>,
}

impl ThinDays {
    /// The days of `counts` (day and number of series, oldest first) with
    /// fewer series than `min_ratio` x their median; none in a window of
    /// fewer than two days.
    pub fn find(counts: &[(NaiveDate, usize)], min_ratio: f64) -> Self {
        let mut sorted: Vec<usize> = counts.iter().map(|(_, n)| *n).collect();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let days = if counts.len() < 2 {
            Vec::new()
        } else {
            counts
                .iter()
                .filter(|(_, n)| (*n as f64) < min_ratio * median as f64)
                .map(|&(day, series)| ThinDay { day, series })
                .collect()
        };
        Self {
            median,
            min_series_ratio: min_ratio,
            days,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// These thin days but `day`.
    fn without(&self, day: NaiveDate) -> Self {
        Self {
            days: self.days.iter().copied().filter(|d| d.day != day).collect(),
            ..self.clone()
        }
    }

    /// The days as `2015-07-30 (3 series), ...`: at most [`LISTED`](crate::validate::LISTED), then
    /// how many more.
    pub fn list(&self) -> String {
        let days: Vec<String> = self
            .days
            .iter()
            .map(|d| format!("{} ({} series)", d.day, d.series))
            .collect();
        listed(&days, ", ")
    }

    /// One sentence for a warning or a report: how many days, which, and
    /// against what.
    pub fn summary(&self) -> String {
        let n = self.days.len();
        format!(
            "{n} {} far fewer series than the window's median of {} (validation.min_series_ratio = {}): {}",
            if n == 1 { "day has" } else { "days have" },
            self.median,
            self.min_series_ratio,
            self.list()
        )
    }
}

/// Applies `validation.history` to the thin days of a window whose newest
/// day is `newest`: a thin newest day is refused (the error names its folder,
/// `folder(newest)`, its count, the median and the ratio), and with
/// [`HistoryPolicy::Refuse`] so are thin older days, all of them in one
/// error against `window` (the window's name). Otherwise the thin older days
/// are returned, to be reported.
pub fn judge(
    thin: &ThinDays,
    newest: NaiveDate,
    policy: HistoryPolicy,
    window: &str,
    folder: impl Fn(NaiveDate) -> String,
) -> Result<ThinDays, DataError> {
    let history = thin.without(newest);
    let newest_thin = thin.days.iter().find(|d| d.day == newest);
    match (policy, newest_thin) {
        (HistoryPolicy::Refuse, _) if !history.is_empty() => Err(refuse_all(
            thin,
            window,
            "validation.history = \"refuse\" refuses thin days anywhere in the window",
        )),
        (_, Some(day)) => {
            let mut problem = format!(
                "the newest day {newest} has only {} series, far fewer than the window's median of {} \
                 (validation.min_series_ratio = {})",
                day.series, thin.median, thin.min_series_ratio
            );
            if !history.is_empty() {
                problem += &format!("; older thin days, reported but not refused: {}", history.list());
            }
            Err(DataError::file(folder(newest), problem))
        }
        _ => Ok(history),
    }
}

/// One error naming every thin day (at most [`LISTED`](crate::validate::LISTED)), with `why`.
pub fn refuse_all(thin: &ThinDays, window: &str, why: &str) -> DataError {
    DataError::file(window, format!("{} ({why})", thin.summary()))
}

/// The number of rows (series) of each day of `frame`, oldest first.
pub fn series_per_day(
    frame: &DataFrame,
    date_column: &str,
    source: &Source,
) -> Result<Vec<(NaiveDate, usize)>, DataError> {
    let error = |e: PolarsError| source.error(e.to_string());
    let per_day = frame
        .clone()
        .lazy()
        .group_by([col(date_column)])
        .agg([len().alias("n")])
        .sort([date_column], Default::default())
        .collect()
        .map_err(error)?;
    let days = per_day
        .column(date_column)
        .and_then(|c| c.date().cloned())
        .map_err(error)?;
    let counts = per_day
        .column("n")
        .and_then(|c| c.u32().cloned())
        .map_err(error)?;
    Ok(days
        .physical()
        .iter()
        .zip(counts.iter())
        .filter_map(|(d, n)| Some((date_from_days(d?)?, n? as usize)))
        .collect())
}

/// Warns once about the thin older days of a window, if any.
pub fn warn(thin: &ThinDays) {
    if !thin.is_empty() {
        tracing::warn!(
            thin_days = thin.days.len(),
            "thin days in the history, reported but not refused: {}",
            thin.summary()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::LISTED;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, n).unwrap()
    }

    /// Days from 2024-01-01 with these numbers of series.
    fn counts(series: &[usize]) -> Vec<(NaiveDate, usize)> {
        let start = day(1);
        series
            .iter()
            .enumerate()
            .map(|(i, n)| (start + chrono::Days::new(i as u64), *n))
            .collect()
    }

    fn folder(d: NaiveDate) -> String {
        format!("sales/dt={d}/")
    }

    #[test]
    fn thin_days_are_found_against_the_median() {
        let thin = ThinDays::find(&counts(&[100, 100, 99, 30, 100]), 0.5);
        assert_eq!(thin.median, 100);
        assert_eq!(
            thin.days,
            [ThinDay {
                day: day(4),
                series: 30
            }]
        );
        assert!(ThinDays::find(&counts(&[100, 100, 99, 30, 100]), 0.2).is_empty());
        assert!(ThinDays::find(&counts(&[3]), 0.5).is_empty());
    }

    #[test]
    fn a_thin_history_day_is_reported_and_a_thin_newest_day_refused() {
        let thin = ThinDays::find(&counts(&[100, 3, 100, 100, 100]), 0.5);
        let history = judge(&thin, day(5), HistoryPolicy::Report, "w", folder).unwrap();
        assert_eq!(
            history.days,
            [ThinDay {
                day: day(2),
                series: 3
            }]
        );
        assert!(
            history.summary().contains("2024-01-02 (3 series)"),
            "{}",
            history.summary()
        );

        let thin = ThinDays::find(&counts(&[100, 3, 100, 100, 40]), 0.5);
        let err = judge(&thin, day(5), HistoryPolicy::Report, "w", folder).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("sales/dt=2024-01-05/:"), "{text}");
        assert!(
            text.contains("only 40 series")
                && text.contains("median of 100")
                && text.contains("min_series_ratio = 0.5")
                && text.contains("reported but not refused: 2024-01-02 (3 series)"),
            "{text}"
        );
    }

    #[test]
    fn refusing_history_names_every_thin_day_at_once() {
        let thin = ThinDays::find(&counts(&[100, 3, 100, 7, 100, 100]), 0.5);
        let err = judge(&thin, day(6), HistoryPolicy::Refuse, "window", folder).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("window: 2 days have"), "{text}");
        assert!(
            text.contains("2024-01-02 (3 series), 2024-01-04 (7 series)"),
            "{text}"
        );
        // A thin newest day alone is refused by its folder under either policy.
        let thin = ThinDays::find(&counts(&[100, 100, 100, 3]), 0.5);
        for policy in [HistoryPolicy::Report, HistoryPolicy::Refuse] {
            let err = judge(&thin, day(4), policy, "window", folder).unwrap_err();
            assert!(err.to_string().starts_with("sales/dt=2024-01-04/"), "{err}");
        }
        let none = ThinDays::find(&counts(&[100, 100, 100]), 0.5);
        assert!(
            judge(&none, day(3), HistoryPolicy::Refuse, "w", folder)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_long_list_stops_at_the_limit() {
        let mut series = vec![3; LISTED + 5];
        series.extend([100; 40]);
        let thin = ThinDays::find(&counts(&series), 0.5);
        assert_eq!(thin.days.len(), LISTED + 5);
        let list = thin.list();
        assert_eq!(list.matches(" series)").count(), LISTED, "{list}");
        assert!(list.ends_with("and 5 more"), "{list}");
    }
}
