//! `salescast predict` on the rossmann lake, through the real binary: every
//! active series forecast for each of the next days with intervals, read back
//! with pyarrow; the same bytes on a rerun; no actual after the data day used;
//! plans marked; no champion refused. `retrain --predict` writes what
//! `retrain` then `predict` write, reads the window once (again for a
//! champion of another mapping), and exits with predict's code when predict
//! fails after a committed retrain. A champion that reads a column the data
//! no longer holds is refused with the way out.

use std::path::Path;

use serde_json::{Value, json};

use crate::emf::emf_documents;
use crate::util::{
    Cli, LINEAR, copy_tree, dropped_config, python, relative_snapshot, rossmann_config, rossmann_lake,
    run_cmd, s, snapshot, tempdir,
};

const DAY: &str = "2015-07-20";
/// The stores of the shared rossmann sample (all of them have rows in the
/// week up to `DAY`).
const STORES: usize = 100;

/// The store ids of the shared rossmann sample.
pub(crate) fn stores() -> Vec<String> {
    let text = std::fs::read_to_string(crate::util::shared_data("rossmann/train.csv")).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), STORES);
    ids
}

/// A private copy of the rossmann lake with a champion trained on `DAY`.
fn lake_with_champion(dir: &Path) -> (Cli, std::path::PathBuf) {
    let lake = dir.join("lake");
    copy_tree(rossmann_lake(), &lake);
    let config = rossmann_config(dir, LINEAR);
    let cli = Cli::new(&config, s(&lake)).registry(s(&dir.join("registry")));
    let report = cli
        .clone()
        .json()
        .run(dir, &["retrain", "--date", DAY])
        .expect_code(0)
        .json();
    assert_eq!(report["decision"], "promoted", "{report}");
    (cli, lake)
}

/// A copy of `dir`'s lake and registry in a new folder: (folder, lake, registry).
fn copy_of(dir: &Path) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let apart = tempdir();
    let (lake, registry) = (apart.path().join("lake"), apart.path().join("registry"));
    copy_tree(&dir.join("lake"), &lake);
    copy_tree(&dir.join("registry"), &registry);
    (apart, lake, registry)
}

fn predictions_folder(lake: &Path, day: &str) -> std::path::PathBuf {
    lake.join(format!("predictions/sales/dt={day}"))
}

