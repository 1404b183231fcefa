//! Sharded `monitor` against the S3 test server, N = 3, each shard a
//! separate process of the real binary: on a lake with forecasts made on
//! several days, `monitor --shard K/3` three times (at once), then
//! `monitor --fan-in 3`, compared with an unsharded `monitor` of the same
//! day on a copy of the same lake: the same scores files, byte for byte,
//! and the same report figures; nothing in the table before the fan-in and
//! nothing staged after it but the fan-in's record of its commit; a shard
//! killed before its marker, and a shard rerun, change nothing. The fan-in
//! refuses (exit 6 naming the day and the shards, nothing written) a
//! missing shard, shards of another N, stale shards (forecasts committed
//! since) and a damaged staged file; retried after its commit, it reports
//! that commit and writes nothing.

use salescast_core::storage::PutMode;
use serde_json::Value;

use crate::crash::kill_at;
use crate::retrain::Place;
use crate::shard::{cli, open, site};
use crate::util::{Cli, Outcome};

const DATE: &str = "2015-07-22";
const SCORES: &str = "scores/sales/dt=";
const STAGED: &str = "scores/sales/_shards/";

/// Runs `salescast ARGS` on `lake`.
fn run(place: &Place, config: &std::path::Path, lake: &str, args: &[&str]) -> Outcome {
    cli(place, config, lake).run(place.dir.path(), args)
}

/// `monitor --date DATE` with `extra`.
fn monitor(place: &Place, config: &std::path::Path, lake: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["monitor", "--date", DATE];
    args.extend_from_slice(extra);
    run(place, config, lake, &args)
}

/// The objects under `prefix` (key, bytes), sorted by key.
fn objects(place: &Place, lake: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let store = open(place, lake);
    let mut found: Vec<(String, Vec<u8>)> = store
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|m| (m.key.clone(), store.get(&m.key).unwrap().bytes))
        .collect();
    found.sort();
    found
}

