//! Reading and validating a training window: the real rossmann quirks pass;
//! a missing day, a thin newest day, an empty, misplaced or damaged
//! partition are refused with exit 3 and the partition named; a thin day in the history is
//! reported, or refused with every other one when `validation.history =
//! "refuse"`.

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

/// Replaces the rossmann day `day` in `lake` with one that has 3 stores instead of 100.
fn make_thin(dir: &Path, lake: &Path, day: &str) {
    let thin = dir.join(format!("thin-{day}.csv"));
    let mut text =
        String::from("Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n");
    for store in 1..=3 {
        text += &format!("{store},4,{day},{},500,1,1,0,1\n", 4000 + 1000 * store);
    }
    std::fs::write(&thin, text).unwrap();
    rossmann(
        dir,
        lake,
        &["ingest", "--replace", "--input", thin.to_str().unwrap()],
    )
    .expect_code(0);
}

#[test]
fn a_thin_day_in_the_history_is_reported_and_a_thin_newest_day_refused() {
    let dir = tempdir();
    let lake = writable_rossmann(dir.path());
    make_thin(dir.path(), &lake, "2015-07-30");
    // In the history of 2015-07-31: reported in the JSON and warned about, not refused.
    let out = rossmann(dir.path(), &lake, &["--json", "check", "--date", "2015-07-31"]).expect_code(0);
    let thin = &out.json()["thin_days"];
    assert_eq!(
        thin["days"],
        serde_json::json!([{"day": "2015-07-30", "series": 3}])
    );
    assert_eq!(thin["median"], 100);
    assert_eq!(thin["min_series_ratio"], 0.5);
    assert!(
        out.stderr.contains("thin days in the history") && out.stderr.contains("2015-07-30 (3 series)"),
        "{}",
        out.stderr
    );
    // As the newest day of a run: refused, naming the day, its count, the median and the setting.
    let out = rossmann(dir.path(), &lake, &["check", "--date", "2015-07-30"]).expect_code(3);
    assert!(
        out.stderr.contains("sales/dt=2015-07-30")
            && out.stderr.contains("only 3 series")
            && out.stderr.contains("median of 100")
            && out.stderr.contains("validation.min_series_ratio = 0.5"),
        "{}",
        out.stderr
    );
}

#[test]
fn refusing_thin_history_names_every_thin_day_in_one_error() {
    let dir = tempdir();
    let lake = writable_rossmann(dir.path());
    for day in ["2015-07-20", "2015-07-23", "2015-07-30"] {
        make_thin(dir.path(), &lake, day);
    }
    let config = crate::util::rossmann_config(dir.path(), "[validation]\nhistory = \"refuse\"\n");
    let out = crate::util::Cli::new(&config, crate::util::s(&lake))
        .run(dir.path(), &["check", "--date", "2015-07-31"]);
    let out = out.expect_code(3);
    assert!(
        out.stderr.contains(
            "3 days have far fewer series than the window's median of 100 (validation.min_series_ratio = 0.5): \
             2015-07-20 (3 series), 2015-07-23 (3 series), 2015-07-30 (3 series)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("validation.history = \"refuse\""),
        "{}",
        out.stderr
    );
    // Any other value of the setting is a configuration error.
    let config = crate::util::rossmann_config(dir.path(), "[validation]\nhistory = \"warn\"\n");
    let out = crate::util::Cli::new(&config, crate::util::s(&lake))
        .run(dir.path(), &["check", "--date", "2015-07-31"]);
    out.expect_code(2);
}

#[test]
fn an_empty_or_misplaced_partition_is_refused() {
    let dir = tempdir();
    let lake = writable_rossmann(dir.path());
    // A file of day 2015-07-29 copied into the 2015-07-28 partition (in
    // place of its file; the copy keeps its name, so its bytes hash to it).
    let day29 = only_file(&lake.join("sales/dt=2015-07-29"));
    let day28 = only_file(&lake.join("sales/dt=2015-07-28"));
    std::fs::remove_file(&day28).unwrap();
    std::fs::copy(
        &day29,
        lake.join("sales/dt=2015-07-28").join(day29.file_name().unwrap()),
    )
    .unwrap();
    let out = rossmann(dir.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    assert!(
        out.stderr.contains("does not match the partition's dt= day"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("dt=2015-07-28"), "{}", out.stderr);

    // An empty file (no rows, same columns) in the 2015-07-27 partition,
    // written by another tool (a name that promises no hash).
    let dir2 = tempdir();
    let lake = writable_rossmann(dir2.path());
    let day27 = only_file(&lake.join("sales/dt=2015-07-27"));
    let empty = lake.join("sales/dt=2015-07-27/part-written-elsewhere.parquet");
    crate::util::python(
        "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); pq.write_table(t.slice(0, 0), sys.argv[2])",
        &[day27.to_str().unwrap(), empty.to_str().unwrap()],
    );
    std::fs::remove_file(&day27).unwrap();
    let out = rossmann(dir2.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    assert!(
        out.stderr.contains("empty partition") && out.stderr.contains("dt=2015-07-27"),
        "{}",
        out.stderr
    );

    // A day file damaged in place (one byte changed): refused by its hash
    // before it is decoded, and named; `doctor` names it too.
    let dir3 = tempdir();
    let lake = writable_rossmann(dir3.path());
    let day26 = only_file(&lake.join("sales/dt=2015-07-26"));
    let mut bytes = std::fs::read(&day26).unwrap();
    bytes[41] ^= 0x1f;
    std::fs::write(&day26, bytes).unwrap();
    let out = rossmann(dir3.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(3);
    let name = day26.file_name().unwrap().to_str().unwrap();
    assert!(
        out.stderr.contains("do not hash to its name") && out.stderr.contains(name),
        "{}",
        out.stderr
    );
    let registry = dir3.path().join("registry");
    let doctor = rossmann(
        dir3.path(),
        &lake,
        &["--registry", registry.to_str().unwrap(), "doctor"],
    )
    .expect_code(3);
    assert!(
        doctor.stdout.contains(name) || doctor.stderr.contains(name),
        "{}",
        doctor.stdout
    );
    // The fix it gives: the day's rows ingested again with --replace write
    // the file again (the same name), and the window reads.
    let train = std::fs::read_to_string(crate::util::shared_data("rossmann/train.csv")).unwrap();
    let mut lines = train.lines();
    let mut day = lines.next().unwrap().to_string() + "\n";
    for line in lines.filter(|l| l.contains(",2015-07-26,")) {
        day += line;
        day += "\n";
    }
    let day_file = dir3.path().join("day.csv");
    std::fs::write(&day_file, day).unwrap();
    let again = rossmann(
        dir3.path(),
        &lake,
        &[
            "--json",
            "ingest",
            "--replace",
            "--input",
            day_file.to_str().unwrap(),
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(again["days"]["replaced"], 1, "{again}");
    assert_eq!(
        only_file(&lake.join("sales/dt=2015-07-26")),
        day26,
        "written again under its name"
    );
    rossmann(dir3.path(), &lake, &["check", "--date", "2015-07-31"]).expect_code(0);
}