#[test]
fn predict_forecasts_every_series_and_horizon_with_intervals_and_reruns_to_the_same_bytes() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    let out = cli
        .clone()
        .json()
        .run(dir.path(), &["predict", "--date", DAY])
        .expect_code(0);
    let report = out.json();
    assert_eq!(report["series"], STORES, "{report}");
    assert_eq!(report["rows"], STORES * 14);
    assert_eq!(report["unplanned_rows"], STORES * 14, "no plans in this lake");
    assert_eq!(
        out.stderr.matches("no plan for").count(),
        1,
        "warned once:\n{}",
        out.stderr
    );
    let folder = predictions_folder(&lake, DAY);
    assert!(folder.join("_manifest.json").exists());

    let checked = python(
        r#"
import json, sys, pathlib, datetime
import pyarrow.parquet as pq, pyarrow as pa
folder = pathlib.Path(sys.argv[1])
manifest = json.loads((folder / "_manifest.json").read_text())
t = pa.concat_tables([pq.read_table(folder.parent.parent.parent / f["key"]) for f in manifest["files"]])
assert t.num_rows == manifest["rows"] == 100 * 14, (t.num_rows, manifest["rows"])
s = t.schema
assert str(s.field("target_date").type) == "date32[day]", s
assert str(s.field("horizon").type) == "int32", s
assert str(s.field("planned").type) == "bool", s
rows = t.to_pylist()
assert {r["horizon"] for r in rows} == set(range(1, 15))
assert min(r["target_date"] for r in rows) == datetime.date(2015, 7, 21)
assert max(r["target_date"] for r in rows) == datetime.date(2015, 8, 3)
for r in rows:
    assert r["target_date"] == datetime.date(2015, 7, 20) + datetime.timedelta(days=r["horizon"])
    assert r["lower"] <= r["forecast"] <= r["upper"], r
    assert r["data_day"] == datetime.date(2015, 7, 20)
    assert len(r["model_sha256"]) == 64 and r["model_sha256"] == manifest["model_sha256"]
    assert r["series"] == r["Store"]
    assert not r["planned"]
# Sundays: nearly every store is closed, so forecast 0 with a [0, 0] interval.
sundays = [r for r in rows if r["target_date"].weekday() == 6]
assert sum(r["forecast"] == 0 and r["upper"] == 0 for r in sundays) > 0.9 * len(sundays)
weekdays = [r for r in rows if r["target_date"].weekday() < 5]
assert sum(r["lower"] < r["forecast"] < r["upper"] for r in weekdays) > 0.9 * len(weekdays)
print(len(rows))
"#,
        &[s(&folder)],
    );
    assert_eq!(checked, (STORES * 14).to_string());
    // DuckDB, as Athena would: every Parquet file of the folder, by glob.
    let sql = python(
        r#"
import sys, duckdb
print(duckdb.connect().execute(f"select count(*), count(distinct series), min(horizon), max(horizon), "
                 f"sum(case when lower <= forecast and forecast <= upper then 1 else 0 end) "
                 f"from read_parquet('{sys.argv[1]}/*.parquet')").fetchone())
"#,
        &[s(&folder)],
    );
    assert_eq!(
        sql,
        format!("({}, {STORES}, 1, 14, {})", STORES * 14, STORES * 14)
    );

    let before = snapshot(&folder);
    let again = cli
        .json()
        .run(dir.path(), &["predict", "--date", DAY])
        .expect_code(0)
        .json();
    assert_eq!(again["written"]["outcome"], "unchanged", "{again}");
    assert_eq!(snapshot(&folder), before, "a rerun writes the same bytes");
}

/// `retrain --predict` (the daily job's single build) is retrain, then
/// predict, in one process from the window the retrain read: on two copies
/// of the same lake and registry (a champion of `DAY`), the next day's
/// `retrain --predict` and `retrain` followed by `predict` make the same
/// decision and version and write the same prediction bytes; with --json it
/// prints the two reports, retrain's then predict's.
#[test]
fn retrain_with_predict_writes_what_retrain_then_predict_write() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    let (apart, lake_apart, registry_apart) = copy_of(dir.path());
    let next = "2015-07-21";

    let both = cli
        .clone()
        .json()
        .run(dir.path(), &["retrain", "--date", next, "--predict"])
        .expect_code(0);
    let docs = both.json_documents();
    assert_eq!(docs.len(), 2, "{docs:#?}");
    // The forecasts start from the retrain's window: only the plans are read.
    assert!(both.stderr.contains("loading the plans"), "{}", both.stderr);
    assert!(
        !both.stderr.contains("loading the window and plans"),
        "{}",
        both.stderr
    );
    let (retrained, predicted) = (&docs[0], &docs[1]);

    let config = rossmann_config(dir.path(), LINEAR);
    let two = Cli::new(&config, s(&lake_apart))
        .registry(s(&registry_apart))
        .json();
    let retrained_apart = two
        .run(apart.path(), &["retrain", "--date", next])
        .expect_code(0)
        .json();
    let predicted_apart = two
        .run(apart.path(), &["predict", "--date", next])
        .expect_code(0)
        .json();

    for key in ["decision", "champion_after"] {
        assert_eq!(retrained[key], retrained_apart[key], "{key}: {retrained}");
    }
    assert_eq!(
        retrained["challenger"]["version"],
        retrained_apart["challenger"]["version"]
    );
    assert_eq!(predicted["version"], retrained["champion_after"], "{predicted}");
    for key in ["version", "series", "rows", "unplanned_rows", "preview"] {
        assert_eq!(predicted[key], predicted_apart[key], "{key}: {predicted}");
    }
    assert_eq!(predicted["written"]["outcome"], "written", "{predicted}");
    assert!(predictions_folder(&lake, next).join("_manifest.json").exists());
    assert_eq!(
        relative_snapshot(&lake, "predictions"),
        relative_snapshot(&lake_apart, "predictions"),
        "the same prediction files, byte for byte"
    );
}

