//! Plans (`ingest --plan`): covariates of future days into `plans/dt=...`,
//! checked like sales, idempotent, and read back by `read_plans` typed like
//! the sales window so predict can stack them. Built from the rossmann data:
//! the rows of 2015-07-18 .. 2015-07-31 moved two weeks on (same weekdays)
//! and stripped of Sales and Customers.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use salescast_core::config::{self, Config};
use salescast_core::lake::Lake;
use salescast_core::plans::read_plans;
use salescast_core::storage::{self, S3Settings};
use salescast_core::window::Window;

use crate::util::{
    Cli, copy_tree, handle, python, repo_file, rossmann_lake, s, shared_data, snapshot, tempdir,
};

/// The rows of rossmann's train.csv, each as its cells (the file has no quotes).
pub fn train_rows() -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(shared_data("rossmann/train.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// The plan file: the rows of 2015-07-18 ..= 2015-07-31 as the plan of
/// 2015-08-01 ..= 2015-08-14; returns its path and row count.
fn write_plan(dir: &Path) -> (PathBuf, usize) {
    let (header, rows) = train_rows();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (date, sales, customers) = (at("Date"), at("Sales"), at("Customers"));
    let mut text = String::new();
    let keep: Vec<usize> = (0..header.len())
        .filter(|i| *i != sales && *i != customers)
        .collect();
    let line = |cells: &[String]| {
        keep.iter()
            .map(|&i| cells[i].as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    text += &line(&header);
    text += "\n";
    let mut n = 0;
    for row in &rows {
        let d = day(&row[date]);
        if d >= day("2015-07-18") && d <= day("2015-07-31") {
            let mut moved = row.clone();
            moved[date] = (d + chrono::Days::new(14)).to_string();
            text += &line(&moved);
            text += "\n";
            n += 1;
        }
    }
    let path = dir.join("plan.csv");
    std::fs::write(&path, text).unwrap();
    (path, n)
}

fn rossmann_config() -> Config {
    let path = repo_file("examples/rossmann.toml");
    config::parse_file(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn open_lake(lake: &Path) -> Lake {
    Lake::new(storage::open(s(lake), &S3Settings::default(), handle()).unwrap())
}

fn cli(lake: &Path) -> Cli {
    Cli::new(&repo_file("examples/rossmann.toml"), s(lake)).json()
}

#[test]
fn a_rossmann_plan_lands_in_plan_partitions_and_reads_back_typed_like_sales() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    let (plan, rows) = write_plan(dir.path());
    assert!(rows > 1_000, "14 days of about 100 stores, got {rows}");
    let out = cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&plan)])
        .expect_code(0);
    let report = out.json();
    assert_eq!(report["plans"]["rows"], rows);
    assert_eq!(report["plans"]["days"]["written"], 14);
    assert_eq!(report["plans"]["first_day"], "2015-08-01");
    assert_eq!(report["plans"]["last_day"], "2015-08-14");
    assert_eq!(report["rows"], 0, "no sales were given");
    for offset in 0..14 {
        let folder = lake.join(format!(
            "plans/dt={}",
            day("2015-08-01") + chrono::Days::new(offset)
        ));
        let files = snapshot(&folder);
        assert_eq!(files.len(), 1, "{}", folder.display());
        assert!(
            files[0]
                .0
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("part-"),
            "{files:?}"
        );
    }
    assert!(!lake.join("sales/dt=2015-08-01").exists(), "a plan is not sales");

    // pyarrow reads the plans as a Hive dataset, without a target column.
    let seen = python(
        "import sys, pyarrow.dataset as ds; t = ds.dataset(sys.argv[1] + '/plans', format='parquet', partitioning='hive').to_table(); print(t.num_rows, 'Sales' in t.column_names, sorted(c for c in t.column_names))",
        &[s(&lake)],
    );
    assert_eq!(
        seen,
        format!("{rows} False ['Date', 'Open', 'Promo', 'SchoolHoliday', 'StateHoliday', 'Store', 'dt']")
    );

    // read_plans: typed exactly as the sales window, one row per day and store.
    let config = rossmann_config();
    let lake_handle = open_lake(&lake);
    let plans = read_plans(
        &lake_handle,
        &config.data,
        &config.validation,
        day("2015-07-30"),
        day("2015-08-20"),
    )
    .unwrap();
    assert_eq!(plans.frame.height(), rows);
    assert_eq!(plans.days.len(), 14);
    assert_eq!(plans.days.first(), Some(&day("2015-08-01")));
    assert_eq!(plans.days.last(), Some(&day("2015-08-14")));
    assert_eq!(plans.files.len(), 14);
    let window = Window::ending(&config.window, day("2015-07-31")).unwrap();
    let sales = lake_handle
        .read_days(&config.data, &config.validation, &window)
        .unwrap();
    let names: Vec<&str> = plans
        .frame
        .get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        names,
        ["Date", "Store", "Promo", "StateHoliday", "SchoolHoliday", "Open"]
    );
    for column in plans.frame.columns() {
        assert_eq!(
            Some(column.dtype()),
            sales.frame.column(column.name()).ok().map(|c| c.dtype()),
            "column {}",
            column.name()
        );
    }
    let stacked = sales
        .frame
        .clone()
        .vstack(&plans.with_target(&config.data).unwrap())
        .expect("plan rows stack under the sales rows");
    assert_eq!(stacked.height(), sales.frame.height() + rows);

    // The plan of store 11 on 2015-08-01 is its row of 2015-07-18.
    let (header, train) = train_rows();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let source = train
        .iter()
        .find(|r| r[at("Store")] == "11" && r[at("Date")] == "2015-07-18")
        .unwrap();
    let planned = plans
        .frame
        .clone()
        .lazy()
        .filter(
            col("Store")
                .eq(lit("11"))
                .and(col("Date").eq(lit(day("2015-08-01")))),
        )
        .collect()
        .unwrap();
    assert_eq!(planned.height(), 1);
    let promo = planned.column("Promo").unwrap().f64().unwrap().get(0);
    assert_eq!(promo, Some(source[at("Promo")].parse::<f64>().unwrap()));

    // A narrower window reads only its days; a window with no plan is empty but typed.
    let two = read_plans(
        &lake_handle,
        &config.data,
        &config.validation,
        day("2015-08-13"),
        day("2015-08-14"),
    )
    .unwrap();
    assert_eq!(two.days.len(), 2);
    let none = read_plans(
        &lake_handle,
        &config.data,
        &config.validation,
        day("2015-09-01"),
        day("2015-09-14"),
    )
    .unwrap();
    assert!(none.days.is_empty() && none.files.is_empty());
    assert_eq!(none.frame.height(), 0);
    assert_eq!(none.frame.schema(), plans.frame.schema());
}

#[test]
fn a_plan_is_idempotent_and_a_changed_day_needs_replace() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let (plan, _) = write_plan(dir.path());
    cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&plan)])
        .expect_code(0);
    let before = snapshot(&lake);
    let again = cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&plan)])
        .expect_code(0);
    assert_eq!(again.json()["plans"]["days"]["unchanged"], 14);
    assert_eq!(again.json()["plans"]["days"]["written"], 0);
    assert_eq!(snapshot(&lake), before, "same input, same bytes");

    // Store 11's promotion on 2015-08-03 changes: that day is refused, then replaced.
    let text = std::fs::read_to_string(&plan).unwrap();
    let header = text.lines().next().unwrap();
    let promo = header.split(',').position(|h| h == "Promo").unwrap();
    let changed: Vec<String> = text
        .lines()
        .map(|line| {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if cells[0] == "11" && line.contains(",2015-08-03,") {
                cells[promo] = if cells[promo] == "1" {
                    "0".into()
                } else {
                    "1".into()
                };
            }
            cells.join(",")
        })
        .collect();
    assert_ne!(changed.join("\n") + "\n", text);
    let changed_plan = dir.path().join("changed.csv");
    std::fs::write(&changed_plan, changed.join("\n") + "\n").unwrap();
    let refused = cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&changed_plan)])
        .expect_code(3);
    assert!(
        refused.stderr.contains("plans/dt=2015-08-03") && refused.stderr.contains("--replace"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        snapshot(&lake),
        before,
        "nothing is written when a day is refused"
    );
    let replaced = cli(&lake)
        .run(dir.path(), &["ingest", "--replace", "--plan", s(&changed_plan)])
        .expect_code(0);
    assert_eq!(replaced.json()["plans"]["days"]["replaced"], 1);
    assert_eq!(replaced.json()["plans"]["days"]["unchanged"], 13);
    assert_eq!(
        snapshot(&lake.join("plans/dt=2015-08-03")).len(),
        1,
        "the old file is gone"
    );
}

