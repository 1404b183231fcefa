//! The malformed-input corpus (`tests/data/malformed/`): every file is refused
//! with exit 3 and its own message naming the file (and row and column where
//! there is one), nothing panics, and nothing reaches the lake.

use crate::util::{python, repo_file, run, s, snapshot, tempdir};

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

/// Ingests `text` as `dir/name` and returns the refusal (exit 3).
fn refused(dir: &std::path::Path, name: &str, text: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let outcome = run(dir, &["--lake", "lake", "ingest", "--input", s(&path)]).expect_code(3);
    assert!(snapshot(&dir.join("lake")).is_empty(), "{name} reached the lake");
    outcome.stderr
}

#[test]
fn defect_7_a_bad_value_after_a_quoted_newline_is_named_at_its_own_line() {
    let dir = tempdir();
    let lf = std::fs::read_to_string(repo_file(
        "tests/data/malformed/bad_value_after_quoted_newline.csv",
    ))
    .unwrap();
    let expected = "line 5, column \"sales\": \"12a\" is not a number";
    let message = refused(dir.path(), "lf.csv", lf.as_bytes());
    assert!(message.contains(expected), "{message}");
    let crlf = lf.replace('\n', "\r\n");
    let message = refused(dir.path(), "crlf.csv", crlf.as_bytes());
    assert!(message.contains(expected), "CRLF: {message}");
    // Two quoted fields spanning three more lines before the bad row.
    let more = lf.replacen("I02,", "\"I02\n\nthird\",", 1);
    let message = refused(dir.path(), "more.csv", more.as_bytes());
    assert!(message.contains("line 7, column \"sales\""), "{message}");
}

#[test]
fn defect_8_a_line_longer_than_the_bound_is_refused_naming_file_and_line() {
    let dir = tempdir();
    let long = "x".repeat(2 << 20);
    let text = format!(
        "date,store,item,sales,promo,holiday,open\n\
         2024-03-01,S01,I01,12,0,0,1\n\
         2024-03-01,S01,{long},7,1,0,1\n\
         2024-03-01,S01,I03,7,1,0,1\n"
    );
    let message = refused(dir.path(), "long.csv", text.as_bytes());
    assert!(
        message.contains("long.csv, line 3:") && message.contains("validation.max_line_bytes"),
        "{message}"
    );
    // The bound is a setting, checked with the config.
    let config = dir.path().join("bound.toml");
    std::fs::write(&config, "[validation]\nmax_line_bytes = 0\n").unwrap();
    let ingest = [
        "--config",
        s(&config),
        "--lake",
        "lake",
        "ingest",
        "--input",
        "long.csv",
    ];
    let out = run(dir.path(), &ingest).expect_code(2);
    assert!(out.stderr.contains("validation.max_line_bytes"), "{}", out.stderr);
    std::fs::write(&config, "[validation]\nmax_line_bytes = 4194304\n").unwrap();
    run(dir.path(), &ingest).expect_code(0);
    std::fs::remove_dir_all(dir.path().join("lake")).unwrap();
    let json = format!(
        "{{\"date\":\"2024-03-01\",\"store\":\"S01\",\"item\":\"I01\",\"sales\":1,\"promo\":0,\"holiday\":0,\"open\":1}}\n\n\
         {{\"date\":\"2024-03-01\",\"store\":\"S01\",\"item\":\"{long}\",\"sales\":1,\"promo\":0,\"holiday\":0,\"open\":1}}\n"
    );
    let plain = dir.path().join("long.jsonl");
    std::fs::write(&plain, &json).unwrap();
    python(
        "import gzip, sys; open(sys.argv[2], 'wb').write(gzip.compress(open(sys.argv[1], 'rb').read()))",
        &[s(&plain), s(&dir.path().join("long.jsonl.gz"))],
    );
    let gz = std::fs::read(dir.path().join("long.jsonl.gz")).unwrap();
    let message = refused(dir.path(), "long.jsonl.gz", &gz);
    assert!(
        message.contains("long.jsonl.gz, line 3:") && message.contains("validation.max_line_bytes"),
        "{message}"
    );
}
