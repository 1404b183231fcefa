//! Sharded `retrain` against the S3 test server, N = 3, each step a
//! separate process of the real binary (`--shard K/3` x3 at once, `--fit 3`,
//! `--score K/3` x3 at once, `--fan-in 3`), against an unsharded `retrain`
//! of the same lake into another registry, on two days (a first champion,
//! then a challenger against it): the same decision, the same challenger
//! bytes (its SHA-256), the same holdout, baseline and noise figures. The
//! fit samples (`training.max_fit_rows` below the window's rows) and the
//! drift check picks (1,115 stores a day, above its 1,000): both drawn as a
//! single run draws them. A shard killed after staging its rows and before
//! its marker makes the fit refuse (exit 6, naming it); rerun, the run
//! decides the same. A fan-in with a shard's scores missing refuses (exit 6,
//! naming the shard) and decides nothing; the shard scored again, it decides.
//! A fan-in killed after logging its decision (a promotion, then a kept
//! champion) and before marking the run decided: retried, it reports that
//! decision (the same report as the single run's) and logs no second one;
//! a shard scored again meanwhile scores the champion that decision judged;
//! a dry run reports it too; a damaged `deciding` marker is refused (exit
//! 6, naming it); a fan-in killed just before its commit does not keep the
//! next from deciding.
//! A fan-in leaves only its `decided` marker in its run's folder and removes
//! the folders of runs abandoned more than 14 days before its day (runs'
//! reports, `runs/<D>/`, are not touched); the fan-in retried (a build
//! retried after it succeeded) answers with that decision's report, exit 0,
//! and decides nothing, unless a run of the day started again since. On a
//! third day, with a covariate the champion was trained with dropped from
//! the configuration, the sharded run still decides what the single run
//! decides.

use std::path::Path;

use serde_json::Value;

use crate::crash::kill_at;
use crate::retrain::{Backend, Place};
use crate::util::{Outcome, s3_bucket};

const N: u32 = 3;
const DAYS: [&str; 2] = ["2015-06-30", "2015-07-14"];
const CONFIG: &str = "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\nmax_fit_rows = 20000\n";

fn step(place: &Place, config: &Path, day: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["retrain", "--date", day];
    args.extend_from_slice(extra);
    place.run(config, &args)
}

