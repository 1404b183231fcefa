//! Live accuracy: the scores table's forecasts of the last 7 and 28 target
//! days, pooled per bucket of horizons (one day ahead, then the holdout's
//! buckets: 1-7, 8-14, ..., 1-H) into WAPE, bias and the share of actuals
//! inside the stored interval, over open days only, as the holdout scores
//! them, so the two are comparable. Also its markdown table beside a model's
//! holdout figures, shared by `monitor` and the retrain report.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::evaluate::{Metrics, metrics};
use crate::forecast::origins::{BucketMetrics, HorizonScores, bucket_ranges};
use crate::lake::Lake;
use crate::scores::{ScoreRow, ScoresError, read_scores};

/// The windows of target days live metrics are reported over.
pub const LIVE_WINDOWS: [u32; 2] = [7, 28];

/// Live metrics up to one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSummary {
    pub through: NaiveDate,
    pub horizon_days: u32,
    /// One per [`LIVE_WINDOWS`] entry, shortest first.
    pub windows: Vec<LiveWindow>,
}

/// The scores of the target days `first_day ..= last_day`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveWindow {
    pub days: u32,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Target days with scores.
    pub scored_days: usize,
    /// Scored rows on closed days (open flag 0): kept in the table, not in the metrics.
    pub closed_rows: usize,
    /// The model versions whose forecasts were scored.
    pub models: Vec<String>,
    /// Horizon 1 first, then the buckets of [`bucket_ranges`]; `coverage`
    /// is the share of rows with an interval whose actual is inside it.
    pub buckets: Vec<BucketMetrics>,
}

impl LiveSummary {
    /// The bucket `first..=last` of the window of `days` days.
    pub fn bucket(&self, days: u32, first: u32, last: u32) -> Option<&BucketMetrics> {
        self.windows
            .iter()
            .find(|w| w.days == days)?
            .buckets
            .iter()
            .find(|b| b.first == first && b.last == last)
    }
}

/// The buckets live metrics use: horizon 1, then the holdout's.
pub fn live_ranges(horizon: u32) -> Vec<(u32, u32)> {
    let mut ranges = vec![(1, 1)];
    ranges.extend(bucket_ranges(horizon).into_iter().filter(|r| *r != (1, 1)));
    ranges
}

/// The share of `rows` with an interval whose actual lies inside it
/// (bounds included, as the holdout's coverage counts); `None` when no row
/// has one.
pub fn coverage<'a>(rows: impl IntoIterator<Item = &'a ScoreRow>) -> Option<f64> {
    let (mut inside, mut all) = (0usize, 0usize);
    for row in rows {
        if let (Some(lower), Some(upper)) = (row.lower, row.upper) {
            all += 1;
            inside += usize::from(lower <= row.actual && row.actual <= upper);
        }
    }
    (all > 0).then(|| inside as f64 / all as f64)
}

/// The metrics of the window of `days` target days ending `through`, from
/// `rows` (rows outside it are ignored).
pub fn window_metrics(rows: &[ScoreRow], horizon: u32, through: NaiveDate, days: u32) -> LiveWindow {
    let first_day = through
        .checked_sub_days(Days::new(u64::from(days.max(1) - 1)))
        .unwrap_or(through);
    let in_window: Vec<&ScoreRow> = rows
        .iter()
        .filter(|r| (first_day..=through).contains(&r.target_date))
        .collect();
    let mut scored_days: Vec<NaiveDate> = in_window.iter().map(|r| r.target_date).collect();
    scored_days.sort();
    scored_days.dedup();
    let mut models: Vec<String> = in_window.iter().map(|r| r.model_sha256.clone()).collect();
    models.sort();
    models.dedup();
    let open: Vec<&ScoreRow> = in_window.iter().copied().filter(|r| r.open).collect();
    let buckets = live_ranges(horizon)
        .into_iter()
        .map(|(first, last)| {
            let chosen: Vec<&ScoreRow> = open
                .iter()
                .copied()
                .filter(|r| (first..=last).contains(&r.horizon))
                .collect();
            let actual: Vec<f64> = chosen.iter().map(|r| r.actual).collect();
            let predicted: Vec<f64> = chosen.iter().map(|r| r.forecast).collect();
            BucketMetrics {
                first,
                last,
                metrics: metrics(&actual, &predicted),
                coverage: coverage(chosen.iter().copied()),
            }
        })
        .collect();
    LiveWindow {
        days,
        first_day,
        last_day: through,
        scored_days: scored_days.len(),
        closed_rows: in_window.len() - open.len(),
        models,
        buckets,
    }
}

