//! Defaults chosen by the data: the boosted trees' candidate configurations
//! (`training.gbdt_configs`) as users meet them: a checked setting, and the
//! pharma example (a third real dataset, `bench/data/pharma/`) ingested and
//! retrained through the real binary with its default configuration.

use std::path::Path;

use crate::util::{repo_file, run, s, tempdir};

/// The wide pharmacy export (`datum;M01AB;...;R06;Year;Month;Hour;Weekday
/// Name`, dates M/D/YYYY) melted into the long rows salescast ingests, as
/// `bench/pharma.py` does.
fn pharma_long(out: &Path) {
    let wide = std::fs::read_to_string(repo_file("bench/data/pharma/salesdaily.csv")).unwrap();
    let mut lines = wide.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let categories = &header[1..9];
    assert_eq!(categories[0], "M01AB");
    assert_eq!(categories[7], "R06");
    let mut long = String::from("date,category,sales\n");
    for line in lines {
        let fields: Vec<&str> = line.split(';').collect();
        let mdy: Vec<u32> = fields[0].split('/').map(|p| p.parse().unwrap()).collect();
        let day = format!("{:04}-{:02}-{:02}", mdy[2], mdy[0], mdy[1]);
        for (category, sales) in categories.iter().zip(&fields[1..9]) {
            long += &format!("{day},{category},{sales}\n");
        }
    }
    std::fs::write(out, long).unwrap();
}

#[test]
fn the_pharma_example_ingests_and_retrains_choosing_among_the_gbdt_configurations() {
    let dir = tempdir();
    let csv = dir.path().join("pharma.csv");
    pharma_long(&csv);
    let config = repo_file("examples/pharma.toml");
    let lake = dir.path().join("lake");
    let registry = dir.path().join("registry");
    let global = [
        "--config",
        s(&config),
        "--lake",
        s(&lake),
        "--registry",
        s(&registry),
    ];
    let ingest = run(
        dir.path(),
        &[&global[..], &["ingest", "--input", s(&csv)]].concat(),
    )
    .expect_code(0);
    assert!(
        ingest.stdout.contains("16848 rows, 2014-01-02 .. 2019-10-08"),
        "{}",
        ingest.stdout
    );
    let report = run(
        dir.path(),
        &[&global[..], &["--json", "retrain", "--date", "2019-10-08"]].concat(),
    )
    .expect_code(0)
    .json();
    assert_eq!(report["decision"], "promoted", "{report:#}");
    let challenger = &report["challenger"];
    let candidates = challenger["candidates"].as_array().unwrap();
    let labels: Vec<String> = candidates
        .iter()
        .map(|c| match c.get("config") {
            Some(config) => format!("{} ({})", c["family"].as_str().unwrap(), config.as_str().unwrap()),
            None => c["family"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(
        labels,
        [
            "seasonal_naive",
            "elastic_net",
            "gbdt (deep)",
            "gbdt (regularised)"
        ]
    );
    // 8 categories x 28 days of inner validation, the same rows for every candidate.
    for c in candidates {
        assert_eq!(c["validation"]["rows"], 224, "{c}");
    }
    let wape = |c: &serde_json::Value| c["validation"]["wape"].as_f64().unwrap();
    let best = candidates
        .iter()
        .min_by(|a, b| wape(a).total_cmp(&wape(b)))
        .unwrap();
    assert_eq!(
        challenger["family"], best["family"],
        "the lowest validation WAPE is kept"
    );
    assert_eq!(challenger.get("gbdt_config"), best.get("config"));
    assert_eq!(
        challenger["holdout"]["rows"], 2408,
        "8 series, 28 origins, 1-14 days ahead"
    );

    let version = challenger["version"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("sales/versions/{version}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.get("gbdt_config"), best.get("config"), "{manifest:#}");
    assert_eq!(
        manifest["config"]["training"]["gbdt_configs"][1]["name"],
        "regularised"
    );
}

#[test]
fn gbdt_configurations_are_checked_naming_the_key() {
    let dir = tempdir();
    let base = std::fs::read_to_string(repo_file("examples/pharma.toml")).unwrap();
    for (extra, named) in [
        (
            "[[training.gbdt_configs]]\nname = \"a\"\n[[training.gbdt_configs]]\nname = \"b\"\nmax_depth = 0\n",
            "training.gbdt_configs[1].max_depth",
        ),
        (
            "[[training.gbdt_configs]]\nname = \"a\"\nmin_leaf_weight = -1.0\n",
            "training.gbdt_configs[0].min_leaf_weight",
        ),
        (
            "[[training.gbdt_configs]]\nname = \"a\"\n[[training.gbdt_configs]]\nname = \"a\"\n",
            "training.gbdt_configs[1].name",
        ),
        (
            "[[training.gbdt_configs]]\nname = \"a\"\nmax_leaves = 31\n",
            "max_leaves",
        ),
    ] {
        std::fs::write(dir.path().join("salescast.toml"), format!("{base}\n{extra}")).unwrap();
        let out = run(dir.path(), &["--lake", "lake", "retrain", "--date", "2019-10-08"]).expect_code(2);
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
    }
}