/// A kept champion built with another data mapping than the configuration's
/// (a covariate dropped since it was trained): `retrain --predict` cannot
/// use the retrain's window (read with the configuration's mapping), so it
/// reads the window again with the champion's, as `predict` does, and
/// writes what a separate `predict` writes.
#[test]
fn retrain_with_predict_reads_the_window_again_for_a_champion_of_another_mapping() {
    let dir = tempdir();
    let (_, lake) = lake_with_champion(dir.path());
    let registry = dir.path().join("registry");
    let (apart, lake_apart, registry_apart) = copy_of(dir.path());
    // A margin no challenger clears: the champion is kept.
    let config = dropped_config(
        dir.path(),
        &format!("{LINEAR}[promotion]\nmin_improvement = 0.99\n"),
    );
    let next = "2015-07-21";

    let both = Cli::new(&config, s(&lake))
        .registry(s(&registry))
        .json()
        .run(dir.path(), &["retrain", "--date", next, "--predict"])
        .expect_code(0);
    let docs = both.json_documents();
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let (retrained, predicted) = (&docs[0], &docs[1]);
    assert_eq!(retrained["decision"], "kept", "{retrained}");
    assert_ne!(retrained["challenger"]["version"], retrained["champion_after"]);
    assert_eq!(predicted["version"], retrained["champion_after"], "{predicted}");
    assert!(
        both.stderr.contains("loading the window and plans"),
        "{}",
        both.stderr
    );

    let predicted_apart = Cli::new(&config, s(&lake_apart))
        .registry(s(&registry_apart))
        .json()
        .run(apart.path(), &["predict", "--date", next])
        .expect_code(0)
        .json();
    assert_eq!(predicted["version"], predicted_apart["version"]);
    assert_eq!(
        relative_snapshot(&lake, "predictions"),
        relative_snapshot(&lake_apart, "predictions"),
        "the same prediction files, byte for byte"
    );
    // The champion was scored on the rows a run with its own configuration
    // scores it on (its features from the window read with its mapping).
    let own = Cli::new(&rossmann_config(dir.path(), LINEAR), s(&lake_apart))
        .registry(s(&registry_apart))
        .json()
        .run(apart.path(), &["retrain", "--date", next, "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(own["champion"]["version"], retrained["champion_after"], "{own}");
    for key in ["holdout", "one_day"] {
        assert_eq!(
            retrained["champion"][key], own["champion"][key],
            "{key}: {retrained}"
        );
    }
}

/// A covariate whose column stopped arriving: dropped from the
/// configuration, and the next day's file ingested again without it. The
/// champion, trained with it, can be neither scored nor forecast: `retrain`
/// and `predict` refuse (exit 3) naming the file and the column, say what
/// to do, and change nothing.
#[test]
fn a_champion_that_reads_a_column_the_data_no_longer_holds_is_refused_with_the_way_out() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    let config = dropped_config(dir.path(), LINEAR);
    let next = "2015-07-21";
    let (header, rows) = crate::plans::train_rows();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (date, school) = (at("Date"), at("SchoolHoliday"));
    let without = |row: &[String]| -> String {
        let cells: Vec<&str> = (0..row.len())
            .filter(|i| *i != school)
            .map(|i| row[i].as_str())
            .collect();
        cells.join(",") + "\n"
    };
    let mut text = without(&header);
    for row in rows.iter().filter(|r| r[date] == next) {
        text += &without(row);
    }
    let input = dir.path().join("next-day.csv");
    std::fs::write(&input, text).unwrap();
    let dropped = Cli::new(&config, s(&lake)).registry(s(&dir.path().join("registry")));
    dropped
        .clone()
        .run(dir.path(), &["ingest", "--input", s(&input), "--replace"])
        .expect_code(0);
    let models = || {
        cli.clone()
            .json()
            .run(dir.path(), &["models", "list"])
            .expect_code(0)
            .json()
    };
    let before = models();
    for command in ["retrain", "predict"] {
        let refused = dropped
            .clone()
            .run(dir.path(), &[command, "--date", next])
            .expect_code(3);
        for part in [
            "sales/dt=2015-07-21/",
            "column \"SchoolHoliday\": required column is missing",
            "which reads SchoolHoliday that this configuration no longer reads",
            "rollback --to VERSION --reason TEXT",
            "training.model_name",
        ] {
            assert!(
                refused.stderr.contains(part),
                "{command}: {part}: {}",
                refused.stderr
            );
        }
    }
    assert_eq!(models(), before, "no version stored, the same champion");
    assert!(!predictions_folder(&lake, next).exists(), "nothing forecast");
}

/// A predict that fails after `retrain --predict` committed its retrain (a
/// target day's plan file is damaged): the retrain's report is printed and
/// its version stored, with its metrics; the run exits with predict's code
/// (3, bad data) naming the file, its failure metric is predict's, and no
/// forecast is written.
#[test]
fn retrain_with_predict_exits_with_predicts_code_after_a_committed_retrain() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    let next = "2015-07-21";
    let bad = lake.join("plans/dt=2015-07-23/part-0000000000000000.parquet");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    // Not what its name says (the name holds its content's hash): refused.
    std::fs::write(&bad, b"not a parquet file").unwrap();

    let out = run_cmd(
        cli.clone()
            .json()
            .command(dir.path(), &["retrain", "--date", next, "--predict"])
            .env("SALESCAST_EMF", "on"),
    )
    .expect_code(3);
    let docs = out.json_documents();
    assert_eq!(docs.len(), 1, "the retrain's report only: {docs:#?}");
    let retrained = &docs[0];
    assert_eq!(retrained["run_date"], next, "{retrained}");
    assert!(
        out.stderr.contains("part-0000000000000000.parquet"),
        "{}",
        out.stderr
    );
    let version = retrained["challenger"]["version"].as_str().unwrap();
    cli.run(dir.path(), &["models", "show", version]).expect_code(0);
    let metrics = emf_documents(&out.stderr);
    let commands: Vec<(&Value, bool)> = metrics
        .iter()
        .map(|d| (&d["Command"], d.get("Failed").is_some()))
        .collect();
    assert_eq!(
        commands,
        [(&json!("retrain"), false), (&json!("predict"), true)],
        "{}",
        out.stderr
    );
    assert!(!predictions_folder(&lake, next).exists());
}

