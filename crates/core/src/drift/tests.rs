//! Tests of [`super::measure`] on a synthetic feature frame: weekly
//! seasonality is not drift, a shifted feature alerts alone, closed rows are
//! left out, and too short a window falls back to the documented thresholds.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;

use super::*;
use crate::window::{Window, WindowSettings};

const STORES: usize = 60;

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 31).unwrap() // a Sunday
}

/// A deterministic stand-in for noise in [0, 1).
fn noise(i: usize) -> f64 {
    ((i as u64).wrapping_mul(2_654_435_761) % 10_007) as f64 / 10_007.0
}

/// `days` days ending on [`last_day`]: sales three times higher on Sundays,
/// `x` unrelated to the day, `c` a category, `open` 1 except where `closed`
/// says; `shift` adds to `x` on the newest day.
fn frame(days: usize, shift: f64, closed: impl Fn(NaiveDate, usize) -> bool) -> DataFrame {
    let first = last_day() - chrono::Days::new(days as u64 - 1);
    let (mut date, mut store, mut sales, mut x, mut c, mut open) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for d in 0..days {
        let day = first + chrono::Days::new(d as u64);
        for s in 0..STORES {
            let i = d * STORES + s;
            let shut = closed(day, s);
            let level = if day.weekday() == chrono::Weekday::Sun {
                300.0
            } else {
                100.0
            };
            date.push(crate::ingest::days_from_date(day));
            store.push(format!("s{s}"));
            sales.push(if shut { 0.0 } else { level * (0.5 + noise(i)) });
            x.push(noise(i + 7) + if day == last_day() { shift } else { 0.0 });
            c.push(["a", "b", "c"][(i * 7 + d) % 3]);
            open.push(if shut { 0.0 } else { 1.0 });
        }
    }
    let n = date.len();
    DataFrame::new(
        n,
        vec![
            Column::new("date".into(), date).cast(&DataType::Date).unwrap(),
            Column::new("store".into(), store),
            Column::new("sales".into(), sales),
            Column::new("x".into(), x),
            Column::new("c".into(), c),
            Column::new("open".into(), open),
        ],
    )
    .unwrap()
}

fn mapping() -> DataMapping {
    DataMapping {
        date_column: "date".into(),
        series_keys: vec!["store".into()],
        target: "sales".into(),
        covariates: vec!["x".into(), "c".into(), "open".into()],
        categorical: vec!["c".into()],
        open_flag: Some("open".into()),
        ..DataMapping::default()
    }
}

fn layout() -> FeatureLayout {
    FeatureLayout {
        numeric: vec![DAY_OF_WEEK.into(), "x".into(), "open".into()],
        categorical: vec!["store".into(), "c".into()],
    }
}

fn run(days: usize, df: &DataFrame) -> DriftReport {
    let settings = WindowSettings {
        history_days: days as u32,
        holdout_days: 7,
    };
    let window = Window::ending(&settings, last_day()).unwrap();
    measure(df, &mapping(), &layout(), &window).unwrap()
}

fn feature<'a>(report: &'a DriftReport, name: &str) -> &'a FeatureDrift {
    report.features.iter().find(|f| f.feature == name).unwrap()
}

#[test]
fn weekly_seasonality_is_not_drift_and_a_shift_alerts_alone() {
    let report = run(140, &frame(140, 0.0, |_, _| false));
    assert!(report.alerts.is_empty(), "{:#?}", report);
    assert!(report.is_finite() && report.max_drift < 1.0);
    let sales = feature(&report, "sales");
    assert_eq!(sales.kind, Kind::Target);
    let day = sales.day.as_ref().unwrap();
    assert_eq!(day.thresholds_from, Source::Window);
    // 140 days hold 20 Sundays; the 19 before the 7-day holdout set the thresholds.
    assert_eq!(day.reference_days, 19);
    assert_eq!(day.rows, STORES);
    assert!(day.ks.unwrap() < 0.3, "a Sunday against Sundays: {day:?}");
    assert_eq!(report.skipped, ["day_of_week", "store"]);
    assert!(
        feature(&report, "c").day.as_ref().unwrap().ks.is_none(),
        "no KS for categories"
    );

    let shifted = run(140, &frame(140, 0.5, |_, _| false));
    assert_eq!(shifted.alerts, ["x"], "{:#?}", shifted);
    assert!(shifted.max_drift > 1.0);
    let summary = shifted.alert_summary().unwrap();
    assert!(summary.starts_with("x (day 2024-03-31 PSI"), "{summary}");
    assert!(markdown(&shifted).contains("**Drift alert:** x (day"));
}

#[test]
fn closed_rows_are_left_out_but_the_open_flag_sees_them() {
    // Half the stores closed on the newest day: the open flag drifts; sales
    // of the open half do not.
    let report = run(140, &frame(140, 0.0, |day, s| day == last_day() && s % 2 == 0));
    assert_eq!(report.alerts, ["open"], "{:#?}", report);
    assert_eq!(feature(&report, "sales").day.as_ref().unwrap().rows, STORES / 2);
    assert_eq!(feature(&report, "open").day.as_ref().unwrap().rows, STORES);
}

#[test]
fn a_short_window_falls_back_to_the_documented_thresholds() {
    // 35 days: 4 Sundays before the holdout, fewer than MIN_DAYS.
    let report = run(35, &frame(35, 0.0, |_, _| false));
    let day = feature(&report, "x").day.clone().unwrap();
    assert_eq!(day.thresholds_from, Source::Fallback);
    assert_eq!(day.psi_threshold, stats::psi_fallback());
    assert_eq!(
        day.ks_threshold,
        Some(stats::ks_fallback(day.rows, day.reference_rows))
    );
}
