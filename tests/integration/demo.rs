//! The README's first command: `salescast demo` on a fresh folder runs the
//! daily job for several days and shows promotions, a kept champion and a rollback.

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
}
