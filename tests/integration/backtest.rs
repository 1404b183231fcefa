//! `salescast backtest` on the real rossmann lake: over the holdout days of a
//! retrain it scores exactly the rows and models that retrain scores, it
//! reports every family and the baseline per day, writes nothing, and refuses
//! bad ranges with the usage or data exit code. Also the fit-row limit
//! (`training.max_fit_rows`): a seeded sample, the same on every run.

use std::path::{Path, PathBuf};

use crate::util::{Cli, Outcome, QUICK, rossmann_config, rossmann_lake, s, snapshot, tempdir};

fn quick_config(dir: &Path) -> PathBuf {
    quick_config_with(dir, "")
}

/// The quick config with `extra` TOML after it.
fn quick_config_with(dir: &Path, extra: &str) -> PathBuf {
    rossmann_config(dir, &format!("{QUICK}{extra}"))
}

fn run_quick(dir: &Path, registry: &Path, args: &[&str]) -> Outcome {
    let config = quick_config(dir);
    run_with(dir, &config, registry, args)
}

fn run_with(dir: &Path, config: &Path, registry: &Path, args: &[&str]) -> Outcome {
    Cli::new(config, s(rossmann_lake()))
        .registry(s(registry))
        .json()
        .run(dir, args)
}

#[test]
fn backtest_over_the_holdout_scores_what_retrain_scores() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let lake_before = snapshot(rossmann_lake());
    let backtest = run_quick(
        dir.path(),
        &registry,
        &["backtest", "--from", "2015-07-04", "--to", "2015-07-31"],
    )
    .expect_code(0)
    .json();
    assert!(!registry.exists(), "a backtest writes nothing to the registry");
    assert_eq!(
        snapshot(rossmann_lake()),
        lake_before,
        "a backtest changes nothing in the lake"
    );
    let retrain = run_quick(
        dir.path(),
        &registry,
        &["retrain", "--date", "2015-07-31", "--dry-run"],
    )
    .expect_code(0)
    .json();

    assert_eq!(backtest["trained_through"], "2015-07-03");
    assert_eq!(backtest["first_day"], retrain["window"]["first_day"]);
    assert_eq!(backtest["training_rows"], retrain["window"]["training_rows"]);
    assert_eq!(backtest["backtest_rows"], retrain["window"]["holdout_rows"]);
    assert_eq!(backtest["picked"], retrain["challenger"]["family"]);
    let pooled = |h: &serde_json::Value| h["buckets"].as_array().unwrap().last().unwrap()["metrics"].clone();
    assert_eq!(
        pooled(&backtest["baseline_horizons"]),
        retrain["baseline"],
        "the baseline pooled over horizons 1-14 on the same rolling origins"
    );
    let families = backtest["families"].as_array().unwrap();
    let picked = families
        .iter()
        .find(|f| f["picked"] == true)
        .expect("the picked family is among the families");
    assert_eq!(picked["family"], backtest["picked"]);
    assert_eq!(picked.get("config"), retrain["challenger"].get("gbdt_config"));
    assert_eq!(
        picked["backtest"], retrain["challenger"]["one_day"],
        "the picked family scores the retrain challenger's one-day metrics"
    );
    // Retrain adds the coverage of its intervals to each bucket; the metrics are the same.
    let mut horizons = retrain["challenger"]["horizons"].clone();
    for bucket in horizons["buckets"].as_array_mut().unwrap() {
        assert!(bucket.as_object_mut().unwrap().remove("coverage").is_some());
    }
    assert_eq!(
        picked["horizons"], horizons,
        "and its metrics per horizon on the same rolling origins"
    );
    assert_eq!(pooled(&picked["horizons"]), retrain["challenger"]["holdout"]);
    let names: Vec<String> = families
        .iter()
        .map(|f| match f.get("config") {
            Some(config) => format!("{} ({})", f["family"].as_str().unwrap(), config.as_str().unwrap()),
            None => f["family"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "seasonal_naive",
            "elastic_net",
            "gbdt (deep)",
            "gbdt (regularised)"
        ],
        "the boosted trees once per default configuration"
    );
    assert_eq!(families.iter().filter(|f| f["picked"] == true).count(), 1);
    for (family, candidate) in families
        .iter()
        .zip(retrain["challenger"]["candidates"].as_array().unwrap())
    {
        assert_eq!(family["validation"], candidate["validation"]);
    }
    let wape = |f: &serde_json::Value| f["backtest"]["wape"].as_f64().unwrap();
    let baseline = backtest["baseline"]["wape"].as_f64().unwrap();
    assert!(
        wape(picked) < baseline,
        "the picked family beats the baseline: {backtest:#}"
    );

    // One row per day with open stores; the days' rows add up to the total.
    let days = backtest["days"].as_array().unwrap();
    assert_eq!(days.len(), 28);
    assert_eq!(days[0]["day"], "2015-07-04");
    assert_eq!(days[27]["day"], "2015-07-31");
    let rows: u64 = days.iter().map(|d| d["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, backtest["backtest_rows"].as_u64().unwrap());
}

#[test]
fn backtest_of_one_day_uses_history_before_it() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let config = quick_config_with(
        dir.path(),
        "[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\n",
    );
    let out = run_with(
        dir.path(),
        &config,
        &registry,
        &["backtest", "--from", "2015-06-15", "--to", "2015-06-15"],
    )
    .expect_code(0)
    .json();
    assert_eq!(out["trained_through"], "2015-06-14");
    assert_eq!(out["days"].as_array().unwrap().len(), 1);
    assert_eq!(out["backtest_rows"], 100, "every store was open that Monday");
}

#[test]
fn backtest_refuses_bad_ranges() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let reversed = run_quick(
        dir.path(),
        &registry,
        &["backtest", "--from", "2015-07-31", "--to", "2015-07-04"],
    )
    .expect_code(2);
    assert!(reversed.stderr.contains("--from"), "{}", reversed.stderr);

    let beyond = run_quick(
        dir.path(),
        &registry,
        &["backtest", "--from", "2015-07-20", "--to", "2015-08-02"],
    )
    .expect_code(3);
    assert!(
        beyond.stderr.contains("dt=2015-08-02") && beyond.stderr.contains("missing partition"),
        "{}",
        beyond.stderr
    );

    let no_history = run_quick(
        dir.path(),
        &registry,
        &["backtest", "--from", "2013-01-02", "--to", "2013-01-31"],
    )
    .expect_code(3);
    assert!(
        no_history.stderr.contains("before the holdout"),
        "{}",
        no_history.stderr
    );
    assert!(!registry.exists());
}

