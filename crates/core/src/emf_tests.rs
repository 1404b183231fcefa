//! Unit tests of the EMF rendering (`emf.rs`): the document's exact shape,
//! non-finite values left out, the 100-metric limit, the settings' checks,
//! and the live-accuracy and drift hooks.

use super::*;

fn sample() -> JobMetrics {
    let mut set = JobMetrics::new("salescast", "sales", "retrain");
    set.job("Succeeded", Unit::Count, 1.0)
        .job("DurationSeconds", Unit::Seconds, 12.5)
        .model("ChallengerHoldoutWape", Unit::None, 0.1234)
        .property("RunDate", "2015-07-31");
    set
}

#[test]
fn a_document_has_the_published_structure() {
    let docs = sample().documents(1_438_300_800_000);
    assert_eq!(docs.len(), 1);
    let expected = json!({
        "_aws": {
            "Timestamp": 1_438_300_800_000_i64,
            "CloudWatchMetrics": [
                {
                    "Namespace": "salescast",
                    "Dimensions": [["Model", "Command"]],
                    "Metrics": [
                        {"Name": "Succeeded", "Unit": "Count"},
                        {"Name": "DurationSeconds", "Unit": "Seconds"}
                    ]
                },
                {
                    "Namespace": "salescast",
                    "Dimensions": [["Model"]],
                    "Metrics": [{"Name": "ChallengerHoldoutWape", "Unit": "None"}]
                }
            ]
        },
        "Model": "sales",
        "Command": "retrain",
        "RunDate": "2015-07-31",
        "Succeeded": 1.0,
        "DurationSeconds": 12.5,
        "ChallengerHoldoutWape": 0.1234
    });
    assert_eq!(docs[0], expected);
    let line = &sample().lines(1_438_300_800_000)[0];
    assert!(!line.contains('\n'), "one document, one line: {line}");
    assert_eq!(serde_json::from_str::<Value>(line).unwrap(), expected);
}

#[test]
fn values_that_are_not_finite_are_left_out() {
    let mut set = sample();
    set.job("CostUsd", Unit::None, f64::NAN)
        .model("ChampionHoldoutWape", Unit::None, f64::INFINITY)
        .job("Rows", Unit::Count, 5.0);
    assert_eq!(
        set.names(),
        ["Succeeded", "DurationSeconds", "ChallengerHoldoutWape", "Rows"]
    );
    let line = &set.lines(0)[0];
    assert!(!line.contains("NaN") && !line.contains("null"), "{line}");
    assert!(
        !line.contains("CostUsd") && !line.contains("ChampionHoldoutWape"),
        "{line}"
    );
}

#[test]
fn a_name_is_one_member_of_the_document() {
    let mut set = sample();
    set.job("Succeeded", Unit::Count, 0.0);
    set.job("Model", Unit::Count, 3.0);
    set.property("Succeeded", "shadowed");
    assert_eq!(
        set.value("Succeeded"),
        Some(0.0),
        "a metric put twice keeps the last value"
    );
    assert_eq!(set.value("Model"), None, "a dimension's name is no metric");
    let doc = &set.documents(0)[0];
    assert_eq!(doc["Model"], "sales");
    assert_eq!(doc["Succeeded"], 0.0);
    assert_eq!(set.names().iter().filter(|n| **n == "Succeeded").count(), 1);
}

#[test]
fn more_than_100_metrics_are_split_over_documents() {
    let mut set = JobMetrics::new("salescast", "sales", "monitor");
    for i in 0..(MAX_METRICS + 5) {
        set.model(&format!("M{i}"), Unit::None, i as f64);
    }
    let docs = set.documents(7);
    assert_eq!(docs.len(), 2);
    let counted: Vec<usize> = docs
        .iter()
        .map(|d| {
            d["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["Metrics"].as_array().unwrap().len())
                .sum()
        })
        .collect();
    assert_eq!(counted, [MAX_METRICS, 5]);
    assert_eq!(docs[1]["M104"], 104.0);
    assert!(
        docs[1].get("M0").is_none(),
        "each document carries its own metrics only"
    );
    assert!(JobMetrics::new("salescast", "sales", "x").documents(0).is_empty());
    for scope in [Scope::Job, Scope::Model] {
        assert!(scope.dimensions().len() <= MAX_DIMENSIONS);
    }
}

#[test]
fn live_accuracy_gives_each_bucket_and_the_largest_excess() {
    let mut set = JobMetrics::new("salescast", "sales", "monitor");
    let bucket = |name: &str, live, holdout| LiveBucket {
        bucket: name.into(),
        live_wape: live,
        holdout_wape: holdout,
    };
    set.live_accuracy(&[
        bucket("1-7", 0.12, 0.10),
        bucket("8-14", 0.15, 0.10),
        bucket("15-28", 0.20, 0.0),
        bucket("29-35", f64::NAN, 0.2),
    ]);
    assert_eq!(set.value("LiveWape_h1-7"), Some(0.12));
    assert_eq!(set.value("LiveWape_h15-28"), Some(0.20));
    assert_eq!(set.value("LiveWape_h29-35"), None, "NaN is left out");
    let excess = set.value("LiveWapeExcess").unwrap();
    assert!((excess - 0.5).abs() < 1e-12, "8-14 is 50% worse live: {excess}");
    let mut none = JobMetrics::new("salescast", "sales", "monitor");
    none.live_accuracy(&[bucket("1-7", 0.1, 0.0)]);
    assert_eq!(none.value("LiveWapeExcess"), None, "no holdout WAPE, no excess");

    set.drift(0.31, 2);
    assert_eq!(set.value("MaxDrift"), Some(0.31));
    assert_eq!(set.value("DriftAlerts"), Some(2.0));
    let doc = &set.documents(0)[0];
    let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "model health only: {doc}");
    assert_eq!(directives[0]["Dimensions"], json!([["Model"]]));
}

#[test]
fn the_settings_check_the_namespace_and_choose_when_to_write() {
    let mut settings = MetricsSettings::default();
    assert!(settings.check().is_ok());
    assert!(
        settings.enabled(true) && !settings.enabled(false),
        "auto: in CodeBuild only"
    );
    settings.emf = EmfMode::Off;
    assert!(!settings.enabled(true));
    settings.emf = EmfMode::On;
    assert!(settings.enabled(false));
    for bad in ["", "AWS/CodeBuild", "sales cast", &"x".repeat(256)] {
        settings.namespace = bad.into();
        let err = settings.check().unwrap_err();
        assert_eq!(err.key, "metrics.namespace", "{bad:?}");
    }
    assert_eq!("ON".parse::<EmfMode>(), Ok(EmfMode::On));
    assert_eq!("auto".parse::<EmfMode>(), Ok(EmfMode::Auto));
    assert!("sometimes".parse::<EmfMode>().is_err());
}
