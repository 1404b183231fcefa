//! `salescast monitor` through the real binary on a small hand-made lake
//! (three stores, CSVs written here and ingested): a forecast made on day D
//! is scored as D+1, D+2 and D+3 land, its rows and WAPE checked by hand
//! against the stored forecasts (read with pyarrow) and the CSV's actuals;
//! a rerun writes nothing and adds no row (the table read as Athena reads
//! it, every file of the folders); a newer forecast replaces a day's file;
//! a missing day exits 3 naming it; retrain's report carries the live section.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, Days, NaiveDate};
use serde_json::Value;

use crate::util::{Cli, python, s, snapshot, tempdir};

pub(crate) const CONFIG: &str = r#"
[data]
date_column = "date"
series_keys = ["store"]
target = "sales"
covariates = ["promo", "open"]
open_flag = "open"
[window]
history_days = 120
holdout_days = 14
[features]
lags = [1, 7, 14]
rolling_means = [7]
[forecast]
horizon_days = 14
[training]
candidates = ["seasonal_naive", "elastic_net"]
"#;

const STORES: [&str; 3] = ["A", "B", "C"];

pub(crate) fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// One store's day: (sales, promo, open). Weekly shape, promotions on
/// 4 days in 13, out of step with the week (+50%), a little deterministic
/// noise; store C is closed on Sundays.
fn sales_of(store: usize, day: NaiveDate) -> (f64, u8, u8) {
    let weekday = day.weekday().num_days_from_monday() as usize;
    let open = u8::from(!(store == 2 && weekday == 6));
    let n = day.num_days_from_ce() as usize;
    let promo = u8::from((n * n * 31 + store * 17) % 13 < 4);
    let shape = [1.0, 0.9, 0.95, 1.0, 1.2, 1.4, 0.6][weekday];
    let noise = ((n * 7919 + store * 104_729) % 11) as f64 - 5.0;
    let base = 100.0 * (store + 1) as f64;
    let sales = if open == 0 {
        0.0
    } else {
        (base * shape * if promo == 1 { 1.5 } else { 1.0 } + noise).round()
    };
    (sales, promo, open)
}

/// A CSV of every store's days `first ..= last`.
pub(crate) fn write_csv(path: &Path, first: NaiveDate, last: NaiveDate) {
    let mut text = String::from("date,store,sales,promo,open\n");
    let mut day = first;
    while day <= last {
        for (i, store) in STORES.iter().enumerate() {
            let (sales, promo, open) = sales_of(i, day);
            text += &format!("{day},{store},{sales},{promo},{open}\n");
        }
        day = day + Days::new(1);
    }
    std::fs::write(path, text).unwrap();
}

/// Every row of a table folder read as Athena reads it (each Parquet file
/// under it, `dt` from the folder names), as JSON objects.
fn read_table(folder: &Path) -> Vec<Value> {
    let out = python(
        r#"
import sys, json, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
print(json.dumps(t.to_pylist(), default=str))
"#,
        &[s(folder)],
    );
    serde_json::from_str(&out).unwrap()
}

/// (store, target day) -> (forecast, lower, upper) of the forecasts made on `origin`.
fn forecasts(lake: &Path, origin: &str) -> BTreeMap<(String, String), (f64, f64, f64)> {
    read_table(&lake.join(format!("predictions/sales/dt={origin}")))
        .into_iter()
        .map(|r| {
            let key = (
                r["store"].as_str().unwrap().to_string(),
                r["target_date"].as_str().unwrap().to_string(),
            );
            let f = |name: &str| r[name].as_f64().unwrap();
            (key, (f("forecast"), f("lower"), f("upper")))
        })
        .collect()
}