/// `flag K/N` for every shard, as N processes at once.
fn all_shards(place: &Place, config: &Path, day: &str, flag: &str) {
    let children: Vec<_> = (0..N)
        .map(|k| {
            let shard = format!("{k}/{N}");
            place
                .cli(config)
                .command(place.dir.path(), &["retrain", "--date", day, flag, &shard])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
        .expect_code(0);
    }
}

/// What must be the same in both runs' reports.
fn decided(report: &Value) -> Value {
    serde_json::json!({
        "decision": report["decision"],
        "reason": report["reason"],
        "champion_after": report["champion_after"],
        "challenger": report["challenger"]["version"],
        "challenger_holdout": report["challenger"]["holdout"],
        "challenger_one_day": report["challenger"]["one_day"],
        "horizons": report["challenger"]["horizons"],
        "calibration": report["challenger"]["calibration"],
        "candidates": report["challenger"]["candidates"].as_array().map(|c| c.iter().map(|c| (c["family"].clone(), c["validation"].clone(), c["fit_rows"].clone())).collect::<Vec<_>>()),
        "champion": report["champion"],
        "baseline": report["baseline"],
        "noise": report["noise"],
        "drift_alerts": report["drift"]["alerts"],
        "max_drift": report["drift"]["max_drift"],
        "worst_series": report["worst_series"],
        "window": report["window"],
    })
}

#[test]
fn a_sharded_retrain_decides_what_a_single_run_decides() {
    let single = Place::new(Backend::S3);
    let mut sharded = Place::new(Backend::S3);
    sharded.registry = format!("s3://{}/registry", s3_bucket("sharded-registry"));
    let config = single.config(CONFIG);
    for (i, day) in DAYS.iter().enumerate() {
        let expected = step(&single, &config, day, &[]).expect_code(0).json();
        if i == 0 {
            // Shard 2 killed after staging its rows, before its marker: the
            // fit refuses naming it; the shard rerun, the run goes on.
            let args = ["retrain", "--date", day, "--shard", "2/3"];
            kill_at(&sharded, &config, &args, "run-staged");
            step(&sharded, &config, day, &["--shard", "0/3"]).expect_code(0);
            step(&sharded, &config, day, &["--shard", "1/3"]).expect_code(0);
            let refused = step(&sharded, &config, day, &["--fit", "3"]).expect_code(6);
            assert!(
                refused.stderr.contains("shard 2/3: prepare-2-of-3 is missing"),
                "{}",
                refused.stderr
            );
        }
        all_shards(&sharded, &config, day, "--shard");
        let fit = step(&sharded, &config, day, &["--fit", "3"])
            .expect_code(0)
            .json();
        assert_eq!(fit["challenger"], expected["challenger"]["version"], "{fit}");
        all_shards(&sharded, &config, day, "--score");
        if i == 1 {
            // Shard 1's scores lost (as if its build died before its marker).
            let store = sharded.registry_store();
            let marker = format!("sales/runs/dt={day}/score-1-of-3.json");
            store.delete(&marker).unwrap();
            let refused = step(&sharded, &config, day, &["--fan-in", "3"]).expect_code(6);
            assert!(refused.stderr.contains("shard 1/3"), "{}", refused.stderr);
            assert!(refused.stderr.contains(day), "{}", refused.stderr);
            let log = sharded.run(&config, &["models", "history"]).expect_code(0).json();
            assert_eq!(
                log["decisions"].as_array().map(Vec::len),
                Some(1),
                "nothing decided: {log}"
            );
            step(&sharded, &config, day, &["--score", "1/3"]).expect_code(0);
        }
        // Two runs that never fanned in: one more than 14 days before this
        // day (expired by this fan-in), one within them (kept).
        let (old, recent) = [("2015-05-01", "2015-06-27"), ("2015-06-01", "2015-07-11")][i];
        let abandoned = [old, recent].map(|d| format!("sales/runs/dt={d}/fit.json"));
        for key in &abandoned {
            sharded
                .registry_store()
                .put(key, b"{}", salescast_core::storage::PutMode::Overwrite)
                .unwrap();
        }
        // The fan-in killed after logging its decision (day 1 a promotion,
        // the pointer not yet moved; day 2 a kept champion), before marking
        // the run decided: the fan-in retried below reports that decision
        // and logs no second one. On day 2 a fan-in killed first just
        // before its commit (its `deciding` marker written, nothing logged)
        // must not stop the next from deciding.
        let fan_in = ["retrain", "--date", day, "--fan-in", "3"];
        if i == 1 {
            kill_at(&sharded, &config, &fan_in, "before-decision");
        }
        kill_at(&sharded, &config, &fan_in, "decision-logged");
        if i == 0 {
            // A shard scored again after that kill scores the champion the
            // logged decision judged (none), not the promoted challenger.
            step(&sharded, &config, day, &["--score", "0/3"]).expect_code(0);
        } else {
            // A dry run reports the logged decision too.
            let dry = step(&sharded, &config, day, &["--fan-in", "3", "--dry-run"])
                .expect_code(0)
                .json();
            assert_eq!(dry["decision_sequence"], 2, "{dry}");
            assert_eq!(decided(&dry), decided(&expected), "day {day}: the dry run");
            // A damaged `deciding` marker is refused, naming it, not taken
            // for none (which would log a second decision).
            let store = sharded.registry_store();
            let key = format!("sales/runs/dt={day}/deciding.json");
            let kept = store.get(&key).unwrap().bytes;
            store
                .put(&key, b"{\"n\": 3", salescast_core::storage::PutMode::Overwrite)
                .unwrap();
            let refused = step(&sharded, &config, day, &["--fan-in", "3"]).expect_code(6);
            assert!(
                refused.stderr.contains("deciding is unreadable") && refused.stderr.contains("deciding.json"),
                "{}",
                refused.stderr
            );
            store
                .put(&key, &kept, salescast_core::storage::PutMode::Overwrite)
                .unwrap();
        }
        let report = step(&sharded, &config, day, &["--fan-in", "3"])
            .expect_code(0)
            .json();
        let log = sharded.run(&config, &["models", "history"]).expect_code(0).json();
        assert_eq!(
            log["decisions"].as_array().map(Vec::len),
            Some(i + 1),
            "day {day}: one decision: {log}"
        );
        assert_eq!(report["decision_sequence"], i + 1, "day {day}");
        let runs = sharded.registry_store().list("sales/runs/dt=").unwrap();
        let left: Vec<&str> = runs
            .iter()
            .map(|o| o.key.as_str())
            .filter(|k| !k.ends_with("/decided.json"))
            .collect();
        assert_eq!(
            left,
            [abandoned[1].as_str()],
            "day {day}: only old abandoned runs expire"
        );
        let (want, got) = (decided(&expected), decided(&report));
        assert_eq!(got, want, "day {day}");
        let staged = sharded
            .registry_store()
            .list(&format!("sales/runs/dt={day}/"))
            .unwrap();
        let staged: Vec<&str> = staged.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            staged,
            [format!("sales/runs/dt={day}/decided.json")],
            "the run's folder keeps only its decided marker"
        );

        // The fan-in's build retried: that decision, nothing decided now.
        let history = |place: &Place| place.run(&config, &["models", "history"]).expect_code(0).json();
        let before = history(&sharded);
        let retried = step(&sharded, &config, day, &["--fan-in", "3"])
            .expect_code(0)
            .json();
        assert_eq!(retried["decided_already"], true, "{retried}");
        assert_eq!(
            retried["decision_sequence"], report["decision_sequence"],
            "{retried}"
        );
        assert_eq!(decided(&retried["report"]), want, "day {day}: the same report");
        assert_eq!(history(&sharded), before, "day {day}: nothing decided again");
        let text = crate::util::Cli::new(&config, &sharded.lake)
            .registry(&sharded.registry)
            .flags(&sharded.flags)
            .run(sharded.dir.path(), &["retrain", "--date", day, "--fan-in", "3"])
            .expect_code(0)
            .stdout;
        assert!(
            text.starts_with(&format!("# salescast retrain {day}: ")) && text.contains("> Retried fan-in"),
            "{text}"
        );
        if i == 1 {
            // The day's sharded run started again (a shard prepared anew):
            // its fan-in refuses until that run's fit, the old decision aside.
            step(&sharded, &config, day, &["--shard", "0/3"]).expect_code(0);
            let refused = step(&sharded, &config, day, &["--fan-in", "3"]).expect_code(6);
            assert!(refused.stderr.contains("fit is missing"), "{}", refused.stderr);
            assert_eq!(history(&sharded), before, "nothing decided");
        }
    }

    // A third day after a covariate was dropped from the configuration: the
    // champion, trained with it, cannot be scored from the run's window (read
    // with the configuration's columns), so each score shard reads its
    // window again with the champion's mapping, as the single run does.
    let dropped = crate::util::dropped_config(single.dir.path(), CONFIG);
    let day = "2015-07-21";
    let expected = step(&single, &dropped, day, &[]).expect_code(0).json();
    assert!(
        expected["champion"]["holdout"]["wape"].is_f64(),
        "the champion scored: {expected}"
    );
    all_shards(&sharded, &dropped, day, "--shard");
    step(&sharded, &dropped, day, &["--fit", "3"]).expect_code(0);
    all_shards(&sharded, &dropped, day, "--score");
    let report = step(&sharded, &dropped, day, &["--fan-in", "3"])
        .expect_code(0)
        .json();
    assert_eq!(
        decided(&report),
        decided(&expected),
        "day {day}, a covariate dropped"
    );
}
