//! Defaults chosen by the data: the boosted trees' candidate configurations
//! (`training.gbdt_configs`) as users meet them: a checked setting, and the
//! pharma example (a third real dataset, `bench/data/pharma/`) ingested and
//! retrained through the real binary with its default configuration; a
//! configuration on the log scale (`target = "log1p"`) trained, stored and
//! forecast from on rossmann.

use std::path::Path;

use crate::util::{Cli, copy_tree, python, repo_file, rossmann_config, rossmann_lake, run, s, tempdir};

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
        (
            "[[training.gbdt_configs]]\nname = \"a\"\ntarget = \"log1p\"\n\
             [[training.gbdt_configs]]\nname = \"b\"\ntarget = \"Log1p\"\n",
            "training.gbdt_configs[1].target",
        ),
    ] {
        std::fs::write(dir.path().join("salescast.toml"), format!("{base}\n{extra}")).unwrap();
        let out = run(dir.path(), &["--lake", "lake", "retrain", "--date", "2019-10-08"]).expect_code(2);
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
    }
}

#[test]
fn trees_on_the_log_scale_are_kept_stored_and_forecast_in_sales_with_intervals() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    copy_tree(rossmann_lake(), &lake);
    let config = rossmann_config(
        dir.path(),
        "[window]\nhistory_days = 400\n[training]\ncandidates = [\"gbdt\"]\n\
         [training.gbdt]\nmax_rounds = 150\n\
         [[training.gbdt_configs]]\nname = \"log\"\ntarget = \"log1p\"\n",
    );
    let registry = dir.path().join("registry");
    let cli = Cli::new(&config, s(&lake)).registry(s(&registry)).json();
    let day = "2015-07-20";
    let report = cli
        .clone()
        .run(dir.path(), &["retrain", "--date", day])
        .expect_code(0)
        .json();
    assert_eq!(report["decision"], "promoted", "{report:#}");
    let challenger = &report["challenger"];
    assert_eq!(challenger["gbdt_config"], "log", "{challenger:#}");
    let wape = challenger["holdout"]["wape"].as_f64().unwrap();
    assert!(
        wape > 0.0 && wape < 0.3,
        "forecasts in sales, not in ln(1 + sales): WAPE {wape}"
    );
    let version = challenger["version"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("sales/versions/{version}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["training"]["gbdt_configs"][0]["target"],
        "log1p"
    );

    let predicted = cli
        .run(dir.path(), &["predict", "--date", day])
        .expect_code(0)
        .json();
    assert_eq!(predicted["rows"], 100 * 14, "{predicted}");
    let checked = python(
        r#"
import json, sys, pathlib
import pyarrow.parquet as pq, pyarrow as pa
folder = pathlib.Path(sys.argv[1])
manifest = json.loads((folder / "_manifest.json").read_text())
rows = pa.concat_tables([pq.read_table(folder.parent.parent.parent / f["key"]) for f in manifest["files"]]).to_pylist()
weekdays = [r for r in rows if r["target_date"].weekday() < 5]
# Rossmann stores sell thousands a day: forecasts back on the sales scale.
assert sorted(r["forecast"] for r in weekdays)[len(weekdays) // 2] > 1000, weekdays[:3]
assert all(0 <= r["lower"] <= r["forecast"] <= r["upper"] for r in rows)
assert sum(r["lower"] < r["forecast"] < r["upper"] for r in weekdays) > 0.9 * len(weekdays)
print(len(rows))
"#,
        &[s(&lake.join(format!("predictions/sales/dt={day}")))],
    );
    assert_eq!(checked, "1400");
}
