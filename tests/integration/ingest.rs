//! Ingesting the shared datasets: partitions readable by pyarrow with the same
//! row counts, idempotent re-ingest, and refusing or replacing changed days.

use crate::util::{python, repo_file, rossmann_lake, run, s, shared_data, snapshot, tempdir};

const PYARROW_COUNT: &str = r#"
import sys, pyarrow.dataset as ds
d = ds.dataset(sys.argv[1] + "/sales", format="parquet", partitioning="hive")
t = d.to_table(columns=[sys.argv[2], "dt"])
days = len(set(t.column("dt").to_pylist()))
# every row sits in the partition of its own day
same = all(str(a) == str(b) for a, b in zip(t.column(sys.argv[2]).to_pylist(), t.column("dt").to_pylist()))
print(t.num_rows, days, same)
"#;

fn csv_rows(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

#[test]
fn rossmann_lake_reads_back_in_pyarrow_with_every_row() {
    let lake = rossmann_lake();
    let rows = csv_rows(&shared_data("rossmann/train.csv"));
    assert_eq!(rows, 91_071);
    let seen = python(PYARROW_COUNT, &[s(lake), "Date"]);
    assert_eq!(seen, format!("{rows} 942 True"));
    let stores = python(
        "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.schema.field('CompetitionDistance').type)",
        &[s(&lake.join("dims/store.parquet"))],
    );
    assert_eq!(
        stores,
        format!("{} double", csv_rows(&shared_data("rossmann/store.csv")))
    );
}

#[test]
fn store_item_lake_reads_back_in_pyarrow_with_every_row() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let input = shared_data("store_item/train.csv");
    let config = repo_file("examples/store_item.toml");
    let out = run(
        dir.path(),
        &[
            "--config",
            s(&config),
            "--lake",
            s(&lake),
            "--json",
            "ingest",
            "--input",
            s(&input),
        ],
    )
    .expect_code(0);
    assert_eq!(out.json()["rows"], 913_000);
    assert_eq!(out.json()["days"]["written"], 1826);
    assert_eq!(python(PYARROW_COUNT, &[s(&lake), "date"]), "913000 1826 True");
}

#[test]
fn ingesting_the_same_file_twice_changes_nothing() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let input = dir.path().join("sales.csv");
    std::fs::write(
        &input,
        "date,store,item,sales,promo,holiday,open\n2024-03-01,S01,I01,12,0,0,1\n2024-03-02,S01,I01,9,0,0,1\n",
    )
    .unwrap();
    let first = run(
        dir.path(),
        &["--lake", s(&lake), "--json", "ingest", "--input", s(&input)],
    )
    .expect_code(0);
    assert_eq!(first.json()["days"]["written"], 2);
    let before = snapshot(&lake);
    let second = run(
        dir.path(),
        &["--lake", s(&lake), "--json", "ingest", "--input", s(&input)],
    )
    .expect_code(0);
    assert_eq!(second.json()["days"]["unchanged"], 2);
    assert_eq!(snapshot(&lake), before);
}

#[test]
fn a_changed_day_is_refused_unless_replaced() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let input = dir.path().join("sales.csv");
    let header = "date,store,item,sales,promo,holiday,open\n";
    std::fs::write(&input, format!("{header}2024-03-01,S01,I01,12,0,0,1\n")).unwrap();
    run(dir.path(), &["--lake", s(&lake), "ingest", "--input", s(&input)]).expect_code(0);
    std::fs::write(&input, format!("{header}2024-03-01,S01,I01,13,0,0,1\n")).unwrap();
    let refused = run(dir.path(), &["--lake", s(&lake), "ingest", "--input", s(&input)]).expect_code(3);
    assert!(
        refused.stderr.contains("sales/dt=2024-03-01") && refused.stderr.contains("--replace"),
        "{}",
        refused.stderr
    );
    let replaced = run(
        dir.path(),
        &[
            "--lake",
            s(&lake),
            "--json",
            "ingest",
            "--replace",
            "--input",
            s(&input),
        ],
    )
    .expect_code(0);
    assert_eq!(replaced.json()["days"]["replaced"], 1);
    let files: Vec<_> = snapshot(&lake.join("sales/dt=2024-03-01"));
    assert_eq!(files.len(), 1, "the old file is gone");
}

#[test]
fn parquet_input_gives_the_same_lake_as_csv() {
    let dir = tempdir();
    let csv = dir.path().join("sales.csv");
    std::fs::write(
        &csv,
        "date,store,item,sales,promo,holiday,open\n2024-03-01,S01,I01,12,0,0,1\n2024-03-01,S02,I01,3,1,a,1\n",
    )
    .unwrap();
    let parquet = dir.path().join("sales.parquet");
    python(
        "import sys, pyarrow.csv as c, pyarrow.parquet as pq; pq.write_table(c.read_csv(sys.argv[1]), sys.argv[2])",
        &[s(&csv), s(&parquet)],
    );
    run(dir.path(), &["--lake", "from_csv", "ingest", "--input", s(&csv)]).expect_code(0);
    run(
        dir.path(),
        &["--lake", "from_parquet", "ingest", "--input", s(&parquet)],
    )
    .expect_code(0);
    let strip = |lake: &str| -> Vec<Vec<u8>> {
        snapshot(&dir.path().join(lake))
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    };
    assert_eq!(strip("from_csv"), strip("from_parquet"));
}
