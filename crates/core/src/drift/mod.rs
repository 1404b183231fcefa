//! Drift of a run's newest data against its training window, per feature and
//! for the target: the newest day against the window's days of the same
//! weekday (so weekly seasonality is not drift), and the newest 7 days against
//! the whole window. Each comparison gives the PSI over 10 bins cut at the
//! reference's quantiles (categories: the 9 commonest in the reference and
//! "other") and, for numbers, the Kolmogorov-Smirnov distance. The alert
//! thresholds come from the window's own variation: the same statistic for
//! each of its days (each 7-day block) against the rest of the window, mean +
//! 2 (warn) and + 3 (alert) standard deviations, never below PSI 0.1 and the
//! KS distance significant at 1%; with fewer than [`MIN_DAYS`] such days the
//! documented fallback (PSI 0.1 / 0.25, KS significant at 1% / 0.1%) applies.
//!
//! Rows of closed days (the mapping's open flag 0) are left out of every
//! comparison but the open flag's own: they are neither trained on nor scored.
//! Not compared: the calendar features (a function of the date: the newest
//! day's `day_of_month` is one value, always "unlike" the window) and the
//! series keys (identifiers; which series report is the validation's and the
//! doctor's business, not a distribution). Missing values are left out.
//! Each day counts at most [`ROWS_PER_DAY`] rows, the day's rows with the
//! smallest `sampling::row_hashes` (seed [`SAMPLE_SEED`]): deterministic, fast
//! on large lakes, and the same rows whatever other series a frame holds, so
//! a sharded retrain's fit measures the drift a single run measures from the
//! union of the shards' own picks ([`picked_rows`]).

pub mod stats;

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::{DAY_OF_MONTH, DAY_OF_WEEK, FeatureLayout, MONTH, WEEK_OF_YEAR};
use crate::ingest::days_from_date;
use crate::mapping::DataMapping;
use crate::window::Window;
use stats::{
    Threshold, bin_counts, ks, ks_against_rest, ks_fallback, learned, psi, psi_fallback, quantile_edges,
};

/// Bins of the PSI.
pub const BINS: usize = 10;
/// The most rows of one day a comparison uses.
pub const ROWS_PER_DAY: usize = 1000;
/// The seed of the rows' hashes that pick each day's rows.
pub const SAMPLE_SEED: u64 = 0;
/// The fewest reference days (7-day blocks) the learned thresholds need.
pub const MIN_DAYS: usize = 8;
/// Standard deviations above the mean of the window's own values.
pub const WARN_SD: f64 = 2.0;
pub const ALERT_SD: f64 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Alert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Target,
    Numeric,
    Categorical,
}

/// Where a comparison's thresholds came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The window's own days (or 7-day blocks), each against the rest.
    Window,
    /// Too few of them: the documented fallback.
    Fallback,
}

/// One comparison of new rows against reference rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub rows: usize,
    pub reference_rows: usize,
    /// Reference days (or blocks) whose own statistics set the thresholds.
    pub reference_days: usize,
    pub psi: f64,
    pub psi_threshold: Threshold,
    /// None for a categorical feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_threshold: Option<Threshold>,
    pub thresholds_from: Source,
    pub status: Status,
}

impl Comparison {
    /// The larger of PSI and KS over their alert thresholds (1 or more: an alert).
    pub fn severity(&self) -> f64 {
        let ratio = |v: f64, t: f64| if t > 0.0 { v / t } else { 0.0 };
        let ks = match (self.ks, self.ks_threshold) {
            (Some(v), Some(t)) => ratio(v, t.alert),
            _ => 0.0,
        };
        ratio(self.psi, self.psi_threshold.alert).max(ks)
    }

    fn numbers(&self) -> Vec<f64> {
        let mut all = vec![self.psi, self.psi_threshold.warn, self.psi_threshold.alert];
        all.extend(self.ks);
        all.extend(self.ks_threshold.iter().flat_map(|t| [t.warn, t.alert]));
        all
    }

