//! Unit tests of the scores table on a local folder: forecasts joined to
//! their actuals by series (closed days kept and flagged, series without a
//! sales row left out and counted), the frame's round trip, and idempotent
//! day files (a rerun writes nothing; a changed forecast replaces the file).

use super::*;
use crate::predictions::write_predictions;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const H: u32 = 3;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, d).unwrap()
}

fn mapping() -> DataMapping {
    serde_json::from_value(serde_json::json!({
        "date_column": "Date",
        "series_keys": ["store", "dept"],
        "target": "Sales",
        "covariates": ["Open"],
        "open_flag": "Open",
    }))
    .unwrap()
}

fn keys() -> Vec<String> {
    mapping().series_keys
}

const SERIES: [(&str, &str); 2] = [("1", "a"), ("2", "a")];

/// The forecasts made on `origin` for origin+1 .. origin+H: `base + h` for
/// series 1/a, `2 base + h` for 2/a, with a [f - 5, f + 5] interval.
fn predict(lake: &Lake, origin: NaiveDate, base: f64) {
    let mut columns: [Vec<String>; 3] = Default::default();
    let (mut dates, mut horizons, mut forecast) = (vec![], vec![], vec![]);
    for (i, (store, dept)) in SERIES.iter().enumerate() {
        for h in 1..=H as i32 {
            columns[0].push(format!("{store}/{dept}"));
            columns[1].push(store.to_string());
            columns[2].push(dept.to_string());
            dates.push(days_from_date(origin) + h);
            horizons.push(h);
            forecast.push(base * (i + 1) as f64 + f64::from(h));
        }
    }
    let n = dates.len();
    let date = |name: &str, v: Vec<i32>| Column::new(name.into(), v).cast(&DataType::Date).unwrap();
    let lower: Vec<f64> = forecast.iter().map(|f| f - 5.0).collect();
    let upper: Vec<f64> = forecast.iter().map(|f| f + 5.0).collect();
    let mut frame = DataFrame::new_infer_height(vec![
        Column::new("series".into(), &columns[0]),
        Column::new("store".into(), &columns[1]),
        Column::new("dept".into(), &columns[2]),
        date("target_date", dates),
        Column::new("horizon".into(), horizons),
        Column::new("forecast".into(), forecast),
        Column::new("lower".into(), lower),
        Column::new("upper".into(), upper),
        Column::new("model_sha256".into(), vec![A.to_string(); n]),
        date("data_day", vec![days_from_date(origin); n]),
        Column::new("planned".into(), vec![false; n]),
    ])
    .unwrap();
    write_predictions(lake, "sales", A, origin, H, 0.8, &mut frame).unwrap();
}

/// A sales day: series 1/a sold `sales` (open or closed), 2/a is absent.
fn actuals(on: NaiveDate, sales: f64, open: f64) -> Actuals {
    let frame = DataFrame::new_infer_height(vec![
        Column::new("Date".into(), vec![days_from_date(on)])
            .cast(&DataType::Date)
            .unwrap(),
        Column::new("store".into(), ["1"]),
        Column::new("dept".into(), ["a"]),
        Column::new("Sales".into(), [sales]),
        Column::new("Open".into(), [open]),
    ])
    .unwrap();
    Actuals::from_sales(&frame, &mapping(), on).unwrap()
}

fn origins(lake: &Lake, days: &[NaiveDate]) -> Vec<OriginForecasts> {
    days.iter()
        .filter_map(|&d| OriginForecasts::read(lake, "sales", d, &keys()).unwrap())
        .collect()
}

#[test]
fn a_day_is_scored_from_every_origin_that_forecast_it() {
    let (_dir, store) = crate::storage::temp_store();
    let lake = Lake::new(store);
    predict(&lake, day(10), 100.0);
    predict(&lake, day(11), 200.0);
    let read = origins(&lake, &[day(9), day(10), day(11)]);
    assert_eq!(read.len(), 2, "day 9 has no forecasts");
    let refs: Vec<&OriginForecasts> = read.iter().collect();
    let scored = score_day(&actuals(day(12), 150.0, 1.0), &refs);
    assert_eq!(scored.origins, [day(10), day(11)]);
    assert_eq!(scored.without_actual, 2, "2/a has no sales row on the 12th");
    let seen: Vec<(NaiveDate, u32, f64, f64, bool)> = scored
        .rows
        .iter()
        .map(|r| (r.origin, r.horizon, r.forecast, r.actual, r.open))
        .collect();
    assert_eq!(
        seen,
        [(day(10), 2, 102.0, 150.0, true), (day(11), 1, 201.0, 150.0, true)]
    );
    let row = &scored.rows[0];
    assert_eq!(
        (row.series.as_str(), row.keys.clone()),
        ("1/a", vec!["1".to_string(), "a".to_string()])
    );
    assert_eq!(
        (row.lower, row.upper, row.model_sha256.as_str()),
        (Some(97.0), Some(107.0), A)
    );
    let closed = score_day(&actuals(day(12), 0.0, 0.0), &refs);
    assert!(
        closed.rows.iter().all(|r| !r.open && r.actual == 0.0),
        "closed days are kept, flagged"
    );

    // The frame round-trips through Parquet with its documented columns.
    let mut frame = scores_frame(&scored.rows, &keys()).unwrap();
    let names: Vec<&str> = frame.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "series",
            "store",
            "dept",
            "target_date",
            "origin",
            "horizon",
            "forecast",
            "lower",
            "upper",
            "actual",
            "open",
            "model_sha256"
        ]
    );
    let bytes = crate::lake::encode_parquet(&mut frame).unwrap();
    let back = rows_of_frame(&decode_parquet(bytes).unwrap(), &keys()).unwrap();
    assert_eq!(back, scored.rows);
}

#[test]
fn rescoring_writes_nothing_and_a_new_forecast_replaces_the_day_file() {
    let (_dir, store) = crate::storage::temp_store();
    let lake = Lake::new(store);
    predict(&lake, day(10), 100.0);
    let score = |lake: &Lake| {
        let read = origins(lake, &[day(10), day(11)]);
        let refs: Vec<&OriginForecasts> = read.iter().collect();
        let days = [score_day(&actuals(day(12), 150.0, 1.0), &refs)];
        write_scores(lake, "sales", &keys(), &days).unwrap()
    };
    let files = |lake: &Lake| -> Vec<String> {
        lake.store()
            .list(SCORES_ROOT)
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect()
    };
    assert_eq!(score(&lake).written, 1);
    let first = files(&lake);
    assert_eq!(first.len(), 1);
    assert!(
        first[0].starts_with("scores/sales/dt=2015-07-12/part-"),
        "{first:?}"
    );
    assert_eq!(score(&lake).unchanged, 1, "same inputs, same bytes");
    assert_eq!(files(&lake), first);
    assert_eq!(
        read_scores(&lake, "sales", &keys(), (day(12), day(12)))
            .unwrap()
            .len(),
        1
    );

    // A forecast made later for the same day: the day's file is replaced whole.
    predict(&lake, day(11), 200.0);
    assert_eq!(score(&lake).replaced, 1);
    let second = files(&lake);
    assert_eq!(second.len(), 1, "the old file is removed: {second:?}");
    assert_ne!(second, first);
    let rows = read_scores(&lake, "sales", &keys(), (day(1), day(31))).unwrap();
    assert_eq!(rows.len(), 2, "no duplicate rows");
    assert!(
        read_scores(&lake, "sales", &keys(), (day(13), day(31)))
            .unwrap()
            .is_empty()
    );
}
