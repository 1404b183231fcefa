//! Tests of the dashboard's sales insights on small frames whose totals are
//! worked out by hand.

use std::collections::HashMap;

use chrono::NaiveDate;
use polars::prelude::*;

use super::*;
use crate::mapping::DataMapping;
use crate::predictions::ForecastRow;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn mapping() -> DataMapping {
    DataMapping {
        series_keys: vec!["store".into(), "item".into()],
        ..DataMapping::default()
    }
}

/// Store "a" sells 10 a day on two items (5 each) for 400 days up to
/// 2024-03-31, except 20 a day (10 each) in its last 7 days; store "b"
/// sells 1 a day on one item, on odd days of the month only.
fn board() -> Board {
    let last = day("2024-03-31");
    let first = last - chrono::Days::new(399);
    let (mut dates, mut stores, mut items, mut sales) = (vec![], vec![], vec![], vec![]);
    let mut d = first;
    while d <= last {
        let recent = (last - d).num_days() < 7;
        for item in ["x", "y"] {
            dates.push(crate::ingest::days_from_date(d));
            stores.push("a");
            items.push(item);
            sales.push(if recent { 10.0 } else { 5.0 });
        }
        if chrono::Datelike::day(&d) % 2 == 1 {
            dates.push(crate::ingest::days_from_date(d));
            stores.push("b");
            items.push("x");
            sales.push(1.0);
        }
        d = d.succ_opt().unwrap();
    }
    let n = dates.len();
    let frame = DataFrame::new(
        n,
        vec![
            Column::new("date".into(), dates).cast(&DataType::Date).unwrap(),
            Column::new("store".into(), stores.clone()),
            Column::new("item".into(), items),
            Column::new("sales".into(), sales),
        ],
    )
    .unwrap();
    let b_row = stores.iter().position(|s| *s == "b").unwrap();
    let series = vec![
        ("a/x".to_string(), 0),
        ("a/y".to_string(), 1),
        ("b/x".to_string(), b_row),
    ];
    Board::build(&frame, &mapping(), "store", &series, first, last).unwrap()
}

#[test]
fn periods_compare_with_the_period_before_and_a_year_before() {
    let b = board();
    assert_eq!(b.stores().collect::<Vec<_>>(), ["a", "b"]);
    let week = b.period(Some("a"), 7);
    assert_eq!(week.total, Some(140.0));
    assert_eq!(week.previous, Some((140.0, 70.0)));
    assert_eq!(week.last_year, Some((140.0, 70.0)));
    assert_eq!(week.growth(), Some(1.0));
    // 28 days: 7 at 20 and 21 at 10, against 28 at 10.
    let month = b.period(Some("a"), 28);
    assert_eq!(month.total, Some(350.0));
    assert_eq!(month.previous, Some((350.0, 280.0)));
    assert!((month.growth().unwrap() - 0.25).abs() < 1e-12);
    // The chain adds store b's odd days.
    let chain = b.period(None, 7);
    assert!(chain.total.unwrap() > 140.0 && chain.total.unwrap() < 145.0);
    // Store b sells on odd days: 4 days in its last week, 3 in the week
    // before (under 80% of 4: not compared), 14 and 15 over 28 days.
    assert_eq!(b.period(Some("b"), 7).previous, None);
    assert_eq!(b.period(Some("b"), 28).previous, Some((14.0, 15.0)));
    // A year plus 60 days is more than the 400-day window: no comparison.
    let long = b.period(Some("a"), 60);
    assert_eq!(long.last_year, None);
    assert!(long.previous.is_some());
}

#[test]
fn days_without_rows_are_none_not_zero() {
    let b = board();
    let daily = b.daily(Some("b"), 4);
    assert_eq!(daily.len(), 4);
    assert_eq!(daily.last().unwrap().0, day("2024-03-31"));
    assert_eq!(daily.last().unwrap().1, Some(1.0));
    assert_eq!(daily[2].1, None, "2024-03-30 is an even day: no row");
    assert_eq!(
        b.total(Some("nowhere"), day("2024-03-01"), day("2024-03-31")),
        None
    );
    assert_eq!(b.total(Some("a"), day("2025-01-01"), day("2025-01-31")), None);
}

fn row(target: &str, forecast: f64, lower: Option<f64>, planned: bool) -> ForecastRow {
    ForecastRow {
        target_date: day(target),
        horizon: 1,
        forecast,
        lower,
        upper: lower.map(|l| l + 2.0),
        planned,
    }
}