#[test]
fn bad_plans_exit_3_naming_file_row_and_column() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let header = "Store,Date,Open,Promo,StateHoliday,SchoolHoliday";
    let cases = [
        (
            "target.csv",
            "Store,Date,Sales,Open,Promo,StateHoliday,SchoolHoliday\n1,2015-08-01,5,1,0,0,0\n".to_string(),
            "column \"Sales\": a plan must not hold the target column",
        ),
        (
            "promo.csv",
            format!("{header}\n1,2015-08-01,1,0,0,0\n2,2015-08-01,1,yes,0,0\n"),
            "line 3, column \"Promo\": \"yes\" is not a number",
        ),
        (
            "date.csv",
            format!("{header}\n1,2015-08-01,1,0,0,0\n2,2015-08-32,1,0,0,0\n"),
            "line 3, column \"Date\": \"2015-08-32\" is not a date",
        ),
        (
            "open.csv",
            format!("{header}\n1,2015-08-01,2,0,0,0\n"),
            "line 2, column \"Open\": the open flag must be 0 or 1",
        ),
        (
            "missing.csv",
            "Store,Date,Open,Promo,StateHoliday\n1,2015-08-01,1,0,0\n".to_string(),
            "column \"SchoolHoliday\": required column is missing",
        ),
        (
            "twice.csv",
            format!("{header}\n1,2015-08-01,1,0,0,0\n2,2015-08-01,1,0,0,0\n1,2015-08-01,1,1,0,0\n"),
            "line 4: duplicate row: same day and series as line 2",
        ),
        (
            "empty_key.csv",
            format!("{header}\n,2015-08-01,1,0,0,0\n"),
            "line 2, column \"Store\": the series key is empty",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = cli(&lake)
            .run(dir.path(), &["ingest", "--plan", s(&path)])
            .expect_code(3);
        assert!(
            out.stderr.contains(&format!("{}, ", s(&path))) && out.stderr.contains(expected),
            "{name}: expected {expected:?} in:\n{}",
            out.stderr
        );
    }
    assert!(!lake.join("plans").exists(), "nothing was written");

    // Two plan files giving one day and store twice are refused together.
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(&a, format!("{header}\n1,2015-08-01,1,0,0,0\n")).unwrap();
    std::fs::write(&b, format!("{header}\n1,2015-08-01,1,1,0,0\n")).unwrap();
    let out = cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&a), "--plan", s(&b)])
        .expect_code(3);
    assert!(out.stderr.contains("duplicate row"), "{}", out.stderr);
}

