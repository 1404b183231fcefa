//! The README's first command: `salescast demo` on a fresh folder runs the
//! daily job for several days and shows promotions, a kept champion, a
//! rollback and the champion's forecasts.

use crate::util::{run, tempdir};

#[test]
fn the_demo_promotes_keeps_and_rolls_back() {
    let dir = tempdir();
    let out = run(dir.path(), &["--json", "demo", "--dir", "demo"])
        .expect_code(0)
        .json();
    let kinds: Vec<&str> = out["history"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"promoted"), "{kinds:?}");
    assert!(kinds.contains(&"kept"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"rolled_back"), "{kinds:?}");
    assert!(dir.path().join("demo/registry/sales/champion.json").is_file());
    assert!(dir.path().join("demo/lake/dims/stores.parquet").is_file());

    // The rolled-back-to champion forecasts the 14 days after the last one.
    let forecast = &out["forecast"];
    let champion = std::fs::read_to_string(dir.path().join("demo/registry/sales/champion.json")).unwrap();
    assert!(
        champion.contains(forecast["version"].as_str().unwrap()),
        "{forecast}"
    );
    assert_eq!(forecast["horizon_days"], 14);
    assert_eq!(
        forecast["rows"].as_u64().unwrap(),
        14 * forecast["series"].as_u64().unwrap()
    );
    assert!(forecast["series"].as_u64().unwrap() > 0);
    let preview = forecast["preview"].as_array().unwrap();
    assert_eq!(preview.len(), 7, "a week of one series");
    for day in preview {
        let (f, lo, hi) = (
            day["forecast"].as_f64().unwrap(),
            day["lower"].as_f64().unwrap(),
            day["upper"].as_f64().unwrap(),
        );
        assert!(lo <= f && f <= hi, "{day}");
    }
    let manifest = dir.path().join(format!(
        "demo/lake/predictions/sales/dt={}/_manifest.json",
        forecast["data_day"].as_str().unwrap()
    ));
    assert!(manifest.is_file(), "{}", manifest.display());
}