#[test]
fn a_forecast_made_at_d_uses_no_actual_after_d() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    cli.clone()
        .run(dir.path(), &["predict", "--date", DAY])
        .expect_code(0);
    let folder = predictions_folder(&lake, DAY);
    let before = snapshot(&folder);
    // Every actual after D changes: tripled, plus one.
    let changed = python(
        r#"
import sys, pathlib
import pyarrow.parquet as pq, pyarrow.compute as pc
n = 0
for part in sorted(pathlib.Path(sys.argv[1], "sales").glob("dt=*/*.parquet")):
    if part.parent.name > "dt=" + sys.argv[2]:
        t = pq.read_table(part)
        i = t.schema.get_field_index("Sales")
        t = t.set_column(i, "Sales", pc.add(pc.multiply(t["Sales"], 3), 1).cast(t.schema.field(i).type))
        pq.write_table(t, part)
        n += 1
print(n)
"#,
        &[s(&lake), DAY],
    );
    assert_eq!(changed, "11", "the partitions of 2015-07-21 .. 07-31");
    std::fs::remove_dir_all(&folder).unwrap();
    cli.run(dir.path(), &["predict", "--date", DAY]).expect_code(0);
    assert_eq!(
        snapshot(&folder),
        before,
        "the forecasts made at {DAY} do not change when later actuals do"
    );
}