#[test]
fn read_plans_refuses_a_partition_with_a_duplicate_row_another_day_or_other_bytes_than_its_name() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let config = rossmann_config();
    let write = |day_folder: &str, dates: [&str; 2], stores: [&str; 2]| -> PathBuf {
        let folder = lake.join(format!("plans/dt={day_folder}"));
        std::fs::create_dir_all(&folder).unwrap();
        let mut df = df!(
            "Date" => dates.iter().map(|d| day(d)).collect::<Vec<_>>(),
            "Store" => stores,
            "Promo" => [1.0, 0.0],
            "StateHoliday" => ["0", "0"],
            "SchoolHoliday" => [0.0, 0.0],
            "Open" => [1.0, 1.0],
        )
        .unwrap();
        let path = folder.join("part-by-hand.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        path
    };
    let good = write("2015-08-01", ["2015-08-01", "2015-08-01"], ["1", "2"]);
    let read = |first: &str, last: &str| {
        read_plans(
            &open_lake(&lake),
            &config.data,
            &config.validation,
            day(first),
            day(last),
        )
    };
    assert_eq!(read("2015-08-01", "2015-08-01").unwrap().frame.height(), 2);
    let twice = write("2015-08-02", ["2015-08-02", "2015-08-02"], ["1", "1"]);
    let err = read("2015-08-01", "2015-08-02").unwrap_err().to_string();
    assert!(
        err.contains(s(&twice)) && err.contains("row 2: duplicate row: same day and series as row 1"),
        "{err}"
    );
    assert!(
        read("2015-08-01", "2015-08-01").is_ok(),
        "outside the window it is not read"
    );
    std::fs::remove_file(&twice).unwrap();
    let moved = write("2015-08-03", ["2015-08-03", "2015-08-04"], ["1", "2"]);
    let err = read("2015-08-01", "2015-08-03").unwrap_err().to_string();
    assert!(
        err.contains(s(&moved)) && err.contains("row 2, column \"Date\": the date does not match"),
        "{err}"
    );
    assert!(good.exists());
    // A file whose name promises a hash its bytes do not have (damaged,
    // or written by hand under such a name): refused before it is decoded.
    std::fs::remove_file(&moved).unwrap();
    let named = lake.join("plans/dt=2015-08-03/part-0123456789abcdef.parquet");
    std::fs::copy(&good, &named).unwrap();
    let err = read("2015-08-01", "2015-08-03").unwrap_err().to_string();
    assert!(
        err.contains(s(&named)) && err.contains("do not hash to its name"),
        "{err}"
    );
}

#[test]
fn every_thin_plan_day_is_refused_in_one_error() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let mut text = String::from("Store,Date,Open,Promo,StateHoliday,SchoolHoliday\n");
    for (date, stores) in [
        ("2015-08-01", 10),
        ("2015-08-02", 10),
        ("2015-08-03", 1),
        ("2015-08-04", 2),
        ("2015-08-05", 10),
    ] {
        for store in 1..=stores {
            text += &format!("{store},{date},1,0,0,0\n");
        }
    }
    let plan = dir.path().join("plan.csv");
    std::fs::write(&plan, text).unwrap();
    cli(&lake)
        .run(dir.path(), &["ingest", "--plan", s(&plan)])
        .expect_code(0);
    let config = rossmann_config();
    let read = |last: &str| {
        read_plans(
            &open_lake(&lake),
            &config.data,
            &config.validation,
            day("2015-08-01"),
            day(last),
        )
    };
    let err = read("2015-08-05").unwrap_err().to_string();
    assert!(
        err.contains(
            "2 days have far fewer series than the window's median of 10 (validation.min_series_ratio = 0.5): \
             2015-08-03 (1 series), 2015-08-04 (2 series)"
        ) && err.contains("every plan day is a forecast day"),
        "{err}"
    );
    assert_eq!(
        read("2015-08-02").unwrap().days.len(),
        2,
        "days without a thin one pass"
    );
}