    fn describe(&self, what: &str) -> String {
        let mut text = format!(
            "{what} PSI {:.3} (alert {:.3})",
            self.psi, self.psi_threshold.alert
        );
        if let (Some(v), Some(t)) = (self.ks, self.ks_threshold) {
            text += &format!(", KS {v:.3} (alert {:.3})", t.alert);
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub kind: Kind,
    /// The newest day against the window's days of its weekday.
    pub day: Option<Comparison>,
    /// The newest 7 days against the window.
    pub week: Option<Comparison>,
    pub status: Status,
}

/// The drift of one run's newest data: what the report and the manifest keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub newest_day: NaiveDate,
    /// The training window the newest data are compared with.
    pub reference_first_day: NaiveDate,
    pub reference_last_day: NaiveDate,
    pub features: Vec<FeatureDrift>,
    /// Features with an alert, in the order compared.
    pub alerts: Vec<String>,
    /// The largest statistic over its alert threshold (1 or more: an alert):
    /// the one "max drift" figure for metrics and alarms.
    pub max_drift: f64,
    /// The largest PSI of any comparison.
    pub max_psi: f64,
    /// Model inputs not compared (calendar features, series keys).
    pub skipped: Vec<String>,
}

impl DriftReport {
    /// Every number is finite (so the JSON reads back as written).
    pub fn is_finite(&self) -> bool {
        self.max_drift.is_finite()
            && self.max_psi.is_finite()
            && self
                .features
                .iter()
                .flat_map(|f| f.day.iter().chain(&f.week))
                .flat_map(Comparison::numbers)
                .all(f64::is_finite)
    }