#[test]
fn a_fit_row_limit_samples_the_same_rows_on_every_run() {
    let dir = tempdir();
    let registry = dir.path().join("registry");
    let config = quick_config_with(
        dir.path(),
        "[training]\ncandidates = [\"seasonal_naive\", \"elastic_net\"]\nmax_fit_rows = 1000\n",
    );
    let retrain = || {
        run_with(
            dir.path(),
            &config,
            &registry,
            &["retrain", "--date", "2015-07-31", "--dry-run"],
        )
        .expect_code(0)
        .json()
    };
    let (first, second) = (retrain(), retrain());
    let training_rows = first["window"]["training_rows"].as_u64().unwrap();
    assert!(training_rows > 1000, "{training_rows} training rows");
    for candidate in first["challenger"]["candidates"].as_array().unwrap() {
        assert_eq!(candidate["fit_rows"], 1000, "{candidate}");
    }
    assert_eq!(
        first["challenger"]["version"], second["challenger"]["version"],
        "the same sample, so the same bytes"
    );
    assert_eq!(
        first["challenger"]["one_day"]["rows"], first["window"]["holdout_rows"],
        "scoring uses every holdout row, not a sample"
    );
    assert!(
        first["window"]["holdout_rows"].as_u64().unwrap() > 1000,
        "more holdout rows than the limit, so a sampled holdout would show"
    );
}