#[test]
fn a_store_forecast_sums_its_series() {
    let b = board();
    let mut forecasts: HashMap<String, Vec<ForecastRow>> = HashMap::new();
    forecasts.insert(
        "a/x".into(),
        vec![
            row("2024-04-01", 4.0, Some(3.0), true),
            row("2024-04-02", 5.0, Some(4.0), true),
        ],
    );
    forecasts.insert(
        "a/y".into(),
        vec![
            row("2024-04-01", 6.0, None, true),
            row("2024-04-02", 7.0, Some(6.0), false),
        ],
    );
    forecasts.insert("b/x".into(), vec![row("2024-04-01", 1.0, Some(0.5), true)]);
    let a = b.store_forecast("a", &forecasts);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].forecast, 10.0);
    assert_eq!(a[0].lower, None, "one series without bounds: the sum has none");
    assert_eq!(a[1].lower, Some(10.0));
    assert_eq!(a[1].upper, Some(14.0));
    assert!(a[0].planned && !a[1].planned);
    assert_eq!(b.forecast_total(Some("a"), &forecasts, 1), Some(10.0));
    assert_eq!(b.forecast_total(None, &forecasts, 7), Some(23.0));
    let chain = b.chain_forecast(&forecasts);
    assert_eq!(chain.len(), 2);
    assert_eq!((chain[0].forecast, chain[1].forecast), (11.0, 12.0));
    assert_eq!(chain[1].lower, Some(10.0), "b has no row that day: a's bounds");
}

#[test]
fn earlier_forecasts_are_scored_per_store_on_the_days_with_sales() {
    let b = board();
    // Made on 2024-03-29 for 03-30 .. 04-02: only 03-30 and 03-31 have sales.
    let series = ["a/x", "a/y", "a/x", "a/y", "a/x", "b/x", "b/x"];
    let dates = [
        "2024-03-30",
        "2024-03-30",
        "2024-03-31",
        "2024-03-31",
        "2024-04-01",
        "2024-03-31",
        "2024-03-30",
    ];
    let forecast = [8.0, 8.0, 10.0, 12.0, 99.0, 2.0, 5.0];
    let frame = DataFrame::new(
        series.len(),
        vec![
            Column::new("series".into(), series.to_vec()),
            Column::new(
                "target_date".into(),
                dates
                    .iter()
                    .map(|d| crate::ingest::days_from_date(day(d)))
                    .collect::<Vec<_>>(),
            )
            .cast(&DataType::Date)
            .unwrap(),
            Column::new("forecast".into(), forecast.to_vec()),
        ],
    )
    .unwrap();
    let accuracy = b.score(&frame, day("2024-03-29"), "m").unwrap().unwrap();
    assert_eq!(accuracy.through, day("2024-03-31"));
    // a: |16-20| + |22-20| over 40; b: 03-31 |2-1| over 1 (03-30 has no sales).
    assert!((accuracy.by_store["a"] - 6.0 / 40.0).abs() < 1e-12);
    assert!((accuracy.by_store["b"] - 1.0).abs() < 1e-12);
    assert!((accuracy.chain.unwrap() - 7.0 / 41.0).abs() < 1e-12);
}

#[test]
fn a_store_without_an_earlier_period_is_left_out_of_the_comparison() {
    // Store "new" has rows only in the last 10 days: the chain's growth is
    // store a's and b's, not inflated by a store that was not there.
    let b = board();
    let mut with_new = b.clone();
    let mut column = vec![f64::NAN; 400];
    for slot in column.iter_mut().skip(390) {
        *slot = 1000.0;
    }
    with_new.totals.insert("new".into(), column);
    let (old, new) = (b.period(None, 7), with_new.period(None, 7));
    assert_eq!(new.total.unwrap(), old.total.unwrap() + 7000.0);
    assert_eq!(new.growth(), old.growth(), "the new store is not growth");
    assert_eq!(with_new.period(Some("new"), 7).growth(), None);
    // A week with a single earlier day is not covered either.
    let mut sparse = b.clone();
    let mut column = vec![f64::NAN; 400];
    column[385] = 1.0;
    for slot in column.iter_mut().skip(393) {
        *slot = 10.0;
    }
    sparse.totals.insert("sparse".into(), column);
    assert_eq!(sparse.period(Some("sparse"), 7).growth(), None);
}