    /// The features with an alert and why, for a decision's reason; None without one.
    pub fn alert_summary(&self) -> Option<String> {
        let parts: Vec<String> = self
            .features
            .iter()
            .filter(|f| f.status == Status::Alert)
            .map(|f| {
                let mut why = Vec::new();
                if let Some(c) = f.day.as_ref().filter(|c| c.status == Status::Alert) {
                    why.push(c.describe(&format!("day {}", self.newest_day)));
                }
                if let Some(c) = f.week.as_ref().filter(|c| c.status == Status::Alert) {
                    why.push(c.describe("last 7 days"));
                }
                format!("{} ({})", f.feature, why.join("; "))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The values of one feature, per day of the window (offsets from its first
/// day), sorted; categories coded as bin numbers.
struct PerDay {
    values: Vec<Vec<f64>>,
    kind: Kind,
}

/// Measures the drift of `window`'s newest day and 7 days in `features`
/// (the frame of `build_features`).
pub fn measure(
    features: &DataFrame,
    mapping: &DataMapping,
    layout: &FeatureLayout,
    window: &Window,
) -> PolarsResult<DriftReport> {
    let (rows_of_day, open_rows) = picks(features, mapping, window)?;
    let days = rows_of_day.len();
    let reference_end = (window.trained_through() - window.first_day).num_days().max(0) as usize;
    let calendar = [DAY_OF_WEEK, DAY_OF_MONTH, MONTH, WEEK_OF_YEAR];
    let mut compared = vec![(mapping.target.clone(), Kind::Target)];
    let mut skipped = Vec::new();
    for name in &layout.numeric {
        if calendar.contains(&name.as_str()) {
            skipped.push(name.clone());
        } else {
            compared.push((name.clone(), Kind::Numeric));
        }
    }
    for name in &layout.categorical {
        if mapping.series_keys.contains(name) {
            skipped.push(name.clone());
        } else {
            compared.push((name.clone(), Kind::Categorical));
        }
    }
    let weekday = |offset: usize| (window.first_day + chrono::Days::new(offset as u64)).weekday();
    let newest = days - 1;
    let like: Vec<Vec<usize>> = (0..=reference_end.min(newest.saturating_sub(1)))
        .filter(|&d| weekday(d) == weekday(newest))
        .map(|d| vec![d])
        .collect();
    // The newest 7 days against the window's days before them, in 7-day
    // blocks ending the day before the holdout (or before the newest 7 days).
    let week_start = days.saturating_sub(7);
    let end = (reference_end + 1).min(week_start);
    let blocks: Vec<Vec<usize>> = (0..end / 7)
        .map(|b| (end - 7 * (b + 1)..end - 7 * b).collect())
        .collect();
    let last_week: Vec<usize> = (week_start..days).collect();
    // Each feature on its own (one core each; the order kept).
    let out = compared
        .into_par_iter()
        .map(|(name, kind)| {
            let column = features.column(&name)?;
            let rows = match &open_rows {
                Some(open) if mapping.open_flag.as_ref() != Some(&name) => open,
                _ => &rows_of_day,
            };
            let per_day = match kind {
                Kind::Categorical => categories(column, rows, reference_end)?,
                _ => numbers(column, rows, kind)?,
            };
            let day = compare(&per_day, &like, &[newest]);
            let week = compare(&per_day, &blocks, &last_week);
            let status = day
                .iter()
                .chain(&week)
                .map(|c| c.status)
                .max()
                .unwrap_or(Status::Ok);
            Ok(FeatureDrift {
                feature: name,
                kind,
                day,
                week,
                status,
            })
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    let comparisons = || out.iter().flat_map(|f| f.day.iter().chain(&f.week));
    Ok(DriftReport {
        newest_day: window.last_day,
        reference_first_day: window.first_day,
        reference_last_day: window.trained_through(),
        max_drift: comparisons().map(Comparison::severity).fold(0.0, f64::max),
        max_psi: comparisons().map(|c| c.psi).fold(0.0, f64::max),
        alerts: out
            .iter()
            .filter(|f| f.status == Status::Alert)
            .map(|f| f.feature.clone())
            .collect(),
        features: out,
        skipped,
    })
}

/// Each window day's picked rows (at most [`ROWS_PER_DAY`], ascending), and
/// with an open flag, each day's picked open rows (open flag not 0).
type Picks = (Vec<Vec<usize>>, Option<Vec<Vec<usize>>>);

fn picks(features: &DataFrame, mapping: &DataMapping, window: &Window) -> PolarsResult<Picks> {
    let days = window.days().max(1) as usize;
    let first = days_from_date(window.first_day);
    let offsets = features
        .column(&mapping.date_column)?
        .cast(&DataType::Int32)?
        .i32()?
        .clone();
    let mut rows_of_day: Vec<Vec<usize>> = vec![Vec::new(); days];
    for (row, day) in offsets.iter().enumerate() {
        if let Some(offset) = day.map(|d| d - first).filter(|&o| o >= 0 && (o as usize) < days) {
            rows_of_day[offset as usize].push(row);
        }
    }
    let crowded = rows_of_day.iter().any(|rows| rows.len() > ROWS_PER_DAY);
    let hashes = if crowded {
        crate::sampling::row_hashes(features, mapping, SAMPLE_SEED)?
    } else {
        Vec::new()
    };
    let pick = |rows: &[usize]| crate::sampling::bottom_k(rows, &hashes, ROWS_PER_DAY);
    // Closed days (open flag 0) are neither trained on nor scored: every
    // feature but the open flag itself is compared on open rows only, so a
    // holiday's closed stores are not target drift.
    let open_rows = match &mapping.open_flag {
        Some(flag) => {
            let open = features.column(flag)?.cast(&DataType::Float64)?;
            let open = open.f64()?;
            Some(
                rows_of_day
                    .iter()
                    .map(|rows| {
                        let kept: Vec<usize> = rows
                            .iter()
                            .copied()
                            .filter(|&r| open.get(r) != Some(0.0))
                            .collect();
                        pick(&kept)
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let rows_of_day = rows_of_day.iter().map(|rows| pick(rows)).collect();
    Ok((rows_of_day, open_rows))
}

/// The rows of `features` that [`measure`] looks at (each day's picks, and
/// the open picks), ascending: a frame of these rows alone measures the same
/// drift as the whole frame.
pub fn picked_rows(features: &DataFrame, mapping: &DataMapping, window: &Window) -> PolarsResult<Vec<usize>> {
    let (all, open) = picks(features, mapping, window)?;
    let mut rows: Vec<usize> = all
        .into_iter()
        .chain(open.into_iter().flatten())
        .flatten()
        .collect();
    rows.sort_unstable();
    rows.dedup();
    Ok(rows)
}

fn numbers(column: &Column, rows_of_day: &[Vec<usize>], kind: Kind) -> PolarsResult<PerDay> {
    let column = column.cast(&DataType::Float64)?;
    let values = column.f64()?;
    let values = rows_of_day
        .iter()
        .map(|rows| {
            let mut day: Vec<f64> = rows
                .iter()
                .filter_map(|&r| values.get(r))
                .filter(|v| v.is_finite())
                .collect();
            day.sort_by(f64::total_cmp);
            day
        })
        .collect();
    Ok(PerDay { values, kind })
}

/// Categories coded by their share of the reference days: the `BINS - 1`
/// commonest (ties by name) are 0 .. BINS - 2; any other, or one unseen
/// there, is the last bin ("other").
fn categories(column: &Column, rows_of_day: &[Vec<usize>], reference_end: usize) -> PolarsResult<PerDay> {
    let column = column.cast(&DataType::String)?;
    let text = column.str()?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for rows in rows_of_day.iter().take(reference_end + 1) {
        for value in rows.iter().filter_map(|&r| text.get(r)) {
            *counts.entry(value).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let code: HashMap<&str, f64> = ranked
        .iter()
        .take(BINS - 1)
        .enumerate()
        .map(|(i, (value, _))| (*value, i as f64))
        .collect();
    let other = (BINS - 1) as f64;
    let values = rows_of_day
        .iter()
        .map(|rows| {
            let mut day: Vec<f64> = rows
                .iter()
                .filter_map(|&r| text.get(r))
                .map(|v| code.get(v).copied().unwrap_or(other))
                .collect();
            day.sort_by(f64::total_cmp);
            day
        })
        .collect();
    Ok(PerDay {
        values,
        kind: Kind::Categorical,
    })
}

fn gather(per_day: &PerDay, days: &[usize]) -> Vec<f64> {
    let mut all: Vec<f64> = days
        .iter()
        .flat_map(|&d| per_day.values[d].iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    all
}

/// The `newest` days against the union of the `reference` groups of days,
/// with thresholds from each group against the rest of the union. None when
/// either side has no value.
fn compare(per_day: &PerDay, reference: &[Vec<usize>], newest: &[usize]) -> Option<Comparison> {
    let union: Vec<usize> = reference.concat();
    let all = gather(per_day, &union);
    let new = gather(per_day, newest);
    if all.is_empty() || new.is_empty() {
        return None;
    }
    let numeric = per_day.kind != Kind::Categorical;
    let edges = if numeric {
        quantile_edges(&all, BINS)
    } else {
        (1..BINS).map(|c| c as f64).collect()
    };
    let counts = bin_counts(&edges, &all);
    let (mut psis, mut kss) = (Vec::new(), Vec::new());
    let mut group_rows = 0;
    for group in reference {
        let part = gather(per_day, group);
        if part.is_empty() || part.len() == all.len() {
            continue;
        }
        group_rows += part.len();
        let own = bin_counts(&edges, &part);
        let rest: Vec<usize> = counts.iter().zip(&own).map(|(a, b)| a - b).collect();
        psis.push(psi(&rest, &own));
        if numeric {
            kss.push(ks_against_rest(&all, &part));
        }
    }
    // The significance floor of KS for samples the size of a typical group.
    let typical = if psis.is_empty() {
        new.len()
    } else {
        group_rows / psis.len()
    };
    let ks_floor = ks_fallback(typical.max(1), all.len()).warn;
    let learned_psi = learned(&psis, WARN_SD, ALERT_SD, stats::PSI_WARN, MIN_DAYS);
    let learned_ks = learned(&kss, WARN_SD, ALERT_SD, ks_floor, MIN_DAYS);
    let thresholds_from = if learned_psi.is_some() {
        Source::Window
    } else {
        Source::Fallback
    };
    let psi_threshold = learned_psi.unwrap_or_else(psi_fallback);
    let value = psi(&counts, &bin_counts(&edges, &new));
    let (ks_value, ks_threshold) = if numeric {
        let t = learned_ks.unwrap_or_else(|| ks_fallback(new.len(), all.len()));
        (Some(ks(&new, &all)), Some(t))
    } else {
        (None, None)
    };
    let above = |level: fn(&Threshold) -> f64| {
        value > level(&psi_threshold) || ks_value.zip(ks_threshold).is_some_and(|(v, t)| v > level(&t))
    };
    let status = if above(|t| t.alert) {
        Status::Alert
    } else if above(|t| t.warn) {
        Status::Warn
    } else {
        Status::Ok
    };
    Some(Comparison {
        rows: new.len(),
        reference_rows: all.len(),
        reference_days: psis.len(),
        psi: value,
        psi_threshold,
        ks: ks_value,
        ks_threshold,
        thresholds_from,
        status,
    })
}

/// The drift section of the run report.
pub fn markdown(drift: &DriftReport) -> String {
    let mut md = format!(
        "\n## Drift: {} against the training window {} .. {}\n\n",
        drift.newest_day, drift.reference_first_day, drift.reference_last_day
    );
    md += &match drift.alert_summary() {
        Some(summary) => format!("**Drift alert:** {summary}.\n\n"),
        None => "No drift alert.\n\n".to_string(),
    };
    md += "The newest day against the window's days of the same weekday; the newest 7 days against the window. \
           Alert thresholds: mean + 3 standard deviations of the statistic over the window's own days (7-day blocks), \
           each against the rest; `*` marks the fallback (PSI 0.25, KS significant at 0.1%).\n\n\
           | feature | day PSI | alert | day KS | alert | 7-day PSI | alert | 7-day KS | alert | status |\n\
           |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    let cells = |c: Option<&Comparison>| -> String {
        let Some(c) = c else {
            return " - | - | - | - |".to_string();
        };
        let mark = if c.thresholds_from == Source::Fallback {
            "*"
        } else {
            ""
        };
        let ks = match (c.ks, c.ks_threshold) {
            (Some(v), Some(t)) => format!(" {v:.3} | {:.3}{mark} |", t.alert),
            _ => " - | - |".to_string(),
        };
        format!(" {:.3} | {:.3}{mark} |{ks}", c.psi, c.psi_threshold.alert)
    };
    for f in &drift.features {
        let status = match f.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Alert => "**alert**",
        };
        md += &format!(
            "| {} |{}{} {status} |\n",
            f.feature,
            cells(f.day.as_ref()),
            cells(f.week.as_ref())
        );
    }
    if !drift.skipped.is_empty() {
        md += &format!(
            "\nNot compared (calendar features and series keys): {}.\n",
            drift.skipped.join(", ")
        );
    }
    md
}

#[cfg(test)]
mod tests;
