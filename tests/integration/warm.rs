//! Warm retrains through the real binary on the rossmann lake: the first
//! day searches in full (no champion); the next day refits the champion's
//! recipe once (no candidates, the same rounds and configuration, the same
//! recipe in the new version's manifest) and says so in the report and the
//! decision log; changed settings, `--full-search`, the schedule and a
//! champion without a recipe (an older manifest) each force a full search,
//! with the reason recorded.

use salescast_core::registry::Registry;
use serde_json::Value;

use crate::retrain::{Backend, Place};

/// The seasonal-naive rule and the boosted trees (both default
/// configurations) on a 400-day window, a full search every 3 days.
fn settings(seed: u32) -> String {
    format!(
        "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"gbdt\"]\nseed = {seed}\n\
         full_search_every_days = 3\n[training.gbdt]\nmax_rounds = 150\n"
    )
}

fn search(report: &Value) -> (String, String) {
    let s = &report["search"];
    (
        s["mode"]
            .as_str()
            .unwrap_or_else(|| panic!("no search record: {report:#}"))
            .into(),
        s["trigger"].as_str().unwrap().into(),
    )
}

#[test]
fn a_day_without_reason_to_search_refits_the_champions_recipe_once() {
    let place = Place::new(Backend::Local);
    let config = place.config(&settings(42));
    let registry = Registry::new(place.registry_store(), "sales");
    let recipe_of = |version: &str| {
        serde_json::to_value(registry.manifest(version).unwrap().recipe.expect("a recipe")).unwrap()
    };

    // Day 1: no champion, a full search.
    let first = place.retrain(&config, "2015-07-20").expect_code(0).json();
    assert_eq!(search(&first), ("full".into(), "no_champion".into()), "{first:#}");
    assert_eq!(first["decision"], "promoted", "{}", first["reason"]);
    assert_eq!(first["challenger"]["family"], "gbdt", "{first:#}");
    let searched = first["challenger"]["candidates"].as_array().unwrap().len();
    assert_eq!(searched, 3, "seasonal naive and two gbdt configurations");
    let champion = first["challenger"]["version"].as_str().unwrap().to_string();
    let recipe = recipe_of(&champion);
    assert_eq!(recipe["searched_on"], "2015-07-20");
    assert_eq!(recipe["family"], "gbdt");
    assert_eq!(recipe["gbdt_config"], first["challenger"]["gbdt_config"]);
    let rounds = first["challenger"]["rounds"].as_u64().unwrap();
    assert_eq!(recipe["rounds"], rounds);
    assert_eq!(
        recipe["params"]["gbdt"]["max_rounds"], rounds,
        "the refit runs the rounds kept"
    );
    assert!(first["seconds"]["train_cpu"].as_f64().unwrap() > 0.0);

    // Day 2: warm. One fit: no candidate scored, the champion's rounds and
    // configuration, the same recipe stored with the new version.
    let warm = place.retrain(&config, "2015-07-21").expect_code(0).json();
    assert_eq!(search(&warm), ("warm".into(), "none".into()), "{warm:#}");
    let c = &warm["challenger"];
    assert_eq!(c["candidates"].as_array().unwrap().len(), 0, "no search: {c:#}");
    assert_eq!(c["rounds"].as_u64(), Some(rounds));
    assert_eq!(c["gbdt_config"], first["challenger"]["gbdt_config"]);
    assert_ne!(c["version"], champion.as_str(), "refitted on a newer window");
    assert_eq!(warm["champion"]["version"], champion.as_str());
    assert_eq!(recipe_of(c["version"].as_str().unwrap()), recipe);
    assert_eq!(
        c["calibration"], first["challenger"]["calibration"],
        "a warm day carries the champion's intervals on"
    );
    let reason = warm["search"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("{rounds} rounds")) && reason.contains("1 days since"),
        "{reason}"
    );
    let log = place.decisions();
    let last = log.last().unwrap();
    assert_eq!(last["search"]["mode"], "warm", "{last:#}");
    assert_eq!(last["search"]["reason"], reason);
    assert_eq!(log[0]["search"]["trigger"], "no_champion");
    let report_md =
        std::fs::read_to_string(place.dir.path().join("registry/sales/runs/2015-07-21/report.md")).unwrap();
    assert!(
        report_md.contains("**Training:** warm refit, no search"),
        "{report_md}"
    );

    // Changed settings: a full search (dry run: nothing written).
    let other = place
        .run(
            &place.config(&settings(7)),
            &["retrain", "--date", "2015-07-22", "--dry-run"],
        )
        .expect_code(0)
        .json();
    assert_eq!(
        search(&other),
        ("full".into(), "settings_changed".into()),
        "{other:#}"
    );
    assert_eq!(other["challenger"]["candidates"].as_array().unwrap().len(), 3);

    // --full-search: forced, and logged.
    let forced = place
        .run(&config, &["retrain", "--date", "2015-07-22", "--full-search"])
        .expect_code(0)
        .json();
    assert_eq!(search(&forced), ("full".into(), "forced".into()), "{forced:#}");
    assert_eq!(forced["challenger"]["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(place.decisions().last().unwrap()["search"]["trigger"], "forced");

    // The schedule counts from the last full search in the log (07-22),
    // whichever version is champion: warm on 07-24, a search on 07-25.
    let day4 = place.retrain(&config, "2015-07-24").expect_code(0).json();
    assert_eq!(search(&day4).0, "warm", "{}", day4["search"]);
    let day5 = place.retrain(&config, "2015-07-25").expect_code(0).json();
    assert_eq!(
        search(&day5),
        ("full".into(), "schedule".into()),
        "{}",
        day5["search"]
    );
    assert!(
        day5["search"]["reason"]
            .as_str()
            .unwrap()
            .contains("3 days since the last full search on 2015-07-22"),
        "{}",
        day5["search"]
    );

    // A champion stored before warm retrains (no recipe in its manifest).
    let now = place.decisions().last().unwrap()["champion_after"]
        .as_str()
        .unwrap()
        .to_string();
    let path = place
        .dir
        .path()
        .join(format!("registry/sales/versions/{now}/manifest.json"));
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest
        .as_object_mut()
        .unwrap()
        .remove("recipe")
        .expect("a recipe to remove");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let old = place
        .run(&config, &["retrain", "--date", "2015-07-26", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(search(&old), ("full".into(), "no_recipe".into()), "{old:#}");
}
