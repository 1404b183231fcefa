//! Reading and validating a training window: the real rossmann quirks pass;
//! a missing day, a thin day, an empty or misplaced partition are refused
//! with exit 3 and the partition named.

use std::path::Path;

use crate::util::{copy_tree, rossmann, rossmann_lake, tempdir};

#[test]
fn rossmann_window_with_its_real_quirks_is_valid() {
    let dir = tempdir();
    let out = rossmann(
        dir.path(),
        rossmann_lake(),
        &["--json", "check", "--date", "2015-07-31"],
    )
    .expect_code(0);
    let report = out.json();
    assert_eq!(report["first_day"], "2013-08-01");
    assert_eq!(report["series"], 100);
    assert_eq!(report["partition_files"], 730);
    // Store gaps of six months in 2014 (17 stores) mean fewer rows than 100 x 730.
    let rows = report["rows"].as_u64().unwrap();
    assert!(rows < 73_000 && rows > 60_000, "{rows}");
}

#[test]
fn a_missing_newest_partition_is_named() {
    let dir = tempdir();
    let out = rossmann(dir.path(), rossmann_lake(), &["check", "--date", "2015-08-01"]).expect_code(3);
    assert!(out.stderr.contains("sales/dt=2015-08-01"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the newest day in the lake is 2015-07-31"),
        "{}",
        out.stderr
    );
}

fn writable_rossmann(dir: &Path) -> std::path::PathBuf {
    let lake = dir.join("lake");
    copy_tree(rossmann_lake(), &lake);
    lake
}

fn only_file(partition: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(partition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    files[0].clone()
}

#[test]
fn a_day_with_far_fewer_series_is_refused() {
    let dir = tempdir();
    let lake = writable_rossmann(dir.path());
    // Replace 2015-07-30 with a day that has 3 stores instead of 100.
    let thin = dir.path().join("thin.csv");
    std::fs::write(
        &thin,
        "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n\
         1,4,2015-07-30,5000,500,1,1,0,1\n2,4,2015-07-30,6000,600,1,1,0,1\n3,4,2015-07-30,7000,700,1,1,0,1\n",
    )
    .unwrap();
    rossmann(
        dir.path(),
        &lake,
        &["ingest", "--replace", "--input", thin.to_str().unwrap()],
    )
    .expect_code(0);
    let out = rossmann(dir.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    assert!(
        out.stderr.contains("sales/dt=2015-07-30") && out.stderr.contains("only 3 series"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_empty_or_misplaced_partition_is_refused() {
    let dir = tempdir();
    let lake = writable_rossmann(dir.path());
    // A file of day 2015-07-29 copied into the 2015-07-28 partition.
    let day29 = only_file(&lake.join("sales/dt=2015-07-29"));
    let day28 = only_file(&lake.join("sales/dt=2015-07-28"));
    std::fs::copy(&day29, &day28).unwrap();
    let out = rossmann(dir.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    assert!(
        out.stderr.contains("does not match the partition's dt= day"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("dt=2015-07-28"), "{}", out.stderr);

    // An empty file (no rows, same columns) in the 2015-07-27 partition.
    let dir2 = tempdir();
    let lake = writable_rossmann(dir2.path());
    let day27 = only_file(&lake.join("sales/dt=2015-07-27"));
    crate::util::python(
        "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); pq.write_table(t.slice(0, 0), sys.argv[1])",
        &[day27.to_str().unwrap()],
    );
    let out = rossmann(dir2.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    assert!(
        out.stderr.contains("empty partition") && out.stderr.contains("dt=2015-07-27"),
        "{}",
        out.stderr
    );
}
