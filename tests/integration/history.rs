//! Validation that fits history, on a small lake: a holiday deep in the
//! window on which few stores reported does not block the daily job (it is
//! named in the JSON, the report and the version's manifest); the same thin
//! day as the run's newest is refused; and several bad input files are all
//! named in one error.

use std::path::Path;

use chrono::{Datelike, Days, NaiveDate};

use crate::util::{Cli, s, tempdir};

/// Defaults but for a short window and the two quickest families.
const CONFIG: &str = r#"
[data]
date_column = "date"
series_keys = ["store"]
target = "sales"
covariates = ["promo"]
[window]
history_days = 90
holdout_days = 14
[features]
lags = [1, 7, 14]
rolling_means = [7]
[forecast]
horizon_days = 7
[training]
candidates = ["seasonal_naive", "elastic_net"]
"#;

const STORES: usize = 10;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// Sales of every store on the days `first ..= last`; on a day in `thin`
/// only the first two stores report.
fn write_sales(path: &Path, first: NaiveDate, last: NaiveDate, thin: &[NaiveDate]) {
    let mut text = String::from("date,store,sales,promo\n");
    let mut d = first;
    while d <= last {
        let stores = if thin.contains(&d) { 2 } else { STORES };
        for store in 0..stores {
            let n = d.num_days_from_ce() as usize;
            let promo = (n + store).is_multiple_of(5);
            let sales = 100 + 10 * store + (n * 7 + store * 13) % 17 + if promo { 40 } else { 0 };
            text += &format!("{d},S{store},{sales},{}\n", u8::from(promo));
        }
        d = d + Days::new(1);
    }
    std::fs::write(path, text).unwrap();
}

struct Small {
    dir: tempfile::TempDir,
    cli: Cli,
}

impl Small {
    /// A lake of 120 days ending 2024-04-29 whose `thin` days have 2 stores
    /// of 10, with `extra` TOML after the config.
    fn new(thin: &[&str], extra: &str) -> Self {
        let dir = tempdir();
        let config = dir.path().join("salescast.toml");
        std::fs::write(&config, format!("{CONFIG}{extra}")).unwrap();
        let cli = Cli::new(&config, s(&dir.path().join("lake"))).registry(s(&dir.path().join("registry")));
        let sales = dir.path().join("sales.csv");
        let thin: Vec<NaiveDate> = thin.iter().map(|t| day(t)).collect();
        write_sales(&sales, day("2024-01-01"), day("2024-04-29"), &thin);
        let small = Self { dir, cli };
        small.run(&["ingest", "--input", s(&sales)]).expect_code(0);
        small
    }

    fn run(&self, args: &[&str]) -> crate::util::Outcome {
        self.cli.run(self.dir.path(), args)
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

#[test]
fn a_thin_day_in_the_history_does_not_block_retrain_and_is_reported() {
    let small = Small::new(&["2024-03-01"], "");
    let out = small
        .run(&["--json", "retrain", "--date", "2024-04-29"])
        .expect_code(0);
    let report = out.json();
    let thin = &report["window"]["thin_days"];
    assert_eq!(
        thin["days"],
        serde_json::json!([{"day": "2024-03-01", "series": 2}])
    );
    assert_eq!(thin["median"], STORES);
    assert!(
        out.stderr.contains("2024-03-01 (2 series)"),
        "warned: {}",
        out.stderr
    );
    let md = std::fs::read_to_string(small.path("registry/sales/runs/2024-04-29/report.md")).unwrap();
    assert!(
        md.contains("**Thin days in the history (reported, not refused):** 1 day has far fewer series")
            && md.contains("2024-03-01 (2 series)"),
        "{md}"
    );
    let version = report["challenger"]["version"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(small.path(&format!("registry/sales/versions/{version}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["lineage"]["thin_days"],
        serde_json::json!(["2024-03-01"])
    );
    // `check` names it too, for a person at a terminal.
    let out = small.run(&["check", "--date", "2024-04-29"]).expect_code(0);
    assert!(
        out.stdout
            .contains("thin days in the history (reported, not refused): 1 day has far fewer series"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_thin_newest_day_is_still_refused() {
    let small = Small::new(&["2024-03-01", "2024-04-29"], "");
    let out = small.run(&["retrain", "--date", "2024-04-29"]).expect_code(3);
    assert!(
        out.stderr.contains("sales/dt=2024-04-29")
            && out.stderr.contains("the newest day 2024-04-29 has only 2 series")
            && out.stderr.contains("median of 10")
            && out.stderr.contains("validation.min_series_ratio = 0.5")
            && out
                .stderr
                .contains("reported but not refused: 2024-03-01 (2 series)"),
        "{}",
        out.stderr
    );
    assert!(
        !small.path("registry/sales/versions").exists(),
        "nothing was stored"
    );
    // The day before it runs.
    small.run(&["check", "--date", "2024-04-28"]).expect_code(0);
}

#[test]
fn with_history_refused_every_thin_day_is_named_in_one_error() {
    let small = Small::new(
        &["2024-02-14", "2024-03-01", "2024-03-29"],
        "[validation]\nhistory = \"refuse\"\n",
    );
    let out = small.run(&["retrain", "--date", "2024-04-29"]).expect_code(3);
    assert!(
        out.stderr.contains(
            "3 days have far fewer series than the window's median of 10 (validation.min_series_ratio = 0.5): \
             2024-02-14 (2 series), 2024-03-01 (2 series), 2024-03-29 (2 series)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn every_bad_input_file_is_named_in_one_error() {
    let dir = tempdir();
    let config = dir.path().join("salescast.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let lake = dir.path().join("lake");
    let good = dir.path().join("good.csv");
    write_sales(&good, day("2024-01-01"), day("2024-01-10"), &[]);
    let bad_number = dir.path().join("bad-number.csv");
    std::fs::write(
        &bad_number,
        "date,store,sales,promo\n2024-01-11,S0,5,0\n2024-01-11,S1,x7,0\n",
    )
    .unwrap();
    let no_promo = dir.path().join("no-promo.csv");
    std::fs::write(&no_promo, "date,store,sales\n2024-01-12,S0,5\n").unwrap();
    let negative = dir.path().join("negative.csv");
    std::fs::write(
        &negative,
        "date,store,sales,promo\n2024-01-13,S0,5,0\n2024-01-13,S1,6,0\n2024-01-13,S2,-1,0\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.csv");
    let mut args = vec!["ingest"];
    for file in [&good, &bad_number, &no_promo, &negative, &missing] {
        args.extend(["--input", s(file)]);
    }
    let out = Cli::new(&config, s(&lake)).run(dir.path(), &args).expect_code(3);
    let expected = [
        "4 of 5 input files: refused, the first problem of each:".to_string(),
        format!(
            "  - {}, line 3, column \"sales\": \"x7\" is not a number",
            s(&bad_number)
        ),
        format!(
            "  - {}, column \"promo\": required column is missing",
            s(&no_promo)
        ),
        format!("  - {}, line 4, column \"sales\": negative sales", s(&negative)),
        format!("  - {}: no such file", s(&missing)),
    ];
    for line in expected {
        assert!(out.stderr.contains(&line), "{line:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains(&format!("- {}", s(&good))), "{}", out.stderr);
    assert!(!lake.join("sales").exists(), "nothing reached the lake");
}
