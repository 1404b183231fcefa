//! Warm retrains through the real binary on the rossmann lake: the first
//! day searches in full (no champion); the next day carries the champion's
//! trees on by `training.warm_rounds` rounds (its own trees first, no
//! candidates, the same recipe in the new version's manifest), or with
//! `warm_rounds = 0` refits its recipe once (the same rounds and
//! configuration), and says so in the report and the decision log; changed
//! settings, `--full-search`, the schedule and a
//! champion without a recipe (an older manifest) each force a full search,
//! with the reason recorded; a configuration that sums events at ingest
//! (`data.aggregate`) carries the same champion on. A rerun of the day on
//! other data (a store table ingested again) is not the champion as it is.

use salescast_core::models::FittedModel;
use salescast_core::registry::Registry;
use serde_json::Value;

use crate::retrain::{Backend, Place};
use crate::util::{copy_tree, rossmann_lake, s, shared_data};

/// The seasonal-naive rule and the boosted trees (both default
/// configurations) on a 400-day window, a full search every 3 days.
fn settings(seed: u32) -> String {
    settings_with(seed, "")
}

/// [`settings`] with more `[training]` lines.
fn settings_with(seed: u32, training: &str) -> String {
    format!(
        "[window]\nhistory_days = 400\n[training]\ncandidates = [\"seasonal_naive\", \"gbdt\"]\nseed = {seed}\n\
         full_search_every_days = 3\n{training}[training.gbdt]\nmax_rounds = 150\n"
    )
}

