//! Drift on the real rossmann lake: the target of the newest day multiplied
//! by 3 in a copy of the lake raises its drift alert (and only its), named in
//! the report, the manifest and, with `promotion.refuse_on_drift`, the
//! decision that refuses the challenger; and (a long test, run on demand) the
//! unshifted lake raises no alert over 28 consecutive days.

use std::path::Path;

use chrono::{Days, NaiveDate};

use crate::util::{Cli, LINEAR, copy_tree, python, rossmann_config, rossmann_lake, s, tempdir};

const NEWEST: &str = "2015-07-31";

/// Multiplies the target of every row of `day`'s partition by `factor`: the
/// day's file written again under its content-addressed name (as an
/// `ingest --replace` of those rows would write it; the old file removed).
fn multiply_target(lake: &Path, day: &str, factor: f64) {
    let dir = lake.join(format!("sales/dt={day}"));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file a day: {files:?}");
    python(
        "import sys, pyarrow.parquet as pq, pyarrow.compute as pc
t = pq.read_table(sys.argv[1]); i = t.schema.get_field_index('Sales'); f = t.schema.field(i)
t = t.set_column(i, f, pc.multiply(t['Sales'], float(sys.argv[2])).cast(f.type))
import hashlib, io, os
out = io.BytesIO(); pq.write_table(t, out); data = out.getvalue()
os.remove(sys.argv[1])
name = 'part-' + hashlib.sha256(data).hexdigest()[:16] + '.parquet'
open(os.path.join(os.path.dirname(sys.argv[1]), name), 'wb').write(data)",
        &[s(&files[0]), &factor.to_string()],
    );
}

fn retrain(dir: &Path, config: &Path, lake: &Path, date: &str, dry_run: bool) -> serde_json::Value {
    let registry = dir.join("registry");
    let mut args = vec!["retrain", "--date", date];
    if dry_run {
        args.push("--dry-run");
    }
    Cli::new(config, s(lake))
        .registry(s(&registry))
        .json()
        .run(dir, &args)
        .expect_code(0)
        .json()
}

fn alerts(report: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(report["drift"]["alerts"].clone()).unwrap()
}

#[test]
fn a_shifted_target_raises_its_alert_and_refuses_promotion() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    let plain = rossmann_config(dir.path(), LINEAR);
    let refusing = rossmann_config(
        dir.path(),
        &format!("{LINEAR}[promotion]\nrefuse_on_drift = true\n"),
    );

    let before = retrain(dir.path(), &refusing, &lake, NEWEST, true);
    assert_eq!(alerts(&before), Vec::<String>::new(), "{:#}", before["drift"]);
    assert_eq!(before["decision"], "promoted", "without drift the gate promotes");
    assert!(before["drift"]["max_drift"].as_f64().unwrap() < 1.0);

    multiply_target(&lake, NEWEST, 3.0);
    let shifted = retrain(dir.path(), &plain, &lake, NEWEST, true);
    assert_eq!(alerts(&shifted), ["Sales"], "{:#}", shifted["drift"]);
    let sales = &shifted["drift"]["features"][0];
    assert_eq!(sales["feature"], "Sales");
    assert_eq!(sales["day"]["status"], "alert", "{sales:#}");
    assert!(shifted["drift"]["max_drift"].as_f64().unwrap() > 1.0);
    assert_eq!(
        shifted["decision"], "promoted",
        "drift refuses nothing unless asked"
    );

    let refused = retrain(dir.path(), &refusing, &lake, NEWEST, false);
    assert_eq!(refused["decision"], "rejected", "{}", refused["reason"]);
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("newest data drifted: Sales (day 2015-07-31 PSI")
            && reason.contains("refuse_on_drift"),
        "{reason}"
    );
    let model = dir.path().join("registry/sales");
    let version = refused["challenger"]["version"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model.join(format!("versions/{version}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["drift"]["alerts"], serde_json::json!(["Sales"]));
    assert_eq!(manifest["drift"]["newest_day"], NEWEST);
    let markdown = std::fs::read_to_string(model.join(format!("runs/{NEWEST}/report.md"))).unwrap();
    assert!(
        markdown.contains("**Drift alert:** Sales (day 2015-07-31"),
        "{markdown}"
    );
    assert!(markdown.contains("| Sales |"), "{markdown}");
}

/// The false-alarm measurement: a dry run on each of 28 consecutive days of
/// the unshifted lake (2015-07-04 .. 2015-07-31; `DRIFT_DAYS` and
/// `DRIFT_LAST_DAY` change them), counting alerts and warnings. Long (a retrain a
/// day in a debug build), so run on demand:
/// `scripts/test.sh --test integration -- --ignored drift::an_unshifted`.
#[test]
#[ignore = "long: 28 retrains; run on demand (see the doc comment)"]
fn an_unshifted_lake_raises_no_alert_over_28_days() {
    let days: u64 = std::env::var("DRIFT_DAYS").map_or(28, |v| v.parse().unwrap());
    let last: NaiveDate =
        std::env::var("DRIFT_LAST_DAY").map_or(NEWEST.parse().unwrap(), |v| v.parse().unwrap());
    let dir = tempdir();
    let config = rossmann_config(dir.path(), LINEAR);
    let (mut comparisons, mut alerted, mut warned, mut days_with_alert, mut seconds) = (0, 0, 0, 0, 0.0);
    let mut named = Vec::new();
    for back in (0..days).rev() {
        let day = last - Days::new(back);
        let report = retrain(dir.path(), &config, rossmann_lake(), &day.to_string(), true);
        let drift = &report["drift"];
        seconds += report["seconds"]["drift"].as_f64().unwrap();
        for feature in drift["features"].as_array().unwrap() {
            for which in ["day", "week"] {
                let status = &feature[which]["status"];
                if status.is_null() {
                    continue;
                }
                comparisons += 1;
                if status == "alert" {
                    alerted += 1;
                    named.push(format!("{day} {} {which}", feature["feature"]));
                } else if status == "warn" {
                    warned += 1;
                }
            }
        }
        if !alerts(&report).is_empty() {
            days_with_alert += 1;
        }
        println!(
            "{day}: max drift {:.3}, alerts {}",
            drift["max_drift"], drift["alerts"]
        );
    }
    println!(
        "{days} days: {days_with_alert} with an alert; {alerted} alerts and {warned} warnings in {comparisons} \
         comparisons (false-alarm rate {:.4} per comparison, {:.4} per day); drift took {:.3} s a run on average",
        alerted as f64 / comparisons as f64,
        days_with_alert as f64 / days as f64,
        seconds / days as f64
    );
    assert!(named.is_empty(), "false alarms: {named:?}");
}
