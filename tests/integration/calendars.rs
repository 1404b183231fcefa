//! Calendar tables on a small hand-made lake shaped like Favorita's (four
//! stores in two states, `examples/favorita.toml`): a calendar joined by date
//! and ones joined by date and the store's state or city give the feature
//! values worked out by hand; a forecast made at D does not move when sales
//! after D change, and does move on D+3 when the calendar of D+3 changes (a
//! holiday is known in advance); bad calendar files are refused naming the row.

use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, NaiveDate};
use polars::prelude::*;
use salescast_core::config;
use salescast_core::lake::Lake;
use salescast_core::pipeline::check::read_training_window;
use salescast_core::storage::{self, S3Settings};

use crate::util::{Cli, copy_tree, handle, repo_file, s, tempdir};

/// store_nbr, city, state.
const STORES: [(&str, &str, &str); 4] = [
    ("1", "Quito", "Pichincha"),
    ("2", "Cayambe", "Pichincha"),
    ("3", "Cuenca", "Azuay"),
    ("4", "Gualaceo", "Azuay"),
];

/// A short window and one candidate family keep the runs quick.
const EXTRA: &str =
    "[window]\nhistory_days = 300\nholdout_days = 14\n\n[training]\ncandidates = [\"gbdt\"]\n";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// The example config with `extra` appended, in a file of its own.
fn config_file(dir: &Path, extra: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    extra.hash(&mut hasher);
    let base = std::fs::read_to_string(repo_file("examples/favorita.toml")).unwrap();
    let path = dir.join(format!("favorita-{:016x}.toml", hasher.finish()));
    std::fs::write(&path, format!("{base}\n{EXTRA}\n{extra}")).unwrap();
    path
}