/// The first trees of version `version`'s boosted trees, as forust's JSON.
fn trees(registry: &Registry, version: &str, count: usize) -> Vec<String> {
    let model = registry.load_model(version).unwrap().artifact.model;
    let booster = match &model {
        FittedModel::Gbdt(m) => &m.booster,
        FittedModel::GbdtTransformed(m) => &m.model.booster,
        other => panic!("not boosted trees: {other:?}"),
    };
    assert!(booster.trees.len() >= count, "{} trees", booster.trees.len());
    booster.trees[..count]
        .iter()
        .map(|t| serde_json::to_string(t).unwrap())
        .collect()
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
fn a_day_without_reason_to_search_carries_the_champion_on_or_refits_its_recipe() {
    // A lake of its own: the test ingests a store table with other rows.
    let mut place = Place::new(Backend::Local);
    let lake = place.dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    place.lake = s(&lake).to_string();
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

    // Day 2 with `warm_rounds = 0` (a dry run): the recipe refitted once,
    // the champion's rounds and configuration.
    let refit_config = place.config(&settings_with(42, "warm_rounds = 0\n"));
    let refit = place
        .run(&refit_config, &["retrain", "--date", "2015-07-21", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(search(&refit), ("warm".into(), "none".into()), "{refit:#}");
    assert_eq!(refit["challenger"]["rounds"].as_u64(), Some(rounds));
    assert_eq!(refit["challenger"]["candidates"].as_array().unwrap().len(), 0);
    let refit_reason = refit["search"]["reason"].as_str().unwrap();
    assert!(
        refit_reason.contains(&format!("{rounds} rounds"))
            && refit_reason.ends_with("; refitted on every training row"),
        "{refit_reason}"
    );
    // More rounds than the recipe's: the trees would pass twice its rounds,
    // so the recipe is refitted (the same model as with 0).
    let capped_config = place.config(&settings_with(42, &format!("warm_rounds = {}\n", rounds + 1)));
    let capped = place
        .run(&capped_config, &["retrain", "--date", "2015-07-21", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(capped["challenger"]["version"], refit["challenger"]["version"]);
    let capped_reason = capped["search"]["reason"].as_str().unwrap();
    assert!(
        capped_reason.contains(&format!(
            "refitted on every training row, as the champion's {rounds} trees and {} more would pass twice the recipe's rounds",
            rounds + 1
        )),
        "{capped_reason}"
    );

    // Day 2: warm, default `warm_rounds` (50). No candidate scored: the
    // champion's own trees, then 50 more; the same recipe stored with the new
    // version.
    let warm = place.retrain(&config, "2015-07-21").expect_code(0).json();
    assert_eq!(search(&warm), ("warm".into(), "none".into()), "{warm:#}");
    let c = &warm["challenger"];
    assert_eq!(c["candidates"].as_array().unwrap().len(), 0, "no search: {c:#}");
    assert_eq!(c["rounds"].as_u64(), Some(rounds + 50));
    assert_eq!(c["gbdt_config"], first["challenger"]["gbdt_config"]);
    assert_ne!(c["version"], champion.as_str(), "carried on on a newer window");
    assert_ne!(c["version"], refit["challenger"]["version"]);
    let new = c["version"].as_str().unwrap();
    assert_eq!(
        trees(&registry, new, rounds as usize),
        trees(&registry, &champion, rounds as usize),
        "the champion's trees come first, unchanged"
    );
    assert_eq!(warm["champion"]["version"], champion.as_str());
    assert_eq!(recipe_of(c["version"].as_str().unwrap()), recipe);
    assert_eq!(
        c["calibration"], first["challenger"]["calibration"],
        "a warm day carries the champion's intervals on"
    );
    let reason = warm["search"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("{rounds} rounds"))
            && reason.contains("1 days since")
            && reason.contains(&format!("its {rounds} trees carried on by 50 rounds")),
        "{reason}"
    );
    let log = place.decisions();
    let last = log.last().unwrap();
    assert_eq!(last["search"]["mode"], "warm", "{last:#}");
    assert_eq!(last["search"]["reason"], reason);
    assert_eq!(log[0]["search"]["trigger"], "no_champion");
    let report_md =
        std::fs::read_to_string(place.dir.path().join("registry/sales/runs/2015-07-21/report.md")).unwrap();
    assert!(report_md.contains("**Training:** warm, no search"), "{report_md}");

    // The same day under a configuration that sums raw events at ingest
    // (`data.aggregate = "sum"`, which artifacts do not keep and a search
    // does not depend on): the same recipe applies and the champion reads
    // rows as this configuration maps them, so its trees are carried on as
    // above, to the same bytes (a dry run). Before, the search fingerprint
    // hashed aggregate, so this was a full search ("settings_changed"); and
    // a champion read back without aggregate was never carried on.
    let summing = place.dir.path().join("summing.toml");
    std::fs::write(
        &summing,
        crate::util::summing(&std::fs::read_to_string(&config).unwrap()),
    )
    .unwrap();
    let summed = place
        .run(&summing, &["retrain", "--date", "2015-07-21", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(
        search(&summed),
        ("warm".into(), "none".into()),
        "{}",
        summed["search"]
    );
    assert_eq!(
        summed["challenger"]["version"], new,
        "{}",
        summed["search"]["reason"]
    );
    assert_eq!(summed["challenger"]["rounds"].as_u64(), Some(rounds + 50));

    // The carried-on version made champion (by hand here; a promotion does
    // the same), then day 2 rerun on the same data: the champion as it is,
    // not carried on again, so no new version.
    assert_eq!(warm["decision"], "kept", "{}", warm["reason"]);
    place
        .registry_cmd(&["rollback", "--to", new, "--reason", "warm rerun test"])
        .expect_code(0);
    let versions = place.version_count();
    let rerun = place.retrain(&config, "2015-07-21").expect_code(0).json();
    assert_eq!(search(&rerun).0, "warm", "{}", rerun["search"]);
    assert_eq!(
        rerun["challenger"]["version"], new,
        "{}",
        rerun["search"]["reason"]
    );
    assert_eq!(rerun["challenger"]["stored"], "already_there");
    assert_eq!(rerun["decision"], "kept");
    assert_eq!(place.version_count(), versions, "a rerun adds no version");
    let rerun_reason = rerun["search"]["reason"].as_str().unwrap();
    assert!(
        rerun_reason.ends_with("; the champion as it is, stored by a run of this day on the same data"),
        "{rerun_reason}"
    );

    // The same day after the store table was ingested again with one
    // store's type changed: other data (the fingerprint covers the tables),
    // so the champion is not taken as it is. The table put back, the
    // fingerprint is the first one again (it hashes the table's content).
    let stores = std::fs::read_to_string(shared_data("rossmann/store.csv")).unwrap();
    let changed_stores = place.dir.path().join("store-changed.csv");
    std::fs::write(&changed_stores, stores.replacen("\n11,a,", "\n11,b,", 1)).unwrap();
    let ingest_stores = |file: &std::path::Path| {
        let table = format!("store={}", s(file));
        place
            .run(&config, &["ingest", "--attributes", &table])
            .expect_code(0);
    };
    ingest_stores(&changed_stores);
    let changed = place.retrain(&config, "2015-07-21").expect_code(0).json();
    let fingerprint = &rerun["window"]["data_fingerprint"];
    assert_ne!(&changed["window"]["data_fingerprint"], fingerprint);
    assert_ne!(changed["challenger"]["version"], new, "{}", changed["search"]);
    let changed_reason = changed["search"]["reason"].as_str().unwrap();
    assert!(
        !changed_reason.contains("the champion as it is"),
        "{changed_reason}"
    );
    // A table without one store's row: runs go on, and say which store
    // lacks its attributes.
    let without = place.dir.path().join("store-without-102.csv");
    let kept: Vec<&str> = stores.lines().filter(|l| !l.starts_with("102,")).collect();
    std::fs::write(&without, kept.join("\n") + "\n").unwrap();
    ingest_stores(&without);
    let warned = place
        .run(&config, &["check", "--date", "2015-07-21"])
        .expect_code(0);
    assert!(
        warned
            .stderr
            .contains("attribute table \"store\" has no row for 1 series key(s)")
            && warned.stderr.contains("the first: 102"),
        "{}",
        warned.stderr
    );
    ingest_stores(&shared_data("rossmann/store.csv"));
    let check = place
        .run(&config, &["check", "--date", "2015-07-21"])
        .expect_code(0)
        .json();
    assert_eq!(&check["fingerprint"], fingerprint);
    place
        .registry_cmd(&[
            "rollback",
            "--to",
            &champion,
            "--reason",
            "back to the searched one",
        ])
        .expect_code(0);

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
