//! Unit tests of the live metrics: the windows' days, the buckets (horizon
//! 1, then the holdout's), closed days left out, coverage over the rows with
//! an interval, and the markdown beside the holdout figures.

use super::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, d).unwrap()
}

fn row(
    target: u32,
    horizon: u32,
    forecast: f64,
    actual: f64,
    open: bool,
    interval: Option<(f64, f64)>,
) -> ScoreRow {
    ScoreRow {
        series: "1".into(),
        keys: vec!["1".into()],
        target_date: day(target),
        origin: day(target) - Days::new(u64::from(horizon)),
        horizon,
        forecast,
        lower: interval.map(|i| i.0),
        upper: interval.map(|i| i.1),
        actual,
        open,
        model_sha256: if target > 25 { "b" } else { "a" }.repeat(64),
    }
}

#[test]
fn windows_and_buckets_by_hand() {
    let rows = vec![
        // In the last 7 days (25 .. 31).
        row(31, 1, 110.0, 100.0, true, Some((90.0, 120.0))),
        row(30, 1, 80.0, 100.0, true, Some((85.0, 95.0))),
        row(30, 9, 150.0, 100.0, true, None),
        row(29, 2, 999.0, 0.0, false, Some((0.0, 1.0))),
        // Only in the last 28 days (4 .. 31).
        row(10, 1, 50.0, 100.0, true, Some((40.0, 60.0))),
        // In neither.
        row(3, 1, 0.0, 100.0, true, None),
    ];
    let w7 = window_metrics(&rows, 14, day(31), 7);
    assert_eq!((w7.first_day, w7.last_day), (day(25), day(31)));
    assert_eq!((w7.scored_days, w7.closed_rows), (3, 1));
    assert_eq!(w7.models, ["b".repeat(64)]);
    let names: Vec<String> = w7.buckets.iter().map(BucketMetrics::name).collect();
    assert_eq!(names, ["1-1", "1-7", "8-14", "1-14"]);
    // Horizon 1: |110-100| + |80-100| over 200; bias (10 - 20) / 200; one of two inside.
    let one = &w7.buckets[0];
    assert_eq!(one.metrics.rows, 2);
    assert!((one.metrics.wape - 30.0 / 200.0).abs() < 1e-12);
    assert!((one.metrics.bias + 10.0 / 200.0).abs() < 1e-12);
    assert_eq!(one.coverage, Some(0.5));
    // 8-14: the horizon-9 row alone, with no interval.
    let late = &w7.buckets[2];
    assert_eq!(late.metrics.rows, 1);
    assert!((late.metrics.wape - 0.5).abs() < 1e-12);
    assert_eq!(late.coverage, None);
    // 1-14 pools the three open rows; the closed day's 999 is left out.
    let all = &w7.buckets[3];
    assert_eq!(all.metrics.rows, 3);
    assert!((all.metrics.wape - 80.0 / 300.0).abs() < 1e-12);

    let w28 = window_metrics(&rows, 14, day(31), 28);
    assert_eq!(w28.first_day, day(4));
    assert_eq!(w28.buckets[0].metrics.rows, 3);
    assert!((w28.buckets[0].metrics.wape - 80.0 / 300.0).abs() < 1e-12);
    assert!(
        (w28.buckets[0].coverage.unwrap() - 1.0 / 3.0).abs() < 1e-12,
        "only 110 in [90, 120]"
    );
    assert_eq!(w28.models.len(), 2);

    let live = LiveSummary {
        through: day(31),
        horizon_days: 14,
        windows: vec![w7, w28],
    };
    assert_eq!(live.bucket(28, 1, 1).map(|b| b.metrics.rows), Some(3));
    let pooled = crate::evaluate::metrics(&[100.0], &[90.0]);
    let md = live_markdown(
        &live,
        Some(&HoldoutFigures {
            label: "champion `aaaa`".into(),
            pooled,
            horizons: None,
        }),
    );
    assert!(md.contains("| 1-14 | 0.1000 | 0.2667 |"), "{md}");
    assert!(md.contains("| 1 | - | 0.1500 | -0.0500 | 50.0% | 2 |"), "{md}");
    assert!(md.contains("| 8-14 | - | 0.5000 | +0.5000 | - | 1 |"), "{md}");
}

#[test]
fn short_horizons_have_one_pool() {
    assert_eq!(live_ranges(1), [(1, 1)]);
    assert_eq!(live_ranges(5), [(1, 1), (1, 5)]);
    assert_eq!(live_ranges(10), [(1, 1), (1, 7), (8, 10), (1, 10)]);
}