fn write_stores(dir: &Path) -> PathBuf {
    let mut text = String::from("store_nbr,city,state,type,cluster\n");
    for (i, (store, city, state)) in STORES.iter().enumerate() {
        text += &format!("{store},{city},{state},{},{}\n", ["A", "B", "A", "C"][i], i + 1);
    }
    let path = dir.join("stores.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// The generated holidays of a day (national, regional state, local city),
/// by its day of the year; the leakage test's calendar and sales use them.
fn generated(d: NaiveDate) -> (bool, Option<&'static str>, Option<&'static str>) {
    let n = d.ordinal();
    let regional = match () {
        _ if n % 10 == 3 => Some("Pichincha"),
        _ if n % 11 == 4 => Some("Azuay"),
        _ => None,
    };
    let local = match () {
        _ if n % 12 == 5 => Some("Quito"),
        _ if n % 13 == 6 => Some("Cuenca"),
        _ => None,
    };
    (n.is_multiple_of(9), regional, local)
}

/// Favorita-shaped holidays from [`generated`] for `first ..= last`, plus `extra` lines.
fn write_generated_calendar(
    dir: &Path,
    name: &str,
    first: NaiveDate,
    last: NaiveDate,
    extra: &str,
) -> PathBuf {
    let mut text = String::from("date,type,locale,locale_name,description,transferred\n");
    for d in first.iter_days().take_while(|d| *d <= last) {
        let (national, regional, local) = generated(d);
        if national {
            text += &format!("{d},Holiday,National,Ecuador,Feriado,False\n");
        }
        if let Some(state) = regional {
            text += &format!("{d},Holiday,Regional,{state},Provincializacion,False\n");
        }
        if let Some(city) = local {
            text += &format!("{d},Holiday,Local,{city},Fundacion,False\n");
        }
    }
    text += extra;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Daily sales of every store over `first ..= last`: a store level, busier
/// weekends, and +80 / +50 / +30 on national, regional (the store's state)
/// and local (its city) holidays; `scale` multiplies the days after `after`.
fn write_sales(
    dir: &Path,
    name: &str,
    first: NaiveDate,
    last: NaiveDate,
    scale: (NaiveDate, f64),
) -> PathBuf {
    let mut text = String::from("id,date,store_nbr,family,sales,onpromotion\n");
    let mut id = 0;
    for d in first.iter_days().take_while(|d| *d <= last) {
        let (national, regional, local) = generated(d);
        for (i, (store, city, state)) in STORES.iter().enumerate() {
            let weekend = if d.weekday().number_from_monday() >= 6 {
                1.3
            } else {
                1.0
            };
            let mut sales =
                [100.0, 120.0, 80.0, 90.0][i] * weekend + ((d.ordinal() as usize * 7 + i * 3) % 5) as f64;
            sales += if national { 80.0 } else { 0.0 };
            sales += if regional == Some(*state) { 50.0 } else { 0.0 };
            sales += if local == Some(*city) { 30.0 } else { 0.0 };
            if d > scale.0 {
                sales *= scale.1;
            }
            text += &format!("{id},{d},{store},GROCERY I,{sales},0\n");
            id += 1;
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn calendar_flags(file: &str) -> Vec<String> {
    ["national", "regional", "local"]
        .iter()
        .flat_map(|name| ["--calendar".to_string(), format!("{name}={file}")])
        .collect()
}

fn open_lake(lake: &Path) -> Lake {
    Lake::new(storage::open(s(lake), &S3Settings::default(), handle()).unwrap())
}

#[test]
fn calendars_by_date_state_and_city_give_the_values_worked_out_by_hand() {
    let dir = tempdir();
    let config_path = config_file(dir.path(), "");
    let lake = dir.path().join("lake");
    let cli = Cli::new(&config_path, s(&lake)).json();
    let sales = write_sales(
        dir.path(),
        "train.csv",
        day("2023-01-01"),
        day("2023-06-30"),
        (day("2099-01-01"), 1.0),
    );
    let stores = write_stores(dir.path());
    let holidays = repo_file("examples/holidays_events.csv");
    let mut args = vec!["ingest", "--input", s(&sales), "--attributes"];
    let stores_arg = format!("stores={}", s(&stores));
    args.push(&stores_arg);
    let flags = calendar_flags(s(&holidays));
    args.extend(flags.iter().map(String::as_str));
    let report = cli.run(dir.path(), &args).expect_code(0).json();
    assert_eq!(report["calendars"][0], serde_json::json!(["national", "written"]));
    assert_eq!(report["calendars"].as_array().unwrap().len(), 3);
    assert!(lake.join("calendars/regional.parquet").exists());
    // Ingesting the same file again changes nothing.
    let again = cli.run(dir.path(), &args).expect_code(0).json();
    assert_eq!(again["calendars"][2], serde_json::json!(["local", "unchanged"]));
    // `check` reads the calendars and lists their flags among the features.
    let check = cli
        .run(dir.path(), &["check", "--date", "2023-06-30"])
        .expect_code(0)
        .json();
    let numeric = check["features"]["numeric"].to_string();
    for flag in ["national_holiday", "regional_holiday", "local_holiday"] {
        assert!(numeric.contains(flag), "{numeric}");
    }
    // The calendars are part of the data's fingerprint: a calendar ingested
    // again with a day more changes it, and put back restores it.
    let fingerprint = |cli: &Cli| -> serde_json::Value {
        cli.run(dir.path(), &["check", "--date", "2023-06-30"])
            .expect_code(0)
            .json()["fingerprint"]
            .clone()
    };
    assert_eq!(fingerprint(&cli), check["fingerprint"]);
    let more = dir.path().join("holidays-more.csv");
    let text = std::fs::read_to_string(&holidays).unwrap();
    std::fs::write(
        &more,
        format!("{text}2023-06-20,Holiday,National,Ecuador,Dia C,False\n"),
    )
    .unwrap();
    let ingest_calendars = |file: &Path| {
        let flags = calendar_flags(s(file));
        let args: Vec<&str> = std::iter::once("ingest")
            .chain(flags.iter().map(String::as_str))
            .collect();
        cli.run(dir.path(), &args).expect_code(0);
    };
    ingest_calendars(&more);
    assert_ne!(fingerprint(&cli), check["fingerprint"]);
    ingest_calendars(&holidays);
    assert_eq!(fingerprint(&cli), check["fingerprint"]);

    let config = config::parse_file(&std::fs::read_to_string(&config_path).unwrap(), &config_path).unwrap();
    let features = read_training_window(&config, &open_lake(&lake), day("2023-06-30"))
        .unwrap()
        .features;
    let flags_of = |store: &str, date: &str| -> (f64, f64, f64) {
        let row = features
            .clone()
            .lazy()
            .filter(
                col("store_nbr")
                    .eq(lit(store))
                    .and(col("date").eq(lit(day(date)))),
            )
            .collect()
            .unwrap();
        assert_eq!(row.height(), 1, "store {store} on {date}");
        let value = |name: &str| row.column(name).unwrap().f64().unwrap().get(0).unwrap();
        (
            value("national_holiday"),
            value("regional_holiday"),
            value("local_holiday"),
        )
    };
    // examples/holidays_events.csv, row by row:
    let expected = [
        // Two national rows on one day: one holiday, in every store.
        ("1", "2023-06-05", (1.0, 0.0, 0.0)),
        ("3", "2023-06-05", (1.0, 0.0, 0.0)),
        // Transferred away (transferred = True): no holiday on its date...
        ("1", "2023-06-06", (0.0, 0.0, 0.0)),
        // ...but on the day it moved to (type Transfer).
        ("2", "2023-06-07", (1.0, 0.0, 0.0)),
        // A work day is not a holiday.
        ("1", "2023-06-08", (0.0, 0.0, 0.0)),
        // Pichincha's regional holiday: stores 1 and 2 (Pichincha), not 3 (Azuay).
        ("1", "2023-06-09", (0.0, 1.0, 0.0)),
        ("2", "2023-06-09", (0.0, 1.0, 0.0)),
        ("3", "2023-06-09", (0.0, 0.0, 0.0)),
        // Quito's and Cuenca's local holidays: stores 1 and 3, not Cayambe or Gualaceo.
        ("1", "2023-06-10", (0.0, 0.0, 1.0)),
        ("2", "2023-06-10", (0.0, 0.0, 0.0)),
        ("3", "2023-06-10", (0.0, 0.0, 1.0)),
        ("4", "2023-06-10", (0.0, 0.0, 0.0)),
        // Azuay's regional holiday: stores 3 and 4.
        ("4", "2023-06-11", (0.0, 1.0, 0.0)),
        ("1", "2023-06-11", (0.0, 0.0, 0.0)),
        // A day the calendar does not hold: 0.
        ("1", "2023-06-12", (0.0, 0.0, 0.0)),
        ("1", "2023-01-02", (0.0, 0.0, 0.0)),
    ];
    for (store, date, flags) in expected {
        assert_eq!(flags_of(store, date), flags, "store {store} on {date}");
    }
    assert_eq!(
        features.height(),
        4 * 181,
        "one row per store and day, none added by the joins"
    );
}

/// The forecasts of one predict run, (series, horizon) -> forecast, sorted.
fn forecasts(lake: &Path, data_day: NaiveDate) -> Vec<((String, i32), f64)> {
    let (_, frame) = salescast_core::predictions::read_predictions(&open_lake(lake), "sales", data_day)
        .unwrap()
        .expect("predictions written");
    let series: Vec<String> = frame
        .column("series")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    let horizon = frame.column("horizon").unwrap().i32().unwrap().clone();
    let value = frame.column("forecast").unwrap().f64().unwrap().clone();
    let mut out: Vec<_> = (0..frame.height())
        .map(|i| {
            (
                (series[i].clone(), horizon.get(i).unwrap()),
                value.get(i).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_holiday_is_known_in_advance_and_sales_after_d_are_not() {
    let dir = tempdir();
    let config_path = config_file(dir.path(), "");
    let base = dir.path().join("lake");
    let registry = dir.path().join("registry");
    let cli = |lake: &Path| Cli::new(&config_path, s(lake)).registry(s(&registry)).json();
    let (first, d, last) = (day("2023-01-01"), day("2023-11-30"), day("2023-12-31"));
    let target = d + Days::new(3);
    assert!(!generated(target).0, "D+3 is no national holiday yet");
    let sales = write_sales(dir.path(), "train.csv", first, last, (last, 1.0));
    let stores = write_stores(dir.path());
    let holidays = write_generated_calendar(dir.path(), "holidays.csv", first, day("2024-01-31"), "");
    let stores_arg = format!("stores={}", s(&stores));
    let flags = calendar_flags(s(&holidays));
    let mut args = vec!["ingest", "--input", s(&sales), "--attributes", &stores_arg];
    args.extend(flags.iter().map(String::as_str));
    cli(&base).run(dir.path(), &args).expect_code(0);
    let d_text = d.to_string();
    cli(&base)
        .run(dir.path(), &["retrain", "--date", &d_text])
        .expect_code(0);

    let predict = |name: &str, change: &dyn Fn(&Path)| {
        let lake = dir.path().join(name);
        copy_tree(&base, &lake);
        change(&lake);
        let out = cli(&lake)
            .run(dir.path(), &["predict", "--date", &d_text])
            .expect_code(0);
        assert!(
            !out.stderr.contains("ends before the last forecast day"),
            "{}",
            out.stderr
        );
        forecasts(&lake, d)
    };
    let reference = predict("reference", &|_| {});
    assert_eq!(reference.len(), 4 * 14);

    // Sales after D tripled: no forecast made at D moves.
    let later = write_sales(dir.path(), "later.csv", d + Days::new(1), last, (d, 3.0));
    let after = predict("sales-after-d", &|lake| {
        cli(lake)
            .run(dir.path(), &["ingest", "--input", s(&later), "--replace"])
            .expect_code(0);
    });
    assert_eq!(after, reference, "a forecast made at D used sales after D");
    // The same change on D itself does move them, or the check above proves nothing.
    let on_d = write_sales(dir.path(), "on-d.csv", d, d, (d - Days::new(1), 3.0));
    let moved = predict("sales-on-d", &|lake| {
        cli(lake)
            .run(dir.path(), &["ingest", "--input", s(&on_d), "--replace"])
            .expect_code(0);
    });
    assert_ne!(moved, reference, "the forecasts must depend on the sales up to D");

    // A national holiday added on D+3: the D+3 forecast of every store rises;
    // D+1 and D+2 do not move.
    let changed = write_generated_calendar(
        dir.path(),
        "holidays-changed.csv",
        first,
        day("2024-01-31"),
        &format!("{target},Holiday,National,Ecuador,Nuevo feriado,False\n"),
    );
    let holiday = predict("holiday-on-d3", &|lake| {
        let flag = format!("national={}", s(&changed));
        cli(lake)
            .run(dir.path(), &["ingest", "--calendar", &flag])
            .expect_code(0);
    });
    for ((key, before), (_, now)) in reference.iter().zip(&holiday) {
        match key.1 {
            1 | 2 => assert_eq!(before, now, "{key:?}: a day before the new holiday moved"),
            3 => assert!(
                now > &(before + 20.0),
                "{key:?}: {before} -> {now}, the holiday of D+3 was not seen"
            ),
            _ => {}
        }
    }

    // A calendar that ends before the last forecast day is warned about.
    let short = write_generated_calendar(dir.path(), "holidays-short.csv", first, d + Days::new(5), "");
    let lake = dir.path().join("short-calendar");
    copy_tree(&base, &lake);
    let flag = format!("local={}", s(&short));
    cli(&lake)
        .run(dir.path(), &["ingest", "--calendar", &flag])
        .expect_code(0);
    let out = cli(&lake)
        .run(dir.path(), &["predict", "--date", &d_text])
        .expect_code(0);
    assert_eq!(
        out.stderr
            .matches("calendar local ends before the last forecast day")
            .count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn bad_calendar_files_and_settings_are_refused_naming_the_row_or_key() {
    let dir = tempdir();
    let paydays = "[[data.calendars]]\nname = \"paydays\"\ndate_column = \"day\"\ndate_format = \"%d/%m/%Y\"\ncolumns = [\"bonus\"]\n";
    let config_path = config_file(dir.path(), paydays);
    let lake = dir.path().join("lake");
    let cli = Cli::new(&config_path, s(&lake));
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cases = [
        (
            "paydays",
            "day,bonus\n15/01/2023,1\n31/01/2023,1\n30/02/2023,1\n",
            "line 4, column \"day\": \"30/02/2023\" is not a date in format \"%d/%m/%Y\"",
        ),
        (
            "paydays",
            "day,bonus\n15/01/2023,1\n31/01/2023,yes\n",
            "line 3, column \"bonus\": \"yes\" is not a number",
        ),
        (
            "paydays",
            "day,bonus\n15/01/2023,1\n31/01/2023,1\n15/01/2023,2\n",
            "line 4, column \"bonus\": same day as line 2 (day=2023-01-15) with another value (1.0 there, 2.0 here)",
        ),
        (
            "regional",
            "date,type,locale,locale_name,description,transferred\n2023-01-02,Holiday,Regional,,x,False\n",
            "line 2, column \"locale_name\": the by value is empty",
        ),
        (
            "regional",
            "date,type,locale,description,transferred\n2023-01-02,Holiday,Regional,x,False\n",
            "column \"locale_name\": required column is missing",
        ),
        (
            "local",
            "date,type,locale,locale_name,description,transferred\n2023-01-02,Holiday,National,Ecuador,x,False\n",
            "no row is left after `where`",
        ),
    ];
    for (i, (calendar, text, expected)) in cases.iter().enumerate() {
        let file = write(&format!("bad-{i}.csv"), text);
        let arg = format!("{calendar}={}", s(&file));
        let out = cli
            .run(dir.path(), &["ingest", "--calendar", &arg])
            .expect_code(3);
        assert!(
            out.stderr.contains(s(&file)),
            "case {i}: the file is named\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(expected),
            "case {i}: expected {expected:?} in\n{}",
            out.stderr
        );
    }
    assert!(
        !lake.join("calendars").exists(),
        "nothing is written from a refused file"
    );

    // Mistakes in the settings are usage errors naming the key.
    for (extra, key) in [
        (
            "[[data.calendars]]\nname = \"x\"\ndate_column = \"d\"\nby = \"region\"\nflag = \"f\"\n",
            "data.calendars[4].by",
        ),
        (
            "[[data.calendars]]\nname = \"x\"\ndate_column = \"d\"\nflag = \"f\"\nlocales = \"National\"\n",
            "locales",
        ),
    ] {
        let config_path = config_file(dir.path(), &format!("{paydays}{extra}"));
        let out = Cli::new(&config_path, s(&lake))
            .run(dir.path(), &["ingest", "--calendar", "x=whatever.csv"])
            .expect_code(2);
        assert!(out.stderr.contains(key), "expected {key:?} in\n{}", out.stderr);
    }
    let out = cli
        .run(dir.path(), &["ingest", "--calendar", "nope=whatever.csv"])
        .expect_code(2);
    assert!(
        out.stderr.contains("no calendar named \"nope\""),
        "{}",
        out.stderr
    );
}
