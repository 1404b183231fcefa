//! Regression tests for the reliability defects of issue 17 that live in the
//! registry, the config and the CLI: each test is named after its defect and
//! runs the real binary (the local backend; the protocol itself is covered on
//! both backends by `retrain` and `crash`).

use std::path::{Path, PathBuf};

use crate::util::{repo_file, rossmann, rossmann_lake, run, s, shared_data, tempdir};

/// The rossmann config with `date_format = FORMAT` in its `[data]` section.
fn rossmann_with_date_format(dir: &Path, format: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo_file("examples/rossmann.toml")).unwrap();
    let text = base.replacen(
        "date_column = \"Date\"\n",
        &format!("date_column = \"Date\"\ndate_format = \"{format}\"\n"),
        1,
    );
    assert_ne!(text, base, "the example config names its date column");
    let path = dir.join("salescast.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defect_9_an_unsupported_lake_uri_is_a_usage_error_naming_the_option() {
    let dir = tempdir();
    let out = run(dir.path(), &["--lake", "gs://bucket/lake", "check"]).expect_code(2);
    assert!(
        out.stderr.contains("--lake") && out.stderr.contains("gs://bucket/lake"),
        "{}",
        out.stderr
    );
    let out = run(
        dir.path(),
        &["--registry", "gs://bucket/registry", "models", "list"],
    )
    .expect_code(2);
    assert!(out.stderr.contains("--registry"), "{}", out.stderr);
}

#[test]
fn defect_9_a_bad_date_format_is_a_config_error_not_a_data_error() {
    let dir = tempdir();
    for format in ["%Q", "%Y-%m", "%"] {
        let config = rossmann_with_date_format(dir.path(), format);
        let out = run(
            dir.path(),
            &[
                "--config",
                s(&config),
                "--lake",
                s(&dir.path().join("lake")),
                "ingest",
                "--input",
                s(&shared_data("rossmann/train.csv")),
            ],
        )
        .expect_code(2);
        assert!(
            out.stderr.contains("data.date_format"),
            "{format}: {}",
            out.stderr
        );
        assert!(!dir.path().join("lake").exists(), "nothing was ingested");
    }
    // A good non-default format still passes the check.
    let config = rossmann_with_date_format(dir.path(), "%d/%m/%Y");
    run(
        dir.path(),
        &[
            "--config",
            s(&config),
            "--lake",
            s(rossmann_lake()),
            "check",
            "--date",
            "2015-07-31",
        ],
    )
    .expect_code(0);
}

#[test]
fn os_errors_are_printed_once() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let lake = file.join("lake");
    let stores = format!("store={}", s(&shared_data("rossmann/store.csv")));
    let out = rossmann(dir.path(), &lake, &["ingest", "--attributes", &stores]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let os_error = "(os error 20)";
    assert_eq!(
        out.stderr.matches(os_error).count(),
        1,
        "the OS error once:\n{}",
        out.stderr
    );
}