/// The three shards as three processes at once; their reports.
fn all_shards(place: &Place, config: &std::path::Path, lake: &str) -> Vec<Value> {
    let children: Vec<_> = (0..3)
        .map(|k| {
            let shard = format!("{k}/3");
            cli(place, config, lake)
                .command(place.dir.path(), &["monitor", "--date", DATE, "--shard", &shard])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            Outcome {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
            .expect_code(0)
            .json()
        })
        .collect()
}

/// The fields of a monitor report that do not depend on the run's time.
fn figures(report: &Value) -> Value {
    serde_json::json!({
        "days": report["days"],
        "written": report["written"],
        "live": report["live"],
        "holdout": report["holdout"],
        "horizon_days": report["horizon_days"],
    })
}

#[test]
fn a_sharded_monitor_writes_the_single_runs_scores() {
    let (place, config, lakes) = site(2);
    let (sharded, single) = (&lakes[0], &lakes[1]);
    for day in ["2015-07-17", "2015-07-18", "2015-07-19", "2015-07-20"] {
        run(&place, &config, sharded, &["predict", "--date", day]).expect_code(0);
    }
    // The same committed forecasts on the other lake.
    let to = open(&place, single);
    for (key, bytes) in objects(&place, sharded, "predictions/") {
        to.put(&key, &bytes, PutMode::Create).unwrap();
    }
    let one = monitor(&place, &config, single, &[]).expect_code(0).json();
    let days = one["days"].as_array().unwrap();
    assert_eq!(days.len(), 5, "2015-07-18 .. 2015-07-22 have forecasts: {one}");
    assert!(days.iter().all(|d| d["rows"].as_u64().unwrap() > 0), "{one}");

    let shards = all_shards(&place, &config, sharded);
    let rows: Vec<u64> = shards.iter().map(|r| r["rows"].as_u64().unwrap()).collect();
    let total: u64 = days.iter().map(|d| d["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows.iter().sum::<u64>(), total, "{rows:?}");
    assert!(rows.iter().all(|&r| r > 0), "every shard has rows: {rows:?}");
    for (k, report) in shards.iter().enumerate() {
        assert_eq!(report["shard"], serde_json::json!({"k": k, "n": 3}));
        assert_eq!(report["written"]["outcome"], "written");
        let marker = &report["written"]["marker"];
        assert_eq!(marker["date"], DATE);
        assert_eq!(marker["rows"], report["rows"]);
        assert_eq!(marker["inputs"]["predictions"].as_array().unwrap().len(), 4);
    }
    assert!(
        objects(&place, sharded, SCORES).is_empty(),
        "nothing in the scores table before the fan-in"
    );
    assert_eq!(objects(&place, sharded, STAGED).len(), 6, "3 files, 3 markers");

    // A shard killed between its file and its marker, then rerun; another
    // rerun: the same marker, nothing written.
    kill_at(
        &place,
        &config,
        &["monitor", "--date", DATE, "--shard", "1/3"],
        "shard-staged",
    );
    let again = monitor(&place, &config, sharded, &["--shard", "1/3"])
        .expect_code(0)
        .json();
    assert_eq!(again["written"]["outcome"], "unchanged", "{again}");
    assert_eq!(again["written"]["marker"], shards[1]["written"]["marker"]);

    // Two monitor runs that never fanned in: more than 14 days before DATE
    // (expires with this fan-in) and within them (kept).
    let abandoned = ["2015-07-01", "2015-07-10"].map(|d| format!("{STAGED}dt={d}/shard-0-of-3.json"));
    for key in &abandoned {
        open(&place, sharded).put(key, b"{}", PutMode::Overwrite).unwrap();
    }
    let fanned = monitor(&place, &config, sharded, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(fanned["fan_in"], 3);
    let left: Vec<String> = objects(&place, sharded, STAGED)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let record = format!("{STAGED}dt={DATE}/committed.json");
    assert_eq!(
        left,
        [abandoned[1].clone(), record.clone()],
        "only the old abandoned run expired; the fan-in's record of its commit stays"
    );
    open(&place, sharded).delete(&abandoned[1]).unwrap();
    assert!(
        one.get("fan_in").is_none(),
        "an unsharded report has no fan_in: {one}"
    );
    assert_eq!(figures(&fanned), figures(&one), "the same report figures");
    assert_eq!(fanned["written"]["written"], 5);

    let (a, b) = (objects(&place, sharded, SCORES), objects(&place, single, SCORES));
    assert_eq!(a.len(), 5, "one file a day");
    assert_eq!(a, b, "the same scores files, byte for byte");
    let left: Vec<String> = objects(&place, sharded, STAGED)
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(left, [record], "the fan-in removed the staged shards");
    // Reruns: the whole sharded run again finds every day unchanged (its
    // text report says the fan-in); so does the unsharded one.
    all_shards(&place, &config, sharded);
    let fan_in_text = || {
        Cli::new(&config, sharded)
            .registry(&place.registry)
            .flags(&place.flags)
            .run(place.dir.path(), &["monitor", "--date", DATE, "--fan-in", "3"])
            .expect_code(0)
            .stdout
    };
    let text = fan_in_text();
    for wanted in [
        "Fan-in of 3 shards",
        "scores table: 0 days written, 5 unchanged, 0 replaced",
        "## Live accuracy through 2015-07-22",
    ] {
        assert!(text.contains(wanted), "{wanted}: {text}");
    }
    // That fan-in's build retried: its record answers, in words too.
    let retried = fan_in_text();
    for wanted in [
        "> Retried fan-in",
        "scores table: 0 days written, 5 unchanged, 0 replaced",
    ] {
        assert!(retried.contains(wanted), "{wanted}: {retried}");
    }
    let single_again = monitor(&place, &config, sharded, &[]).expect_code(0).json();
    assert_eq!(single_again["written"]["unchanged"], 5, "{single_again}");
    assert_eq!(objects(&place, sharded, SCORES), b);
}

/// The fan-in refused with exit 6 naming the day and `shards`, and wrote
/// nothing in the scores table. Returns its stderr.
fn refused(out: Outcome, shards: &[&str], place: &Place, lake: &str) -> String {
    let out = out.expect_code(6);
    assert!(
        out.stderr.contains(&format!("monitor shards of {DATE}")),
        "{}",
        out.stderr
    );
    for shard in shards {
        assert!(
            out.stderr.contains(&format!("shard {shard}:")),
            "{shard}: {}",
            out.stderr
        );
    }
    assert!(objects(place, lake, SCORES).is_empty(), "nothing written");
    out.stderr
}

#[test]
fn a_monitor_fan_in_refuses_missing_stale_damaged_or_other_n_shards() {
    let (place, config, lakes) = site(1);
    let lake = &lakes[0];
    for day in ["2015-07-19", "2015-07-20"] {
        run(&place, &config, lake, &["predict", "--date", day]).expect_code(0);
    }
    // Shard 1 killed between its file and its marker.
    kill_at(
        &place,
        &config,
        &["monitor", "--date", DATE, "--shard", "1/3"],
        "shard-staged",
    );
    let staged: Vec<String> = objects(&place, lake, STAGED).into_iter().map(|o| o.0).collect();
    assert!(
        staged.len() == 1 && staged[0].contains("/part-1-of-3-"),
        "its file, no marker: {staged:?}"
    );
    for k in [0, 2] {
        monitor(&place, &config, lake, &["--shard", &format!("{k}/3")]).expect_code(0);
    }
    let stderr = refused(
        monitor(&place, &config, lake, &["--fan-in", "3"]),
        &["1/3"],
        &place,
        lake,
    );
    assert!(
        !stderr.contains("shard 0/3") && !stderr.contains("shard 2/3"),
        "{stderr}"
    );
    // A shard of another N does not count.
    monitor(&place, &config, lake, &["--shard", "1/2"]).expect_code(0);
    let stderr = refused(
        monitor(&place, &config, lake, &["--fan-in", "3"]),
        &["1/3"],
        &place,
        lake,
    );
    assert!(stderr.contains("shard-1-of-2.json"), "{stderr}");
    refused(
        monitor(&place, &config, lake, &["--fan-in", "2"]),
        &["0/2"],
        &place,
        lake,
    );

    // Forecasts committed after the shards ran: every shard is stale.
    monitor(&place, &config, lake, &["--shard", "1/3"]).expect_code(0);
    run(&place, &config, lake, &["predict", "--date", "2015-07-21"]).expect_code(0);
    let stderr = refused(
        monitor(&place, &config, lake, &["--fan-in", "3"]),
        &["0/3", "1/3", "2/3"],
        &place,
        lake,
    );
    assert!(
        stderr.contains("stale") && stderr.contains("forecasts made on 2015-07-21"),
        "{stderr}"
    );
    let reports: Vec<Value> = (0..3)
        .map(|k| {
            monitor(&place, &config, lake, &["--shard", &format!("{k}/3")])
                .expect_code(0)
                .json()
        })
        .collect();
    assert!(
        reports.iter().all(|r| r["written"]["outcome"] == "replaced"),
        "{reports:?}"
    );

    // A staged file that no longer matches its marker, then one gone.
    let file = reports[1]["written"]["marker"]["file"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let store = open(&place, lake);
    store.put(&file, b"damaged", PutMode::Overwrite).unwrap();
    let stderr = refused(
        monitor(&place, &config, lake, &["--fan-in", "3"]),
        &["1/3"],
        &place,
        lake,
    );
    assert!(stderr.contains("SHA-256"), "{stderr}");
    store.delete(&file).unwrap();
    let stderr = refused(
        monitor(&place, &config, lake, &["--fan-in", "3"]),
        &["1/3"],
        &place,
        lake,
    );
    assert!(stderr.contains("missing"), "{stderr}");

    // Rerun, the shard mends it; the fan-in writes what an unsharded
    // monitor then finds unchanged, and removes every staged shard.
    let mended = monitor(&place, &config, lake, &["--shard", "1/3"])
        .expect_code(0)
        .json();
    assert_eq!(mended["written"]["outcome"], "replaced", "{mended}");
    let fanned = monitor(&place, &config, lake, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    let days = fanned["days"].as_array().unwrap().len();
    assert_eq!(days, 3, "2015-07-20 .. 2015-07-22: {fanned}");
    assert_eq!(fanned["written"]["written"], 3);
    let left: Vec<String> = objects(&place, lake, STAGED).into_iter().map(|o| o.0).collect();
    assert_eq!(
        left,
        [format!("{STAGED}dt={DATE}/committed.json")],
        "the shards removed, the 1/2 one too; the fan-in's record kept"
    );
    let single = monitor(&place, &config, lake, &[]).expect_code(0).json();
    assert_eq!(single["written"]["unchanged"], 3, "{single}");
    assert_eq!(figures(&single)["days"], figures(&fanned)["days"]);
    // The fan-in's build retried after its commit (a later step failed):
    // the shards are gone, its record reports that commit and nothing is
    // written. Another N was never fanned in: refused, naming its shards.
    let table = objects(&place, lake, SCORES);
    let retried = monitor(&place, &config, lake, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(retried["committed_already"], true, "{retried}");
    assert_eq!(retried["days"], fanned["days"]);
    assert_eq!(
        retried["written"],
        serde_json::json!({"written": 0, "unchanged": 3, "replaced": 0})
    );
    assert_eq!(objects(&place, lake, SCORES), table, "nothing written");
    let out = monitor(&place, &config, lake, &["--fan-in", "2"]).expect_code(6);
    for k in 0..2 {
        assert!(out.stderr.contains(&format!("shard {k}/2:")), "{}", out.stderr);
    }
    // A day file of the table rewritten with other bytes under its own
    // name since the commit: refused; its bytes put back, the record
    // answers again (S3's version of equal bytes is the same).
    let store = open(&place, lake);
    store.put(&table[0].0, &table[1].1, PutMode::Overwrite).unwrap();
    let out = monitor(&place, &config, lake, &["--fan-in", "3"]).expect_code(6);
    assert!(
        out.stderr.contains("the scores table changed since"),
        "{}",
        out.stderr
    );
    store.put(&table[0].0, &table[0].1, PutMode::Overwrite).unwrap();
    let again = monitor(&place, &config, lake, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(again["committed_already"], true, "{again}");
    // A day file of the table lost since the commit: the record no longer
    // answers for it; refused, the shards must run again.
    store.delete(&table[0].0).unwrap();
    let out = monitor(&place, &config, lake, &["--fan-in", "3"]).expect_code(6);
    for wanted in ["the scores table changed since", "shard 0/3:", "shard 2/3:"] {
        assert!(out.stderr.contains(wanted), "{wanted}: {}", out.stderr);
    }
    assert_eq!(objects(&place, lake, SCORES), table[1..], "nothing written");
}