#[test]
fn a_forecast_is_scored_as_its_days_land_and_a_rerun_adds_nothing() {
    let dir = tempdir();
    let root = dir.path();
    let config = root.join("salescast.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let lake = root.join("lake");
    let cli = Cli::new(&config, s(&lake)).registry(s(&root.join("registry")));
    let json = cli.clone().json();
    // D is a Saturday: D+1 is a Sunday (store C closed), then Monday, Tuesday.
    let d = date("2015-05-09");
    let day = |k: u64| d + Days::new(k);
    let history = root.join("history.csv");
    write_csv(&history, date("2015-01-01"), d);
    cli.run(root, &["ingest", "--input", s(&history)]).expect_code(0);
    let report = json
        .run(root, &["retrain", "--date", "2015-05-09"])
        .expect_code(0)
        .json();
    assert_eq!(report["decision"], "promoted", "{report}");
    assert!(report["live"].is_null(), "no scores yet: {}", report["live"]);
    json.run(root, &["predict", "--date", "2015-05-09"])
        .expect_code(0);
    let made = forecasts(&lake, "2015-05-09");
    assert_eq!(made.len(), 3 * 14);

    // Nothing forecast D itself: nothing to score, no live figures.
    let none = json
        .run(root, &["monitor", "--date", "2015-05-09"])
        .expect_code(0)
        .json();
    assert_eq!(none["days"], serde_json::json!([]), "{none}");
    assert!(none["live"].is_null());
    // D+1's actuals have not landed: exit 3 naming its partition.
    let missing = cli.run(root, &["monitor", "--date", "2015-05-10"]).expect_code(3);
    assert!(
        missing.stderr.contains("sales/dt=2015-05-10/")
            && missing.stderr.contains("missing partition for 2015-05-10"),
        "{}",
        missing.stderr
    );

    let mut errors = 0.0;
    let mut actuals = 0.0;
    for k in 1..=3u64 {
        let target = day(k);
        let csv = root.join(format!("day{k}.csv"));
        write_csv(&csv, target, target);
        cli.run(root, &["ingest", "--input", s(&csv)]).expect_code(0);
        let report = json
            .run(root, &["monitor", "--date", &target.to_string()])
            .expect_code(0)
            .json();
        // Every landed day is (re)scored; only the new one is written.
        let days = report["days"].as_array().unwrap();
        assert_eq!(days.len(), k as usize, "{report}");
        assert_eq!(report["written"]["written"], 1, "{report}");
        assert_eq!(report["written"]["unchanged"], k - 1, "{report}");

        // The day's rows by hand: one per store, from origin D at horizon k.
        let rows = read_table(&lake.join(format!("scores/sales/dt={target}")));
        assert_eq!(rows.len(), 3, "{rows:?}");
        let (mut day_errors, mut day_actuals) = (0.0, 0.0);
        for (i, store) in STORES.iter().enumerate() {
            let row = rows.iter().find(|r| r["store"] == *store).unwrap();
            let (sales, _, open) = sales_of(i, target);
            let (forecast, lower, upper) = made[&(store.to_string(), target.to_string())];
            assert_eq!(row["series"], *store);
            assert_eq!(row["target_date"], target.to_string());
            assert_eq!(row["origin"], "2015-05-09");
            assert_eq!(row["horizon"], k);
            assert_eq!(row["actual"].as_f64(), Some(sales));
            assert_eq!(row["open"], open == 1);
            assert_eq!(
                (
                    row["forecast"].as_f64(),
                    row["lower"].as_f64(),
                    row["upper"].as_f64()
                ),
                (Some(forecast), Some(lower), Some(upper))
            );
            if open == 1 {
                day_errors += (forecast - sales).abs();
                day_actuals += sales;
            }
        }
        let today = &days[k as usize - 1];
        assert_eq!(today["day"], target.to_string());
        assert_eq!(
            today["open_rows"],
            if k == 1 { 2 } else { 3 },
            "C is closed on Sunday"
        );
        let wape = today["metrics"]["wape"].as_f64().unwrap();
        assert!(
            (wape - day_errors / day_actuals).abs() < 1e-9,
            "{wape} against {}",
            day_errors / day_actuals
        );
        errors += day_errors;
        actuals += day_actuals;
        // Live: every scored row is horizon 1..3, so 1-7 and 1-14 pool them all.
        let by_hand = errors / actuals;
        for bucket in report["live"]["windows"][0]["buckets"].as_array().unwrap() {
            let (first, last) = (
                bucket["first"].as_u64().unwrap(),
                bucket["last"].as_u64().unwrap(),
            );
            if first == 1 && last >= 7 {
                let live = bucket["metrics"]["wape"].as_f64().unwrap();
                assert!(
                    (live - by_hand).abs() < 1e-9,
                    "{bucket}: {live} against {by_hand}"
                );
                assert_eq!(bucket["metrics"]["rows"], if k == 1 { 2 } else { 3 * k - 1 });
            }
        }
    }

    // A rerun: no file changes, no duplicate rows.
    let scores = lake.join("scores");
    let before = snapshot(&scores);
    let again = json
        .run(root, &["monitor", "--date", "2015-05-12"])
        .expect_code(0)
        .json();
    assert_eq!(again["written"]["unchanged"], 3, "{again}");
    assert_eq!(again["written"]["written"], 0);
    assert_eq!(snapshot(&scores), before, "the same bytes");
    let all = read_table(&scores.join("sales"));
    assert_eq!(all.len(), 9);
    assert!(
        all.iter().all(|r| r["dt"] == r["target_date"]),
        "the hive partition is the target day: {all:?}"
    );
    let mut keys: Vec<String> = all
        .iter()
        .map(|r| format!("{} {} {}", r["series"], r["target_date"], r["origin"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 9, "no duplicate forecast rows");

    // A forecast made on D+1 also targets D+2 and D+3: their files are
    // replaced whole (one file a day), D+1's is unchanged.
    json.run(root, &["predict", "--date", "2015-05-10"])
        .expect_code(0);
    let newer = json
        .run(root, &["monitor", "--date", "2015-05-12"])
        .expect_code(0)
        .json();
    assert_eq!(
        (&newer["written"]["replaced"], &newer["written"]["unchanged"]),
        (&serde_json::json!(2), &serde_json::json!(1)),
        "{newer}"
    );
    assert_eq!(read_table(&scores.join("sales")).len(), 9 + 6);
    for k in 1..=3 {
        let files = std::fs::read_dir(scores.join(format!("sales/dt={}", day(k))))
            .unwrap()
            .count();
        assert_eq!(files, 1, "one file a day");
    }
    assert!(
        newer["holdout"]["label"]
            .as_str()
            .unwrap()
            .starts_with("champion"),
        "{newer}"
    );
    let text = cli
        .run(root, &["monitor", "--date", "2015-05-12"])
        .expect_code(0)
        .stdout;
    assert!(text.contains("## Live accuracy through 2015-05-12"), "{text}");

    // The retrain report shows the same live figures next to the holdout.
    let report = json
        .run(root, &["retrain", "--date", "2015-05-12", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(report["live"], newer["live"], "{}", report["live"]);
    let markdown = cli
        .run(root, &["retrain", "--date", "2015-05-12", "--dry-run"])
        .expect_code(0)
        .stdout;
    assert!(
        markdown.contains("## Live accuracy through 2015-05-12"),
        "{markdown}"
    );
    assert!(markdown.contains("holdout WAPE (champion"), "{markdown}");
}