/// The live metrics of `model` over the [`LIVE_WINDOWS`] ending `through`,
/// read from the scores table; `None` when it has no scores in them.
pub fn live_summary(
    lake: &Lake,
    model: &str,
    series_keys: &[String],
    horizon: u32,
    through: NaiveDate,
) -> Result<Option<LiveSummary>, ScoresError> {
    let longest = LIVE_WINDOWS.iter().copied().max().unwrap_or(1);
    let first = through
        .checked_sub_days(Days::new(u64::from(longest - 1)))
        .unwrap_or(through);
    let rows = read_scores(lake, model, series_keys, (first, through))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(LiveSummary {
        through,
        horizon_days: horizon,
        windows: LIVE_WINDOWS
            .iter()
            .map(|&days| window_metrics(&rows, horizon, through, days))
            .collect(),
    }))
}

/// A model's holdout figures to set beside the live ones: per bucket when
/// its run report is at hand, else only pooled over 1-H.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutFigures {
    /// Whose: "champion `abcd1234`", "challenger ...".
    pub label: String,
    pub pooled: Metrics,
    pub horizons: Option<HorizonScores>,
}

impl HoldoutFigures {
    /// Its metrics over horizons `first..=last` of `horizon`.
    pub fn bucket(&self, first: u32, last: u32, horizon: u32) -> Option<&Metrics> {
        match &self.horizons {
            Some(h) if (first, last) == (1, 1) => h.one_day(),
            Some(h) => h
                .buckets
                .iter()
                .find(|b| (b.first, b.last) == (first, last))
                .map(|b| &b.metrics),
            None => (first == 1 && last == horizon).then_some(&self.pooled),
        }
    }
}

/// The live table in markdown: per bucket, the holdout WAPE (when given),
/// then WAPE, bias, interval coverage and rows for each window.
pub fn live_markdown(live: &LiveSummary, holdout: Option<&HoldoutFigures>) -> String {
    let mut md = format!(
        "## Live accuracy through {}: stored forecasts scored against the actuals as they landed (open days)\n\n",
        live.through
    );
    let mut header = "| horizons |".to_string();
    if let Some(h) = holdout {
        header += &format!(" holdout WAPE ({}) |", h.label);
    }
    for w in &live.windows {
        header += &format!(
            " WAPE {d} d | bias {d} d | coverage {d} d | rows {d} d |",
            d = w.days
        );
    }
    md += &header;
    md += "\n|---|";
    md += &"---:|".repeat(usize::from(holdout.is_some()) + 4 * live.windows.len());
    md += "\n";
    for (first, last) in live_ranges(live.horizon_days) {
        let name = if first == last {
            format!("{first}")
        } else {
            format!("{first}-{last}")
        };
        md += &format!("| {name} |");
        if let Some(h) = holdout {
            md += &h
                .bucket(first, last, live.horizon_days)
                .map_or(" - |".to_string(), |m| format!(" {:.4} |", m.wape));
        }
        for w in &live.windows {
            match w.buckets.iter().find(|b| (b.first, b.last) == (first, last)) {
                Some(b) if b.metrics.rows > 0 => {
                    md += &format!(
                        " {:.4} | {:+.4} | {} | {} |",
                        b.metrics.wape,
                        b.metrics.bias,
                        b.coverage
                            .map_or("-".to_string(), |c| format!("{:.1}%", 100.0 * c)),
                        b.metrics.rows
                    );
                }
                _ => md += " - | - | - | 0 |",
            }
        }
        md += "\n";
    }
    for w in &live.windows {
        md += &format!(
            "\n- last {} days ({} .. {}): {} days scored, {} closed-day rows left out, model versions {}",
            w.days,
            w.first_day,
            w.last_day,
            w.scored_days,
            w.closed_rows,
            w.models
                .iter()
                .map(|m| format!("`{}`", crate::digest::short(m)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md + "\n\n"
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
