//! The noise-aware promotion gate through the real binary on the rossmann
//! lake: a challenger that differs from the champion only by the seed of its
//! row subsample (so whatever it gains is noise by construction) clears the
//! fixed margin, which would promote it; the noise-aware gate keeps the
//! champion, records the estimate and its interval in the report and the
//! decision log, and decides the same way on a rerun. Older decision files
//! without the estimate still read back.

use salescast_core::registry::Decision;

use crate::retrain::{Backend, Place};
use crate::util::Cli;

/// gbdt alone on a 400-day window, each tree on a seeded 70% of the rows.
fn seeded(seed: u32, confidence: f64) -> String {
    format!(
        "[window]\nhistory_days = 400\n[training]\ncandidates = [\"gbdt\"]\nseed = {seed}\n\
         [training.gbdt]\nmax_rounds = 150\nsubsample = 0.7\n[promotion]\nconfidence = {confidence}\n"
    )
}

#[test]
fn a_seed_noise_improvement_passes_the_fixed_margin_but_not_the_noise_gate() {
    let place = Place::new(Backend::Local);
    let day = "2015-07-31";
    let first = place
        .retrain(&place.config(&seeded(1, 0.9)), day)
        .expect_code(0)
        .json();
    assert_eq!(first["decision"], "promoted", "{first:#}");
    assert!(first["noise"].is_null(), "no champion, no noise check: {first:#}");
    let champion = first["challenger"]["version"].as_str().unwrap().to_string();

    let dry = |confidence: f64| {
        place
            .run(
                &place.config(&seeded(2, confidence)),
                &["retrain", "--date", day, "--dry-run"],
            )
            .expect_code(0)
            .json()
    };
    // The fixed margin alone (confidence 0, the old gate) promotes it.
    let fixed = dry(0.0);
    let wape = |r: &serde_json::Value, who: &str| r[who]["holdout"]["wape"].as_f64().unwrap();
    let gain = 1.0 - wape(&fixed, "challenger") / wape(&fixed, "champion");
    assert_eq!(fixed["champion"]["version"], champion.as_str());
    assert_eq!(fixed["decision"], "promoted", "{}", fixed["reason"]);
    assert!(
        gain > 0.005,
        "the seed-2 model must clear the 0.5% margin: {gain}"
    );
    assert!(fixed["noise"].is_null(), "confidence 0: no estimate");
    assert!(!fixed["reason"].as_str().unwrap().contains("noise"));

    // The noise-aware gate keeps the champion: the interval spans 0.
    let noisy = dry(0.9);
    assert_eq!(noisy["decision"], "kept", "{}", noisy["reason"]);
    let n = &noisy["noise"];
    let num = |k: &str| n[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {n:#}"));
    assert!(
        (num("improvement") - gain).abs() < 1e-9,
        "the same rows as the pooled WAPE: {n:#}"
    );
    assert!(num("lower") < 0.0 && num("upper") > num("improvement"), "{n:#}");
    assert_eq!(
        (
            num("confidence"),
            n["resamples"].as_u64(),
            n["resampled"].as_str()
        ),
        (0.9, Some(1000), Some("series"))
    );
    assert_eq!(n["blocks"], 100, "one block per store");
    let reason = noisy["reason"].as_str().unwrap();
    assert!(
        reason.contains("(90% interval ") && reason.contains("is within noise: kept"),
        "{reason}"
    );
    // Seeded by the run's inputs: the same again, in another process.
    assert_eq!(dry(0.9)["noise"], *n);

    // Committed: the decision log records the estimate; the CLI shows it.
    let kept = place
        .retrain(&place.config(&seeded(2, 0.9)), day)
        .expect_code(0)
        .json();
    assert_eq!(kept["noise"], *n);
    let log = place.decisions();
    let last = log.last().unwrap();
    assert_eq!((last["kind"].as_str(), &last["noise"]), (Some("kept"), n));
    assert!(log[0].get("noise").is_none(), "no estimate, no key: {:#}", log[0]);
    let history = Cli::new(&place.config(&seeded(2, 0.9)), &place.lake)
        .registry(&place.registry)
        .run(place.dir.path(), &["models", "history"])
        .expect_code(0);
    assert!(history.stdout.contains("(90% interval "), "{}", history.stdout);
    let report = std::fs::read_to_string(
        place
            .dir
            .path()
            .join("registry/sales/runs")
            .join(day)
            .join("report.md"),
    )
    .unwrap();
    assert!(
        report.contains("Noise check (paired bootstrap over series, 1000 resamples of 100 blocks"),
        "{report}"
    );

    // A decision file from before the noise check (no `noise` key) reads back.
    let mut older = last.clone();
    older.as_object_mut().unwrap().remove("noise");
    let read: Decision = serde_json::from_value(older).unwrap();
    assert!(read.what.noise.is_none());
    let read: Decision = serde_json::from_value(last.clone()).unwrap();
    assert_eq!(read.what.noise.unwrap().blocks, 100);
}