#[test]
fn a_plan_sets_its_days_and_days_without_one_are_marked_and_warned_once() {
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    // A plan for the first seven days: every store open with a promotion.
    let plan = dir.path().join("plan.csv");
    let mut text = String::from("Store,Date,Promo,StateHoliday,SchoolHoliday,Open\n");
    for day in 21..=27 {
        for store in stores() {
            text += &format!("{store},2015-07-{day},1,0,0,1\n");
        }
    }
    std::fs::write(&plan, text).unwrap();
    cli.clone()
        .run(dir.path(), &["ingest", "--plan", s(&plan)])
        .expect_code(0);
    let out = cli
        .json()
        .run(dir.path(), &["predict", "--date", DAY])
        .expect_code(0);
    let report = out.json();
    assert_eq!(report["planned_rows"], STORES * 7, "{report}");
    assert_eq!(report["unplanned_rows"], STORES * 7);
    assert_eq!(out.stderr.matches("no plan for").count(), 1, "{}", out.stderr);
    let counts = python(
        r#"
import json, sys, pathlib
import pyarrow.parquet as pq, pyarrow as pa
folder = pathlib.Path(sys.argv[1])
manifest = json.loads((folder / "_manifest.json").read_text())
rows = pa.concat_tables([pq.read_table(folder.parent.parent.parent / f["key"]) for f in manifest["files"]]).to_pylist()
planned = {r["horizon"] for r in rows if r["planned"]}
unplanned = {r["horizon"] for r in rows if not r["planned"]}
# The plan opens every store on Sunday 2015-07-26 (h=6): forecasts are not 0 there.
sunday = [r for r in rows if r["horizon"] == 6]
print(sorted(planned) == list(range(1, 8)), sorted(unplanned) == list(range(8, 15)), all(r["forecast"] > 0 for r in sunday))
"#,
        &[s(&predictions_folder(&lake, DAY))],
    );
    assert_eq!(counts, "True True True");
}

#[test]
fn predict_without_a_champion_says_so_with_its_own_exit_code() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    let out = Cli::new(&rossmann_config(dir.path(), LINEAR), s(&lake))
        .registry(s(&dir.path().join("registry")))
        .run(dir.path(), &["predict", "--date", DAY])
        .expect_code(5);
    assert!(out.stderr.contains("no champion"), "{}", out.stderr);
    assert!(!lake.join("predictions").exists(), "nothing written");
}

/// A predict killed after its data files and before its manifest leaves a
/// folder readers skip; the next predict commits it.
#[test]
fn a_predict_killed_before_its_manifest_leaves_a_folder_readers_skip() {
    use std::time::{Duration, Instant};
    let dir = tempdir();
    let (cli, lake) = lake_with_champion(dir.path());
    let gate = dir.path().join("gate");
    let mut child = cli
        .command(dir.path(), &["predict", "--date", DAY])
        .env("SCAST_TEST_PAUSE_AT", "predictions-staged")
        .env("SCAST_TEST_GATE", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = gate.join(format!("ready-predictions-staged-{}", child.id()));
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "predict ended before the pause point"
        );
        assert!(Instant::now() < deadline, "predict never reached the pause point");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");

    let folder = predictions_folder(&lake, DAY);
    let files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.starts_with("part-")), "{files:?}");
    assert!(!files.iter().any(|f| f == "_manifest.json"), "{files:?}");
    let store = salescast_core::storage::open(s(&lake), &Default::default(), crate::util::handle()).unwrap();
    let reader = salescast_core::lake::Lake::new(store);
    let day = chrono::NaiveDate::from_ymd_opt(2015, 7, 20).unwrap();
    assert!(
        salescast_core::predictions::read_predictions(&reader, "sales", day)
            .unwrap()
            .is_none(),
        "a folder without a manifest is not read"
    );
    assert!(
        salescast_core::predictions::list_prediction_days(&reader, "sales")
            .unwrap()
            .is_empty()
    );

    cli.run(dir.path(), &["predict", "--date", DAY]).expect_code(0);
    let (manifest, frame) = salescast_core::predictions::read_predictions(&reader, "sales", day)
        .unwrap()
        .expect("committed by the next run");
    assert_eq!(manifest.rows, (STORES * 14) as u64);
    assert_eq!(frame.height(), STORES * 14);
}

/// `salescast ... | head -1`: a reader that stops early is no panic and no error.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let dir = tempdir();
    let mut child = crate::util::salescast(dir.path())
        .args(["--json", "models", "list", "--registry"])
        .arg(dir.path().join("registry"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is printed
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
