//! The malformed-input corpus (`tests/data/malformed/`): every file is refused
//! with exit 3 and its own message naming the file (and row and column where
//! there is one), nothing panics, and nothing reaches the lake.

use crate::util::{repo_file, run, s, snapshot, tempdir};

#[test]
fn every_malformed_file_is_refused_clearly_and_writes_nothing() {
    let corpus = repo_file("tests/data/malformed");
    let table = std::fs::read_to_string(corpus.join("expected.tsv")).unwrap();
    let cases: Vec<(&str, &str, &str)> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            )
        })
        .collect();
    assert!(cases.len() >= 15, "the corpus has {} cases", cases.len());
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let mut messages = std::collections::BTreeSet::new();
    for (file, kind, expected) in &cases {
        let path = corpus.join(file);
        assert!(path.is_file(), "{file} is listed but missing");
        let arg = match *kind {
            "sales" => vec!["--input".to_string(), s(&path).to_string()],
            "stores" => vec!["--attributes".to_string(), format!("stores={}", s(&path))],
            other => panic!("unknown kind {other}"),
        };
        let mut args = vec!["--lake", s(&lake), "ingest"];
        args.extend(arg.iter().map(String::as_str));
        let outcome = run(dir.path(), &args).expect_code(3);
        let message = outcome.stderr.trim().to_string();
        assert!(
            message.contains(file),
            "{file}: the message does not name the file: {message}"
        );
        assert!(
            message.contains(expected),
            "{file}: expected {expected:?} in: {message}"
        );
        messages.insert(message);
    }
    assert_eq!(messages.len(), cases.len(), "two cases gave the same message");
    let listed: Vec<_> = cases.iter().map(|c| c.0).collect();
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "expected.tsv" || listed.contains(&name.as_str()),
            "{name} is not in expected.tsv"
        );
    }
    assert!(snapshot(&lake).is_empty(), "a refused file reached the lake");
}

#[test]
fn a_missing_input_file_is_named() {
    let dir = tempdir();
    let outcome = run(
        dir.path(),
        &["--lake", "lake", "ingest", "--input", "nowhere/sales.csv"],
    )
    .expect_code(3);
    assert!(
        outcome.stderr.contains("nowhere/sales.csv: no such file"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn one_bad_file_among_good_ones_writes_nothing() {
    let dir = tempdir();
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "date,store,item,sales,promo,holiday,open\n2024-03-02,S01,I01,5,0,0,1\n",
    )
    .unwrap();
    let bad = repo_file("tests/data/malformed/negative_sales.csv");
    run(
        dir.path(),
        &[
            "--lake",
            "lake",
            "ingest",
            "--input",
            s(&good),
            "--input",
            s(&bad),
        ],
    )
    .expect_code(3);
    assert!(snapshot(&dir.path().join("lake")).is_empty());
}
